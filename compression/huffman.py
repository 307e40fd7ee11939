"""Canonical Huffman coding of small-alphabet symbols (cluster indices, sparse gaps).

Frequent symbols get short codes, rare ones long codes (Huffman 1952). The code is canonical, so
the table stored beside the stream is just one code length per symbol (one byte each). Format of
`huffman_encode`'s bytes:

    u32 count | u16 alphabet size A | A bytes: code length per symbol (0 = unused) | bit stream

The stream is never longer than the fixed-width one: the fixed-width code is itself a canonical
code (all lengths = ceil(log2 A)), used whenever Huffman would not be shorter.
"""

from __future__ import annotations

import heapq
import struct

import numpy as np

from compression import CompressionError

MAX_CODE_LENGTH = 20  # keeps the decoding table at most 2**20 entries
_HEADER = struct.Struct("<IH")


def fixed_width(alphabet: int) -> int:
    """Bits per symbol of a fixed-width code for `alphabet` symbols."""
    return max(1, int(alphabet - 1).bit_length())


def code_lengths(freqs: np.ndarray) -> np.ndarray:
    """Huffman code length per symbol (0 for symbols that never occur), at most MAX_CODE_LENGTH."""
    freqs = np.asarray(freqs, dtype=np.int64)
    while True:
        lengths = _huffman_lengths(freqs)
        if lengths.max(initial=0) <= MAX_CODE_LENGTH:
            return lengths
        # very skewed counts: flatten them (halve, keep every used symbol >= 1) and rebuild
        freqs = np.where(freqs > 0, np.maximum(1, freqs // 2), 0)


def _huffman_lengths(freqs: np.ndarray) -> np.ndarray:
    used = np.flatnonzero(freqs)
    lengths = np.zeros(len(freqs), dtype=np.int64)
    if len(used) == 1:
        lengths[used] = 1  # one symbol still needs one bit per occurrence
        return lengths
    # heap of (weight, tiebreak, symbols under this node); merging deepens every symbol by one
    heap = [(int(freqs[s]), i, [int(s)]) for i, s in enumerate(used)]
    heapq.heapify(heap)
    tiebreak = len(heap)
    while len(heap) > 1:
        w1, _, s1 = heapq.heappop(heap)
        w2, _, s2 = heapq.heappop(heap)
        lengths[s1] += 1
        lengths[s2] += 1
        heapq.heappush(heap, (w1 + w2, tiebreak, s1 + s2))
        tiebreak += 1
    return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code values from lengths: shorter codes first, ties by symbol."""
    codes = np.zeros(len(lengths), dtype=np.int64)
    code, prev_len = 0, 0
    for s in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - prev_len
        codes[s] = code
        prev_len = int(lengths[s])
        code += 1
    return codes


def huffman_encode(symbols: np.ndarray, alphabet: int) -> bytes:
    """Code table + bit stream for `symbols` (integers in [0, alphabet))."""
    sym = np.ascontiguousarray(symbols, dtype=np.int64).ravel()
    if not 1 <= alphabet <= 65535:
        raise CompressionError(f"alphabet size must be in 1..65535, got {alphabet}")
    if sym.size and (sym.min() < 0 or sym.max() >= alphabet):
        raise CompressionError(f"symbols must be in [0, {alphabet - 1}]")
    freqs = np.bincount(sym, minlength=alphabet)
    lengths = code_lengths(freqs) if sym.size else np.zeros(alphabet, np.int64)
    width = fixed_width(alphabet)
    if int(lengths @ freqs) > width * sym.size:  # not shorter: fall back to fixed width
        lengths = np.full(alphabet, width, dtype=np.int64)
    if alphabet > 255 and lengths.max(initial=0) > 255:
        raise CompressionError("code length does not fit a byte")
    codes = canonical_codes(lengths)
    table = _HEADER.pack(sym.size, alphabet) + lengths.astype(np.uint8).tobytes()
    if not sym.size:
        return table
    longest = int(lengths.max())
    # (n, longest) bit matrix of each occurrence's code, most significant bit first, left-aligned
    shifts = np.arange(longest - 1, -1, -1)
    aligned = codes[sym] << (longest - lengths[sym])
    bits = (aligned[:, None] >> shifts) & 1
    keep = np.arange(longest)[None, :] < lengths[sym][:, None]
    return table + np.packbits(bits[keep].astype(np.uint8)).tobytes()


def huffman_table_size(alphabet: int) -> int:
    return _HEADER.size + alphabet


def huffman_decode(blob: bytes | memoryview) -> tuple[np.ndarray, int]:
    """(symbols, bytes consumed) from the start of `blob`."""
    blob = memoryview(blob)
    if len(blob) < _HEADER.size:
        raise CompressionError("Huffman stream truncated (no header)")
    count, alphabet = _HEADER.unpack_from(blob)
    lengths = np.frombuffer(blob, dtype=np.uint8, count=alphabet, offset=_HEADER.size).astype(np.int64)
    start = _HEADER.size + alphabet
    if count == 0:
        return np.zeros(0, np.int64), start
    codes = canonical_codes(lengths)
    longest = int(lengths.max())
    # lookup table over every `longest`-bit window: which symbol starts it and its length
    table_sym = np.zeros(1 << longest, dtype=np.int64)
    table_len = np.zeros(1 << longest, dtype=np.int64)
    for s in np.flatnonzero(lengths):
        lo = int(codes[s]) << (longest - int(lengths[s]))
        hi = lo + (1 << (longest - int(lengths[s])))
        table_sym[lo:hi], table_len[lo:hi] = s, lengths[s]
    nbits_max = count * longest
    raw = np.frombuffer(blob, dtype=np.uint8, count=min(len(blob) - start, (nbits_max + 7) // 8), offset=start)
    bits = np.unpackbits(raw).astype(np.int64)
    bits = np.concatenate([bits, np.zeros(longest, np.int64)])  # windows at the end read zeros
    # value of the `longest`-bit window starting at every bit position (vectorized)
    n = len(bits) - longest
    windows = np.zeros(n, dtype=np.int64)
    for j in range(longest):
        windows = (windows << 1) | bits[j:j + n]
    step_sym, step_len = table_sym[windows].tolist(), table_len[windows].tolist()
    out, pos = [0] * count, 0
    for i in range(count):  # inherently sequential: each code's start depends on the previous
        out[i] = step_sym[pos]
        pos += step_len[pos]
        if pos > n:
            raise CompressionError("Huffman stream truncated")
    used = (pos + 7) // 8
    return np.asarray(out, dtype=np.int64), start + used
