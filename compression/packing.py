"""Bit-level packing of small integers: the bytes a quantized model is stored in.

Reusable writers and readers, each a pair of pure functions over numpy arrays:

- `pack_bits(values, bits)` / `unpack_bits(blob, bits, count)`: unsigned integers < 2**bits,
  `bits` in 1..16, packed back to back (little-endian bit order), ceil(count * bits / 8) bytes.
- `pack_ternary(values)` / `unpack_ternary(blob, count)`: values in {-1, 0, +1}, five per byte
  (3**5 = 243 <= 256), i.e. 1.6 bits per value.
- `sparse_gaps(mask, index_bits)` / `positions_from_gaps(gaps, index_bits)`: the positions of the
  True entries of a flat mask as relative indices (gaps) of `index_bits` bits each, with filler
  entries where a gap does not fit (Deep Compression's relative sparse index, Han et al. 2016).
"""

from __future__ import annotations

import numpy as np

from compression import CompressionError


def packed_length(count: int, bits: int) -> int:
    """Bytes taken by `count` values of `bits` bits each."""
    return (count * bits + 7) // 8


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Pack unsigned integers, each < 2**bits, into ceil(n * bits / 8) bytes."""
    if not 1 <= bits <= 16:
        raise CompressionError(f"bits per value must be in 1..16, got {bits}")
    v = np.ascontiguousarray(values, dtype=np.int64).ravel()
    if v.size and (v.min() < 0 or v.max() >= (1 << bits)):
        raise CompressionError(f"values must be in [0, {(1 << bits) - 1}] to pack in {bits} bits, "
                               f"got [{int(v.min())}, {int(v.max())}]")
    if bits == 8:
        return v.astype(np.uint8).tobytes()
    if bits == 16:
        return v.astype("<u2").tobytes()
    # (n, bits) matrix of the bits of each value, least significant first, then flattened
    planes = ((v[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
    return np.packbits(planes.ravel(), bitorder="little").tobytes()


def unpack_bits(blob: bytes | memoryview, bits: int, count: int) -> np.ndarray:
    """The `count` values packed by `pack_bits(values, bits)`, as int64."""
    if not 1 <= bits <= 16:
        raise CompressionError(f"bits per value must be in 1..16, got {bits}")
    need = packed_length(count, bits)
    raw = np.frombuffer(blob, dtype=np.uint8, count=need) if need else np.zeros(0, np.uint8)
    if bits == 8:
        return raw.astype(np.int64)
    if bits == 16:
        return raw.view("<u2").astype(np.int64)
    planes = np.unpackbits(raw, bitorder="little")[:count * bits].reshape(count, bits)
    return planes.astype(np.int64) @ (1 << np.arange(bits, dtype=np.int64))


TRITS_PER_BYTE = 5  # 3**5 = 243 codes fit in a byte: 1.6 bits per ternary value


def pack_ternary(values: np.ndarray) -> bytes:
    """Pack values in {-1, 0, +1}, five per byte (base 3)."""
    v = np.ascontiguousarray(values, dtype=np.int64).ravel() + 1  # {0, 1, 2}
    if v.size and (v.min() < 0 or v.max() > 2):
        raise CompressionError("ternary values must be -1, 0 or +1")
    pad = (-v.size) % TRITS_PER_BYTE
    groups = np.concatenate([v, np.zeros(pad, np.int64)]).reshape(-1, TRITS_PER_BYTE)
    return (groups @ (3 ** np.arange(TRITS_PER_BYTE))).astype(np.uint8).tobytes()


def ternary_length(count: int) -> int:
    return (count + TRITS_PER_BYTE - 1) // TRITS_PER_BYTE


def unpack_ternary(blob: bytes | memoryview, count: int) -> np.ndarray:
    codes = np.frombuffer(blob, dtype=np.uint8, count=ternary_length(count)).astype(np.int64)
    trits = (codes[:, None] // (3 ** np.arange(TRITS_PER_BYTE))) % 3  # (bytes, 5)
    return trits.ravel()[:count] - 1


def sparse_gaps(mask: np.ndarray, index_bits: int) -> np.ndarray:
    """Relative indices of the True entries of a flat mask, each fitting in `index_bits` bits.

    Entry i is the distance from the previous kept position (the first from -1). A distance larger
    than 2**index_bits - 1 is split with filler entries of value 0, each meaning "skip
    2**index_bits - 1 positions, nothing stored here"; so a stored gap is never 0.
    """
    if not 1 <= index_bits <= 16:
        raise CompressionError(f"index bits must be in 1..16, got {index_bits}")
    positions = np.flatnonzero(np.asarray(mask).ravel())
    gaps = np.diff(positions, prepend=-1)  # >= 1
    span = (1 << index_bits) - 1
    fillers = (gaps - 1) // span           # fillers needed before each kept entry
    last = gaps - fillers * span           # remainder, in 1..span
    out = np.zeros(int(fillers.sum()) + len(gaps), dtype=np.int64)
    ends = np.cumsum(fillers + 1) - 1      # where each kept entry lands; fillers before stay 0
    out[ends] = last
    return out


def positions_from_gaps(gaps: np.ndarray, index_bits: int) -> np.ndarray:
    """Inverse of `sparse_gaps`: the kept positions, ascending."""
    g = np.asarray(gaps, dtype=np.int64)
    span = (1 << index_bits) - 1
    steps = np.where(g == 0, span, g)
    return (np.cumsum(steps) - 1)[g != 0]
