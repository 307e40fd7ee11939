"""The sparse container: the bytes an unstructurally pruned model is downloaded as (per tensor the
smallest of dense, bitmask + nonzero values, or uint8 relative indices + values), and back."""

from __future__ import annotations

import json
import math
import struct
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from compression import CompressionError
from compression.artifact import PayloadReader, register_payload

SPARSE_MAGIC = b"CXSPARS1"


def _np(t: torch.Tensor) -> np.ndarray:
    try:
        a = t.detach().cpu().contiguous().numpy()
    except TypeError:
        raise CompressionError(f"tensor dtype {t.dtype} cannot be stored in the sparse format") from None
    return a.astype(a.dtype.newbyteorder("<"), copy=False)


def _encode_gaps(a: np.ndarray, nz: np.ndarray) -> tuple[bytes, int]:
    """Relative indices (Han et al. 2015): one uint8 gap per nonzero; a gap over 255 is bridged by
    filler entries of value 0. Returns (gaps + values, number of entries)."""
    gaps = np.diff(np.concatenate([[-1], nz]))
    fillers = (gaps - 1) // 255
    entries = int(len(nz) + fillers.sum())
    out_gaps = np.full(entries, 255, dtype=np.uint8)
    values = np.zeros(entries, dtype=a.dtype)
    real = np.cumsum(fillers + 1) - 1
    out_gaps[real] = gaps - 255 * fillers
    values[real] = a[nz]
    return out_gaps.tobytes() + values.tobytes(), entries


def sparse_bytes(model: nn.Module) -> bytes:
    """The whole state_dict in a sparse container: per tensor the smallest of dense, bitmask +
    nonzero values, or uint8 relative indices + values. A JSON header names each tensor's
    encoding, shape, dtype and byte range; its length is the artifact's `size_bytes`."""
    header, payload, offset = [], [], 0
    for name, t in model.state_dict().items():
        a = _np(t).reshape(-1)
        nz = np.flatnonzero(a)
        options = {"dense": lambda: (a.tobytes(), None)}
        if np.issubdtype(a.dtype, np.floating) and a.size:
            options["bitmask"] = lambda: (np.packbits(a != 0, bitorder="little").tobytes() + a[nz].tobytes(), None)
            options["gaps"] = lambda: _encode_gaps(a, nz)
        encoded = {k: fn() for k, fn in options.items()}
        encoding = min(encoded, key=lambda k: len(encoded[k][0]))
        blob, entries = encoded[encoding]
        header.append({"name": name, "dtype": str(a.dtype.newbyteorder("=")), "shape": list(t.shape),
                       "encoding": encoding, "nnz": int(len(nz)), "entries": entries,
                       "offset": offset, "nbytes": len(blob)})
        payload.append(blob)
        offset += len(blob)
    head = json.dumps({"format": 1, "tensors": header}, separators=(",", ":")).encode()
    return SPARSE_MAGIC + struct.pack("<I", len(head)) + head + b"".join(payload)


def read_sparse(data: bytes) -> dict[str, torch.Tensor]:
    """Decode `sparse_bytes` back into a state_dict (dense tensors)."""
    if data[:8] != SPARSE_MAGIC or len(data) < 12:
        raise CompressionError("not a Compression Explorer sparse file (bad magic)")
    (n,) = struct.unpack("<I", data[8:12])
    try:
        header = json.loads(data[12:12 + n])
    except ValueError:
        raise CompressionError("sparse file header is corrupt") from None
    base = 12 + n
    state = {}
    for h in header["tensors"]:
        blob = data[base + h["offset"]: base + h["offset"] + h["nbytes"]]
        dtype = np.dtype(h["dtype"]).newbyteorder("<")
        size = math.prod(h["shape"])
        if h["encoding"] == "dense":
            a = np.frombuffer(blob, dtype=dtype, count=size)
        else:
            a = np.zeros(size, dtype=dtype)
            if h["encoding"] == "bitmask":
                nbits = (size + 7) // 8
                mask = np.unpackbits(np.frombuffer(blob[:nbits], np.uint8), count=size, bitorder="little")
                a[mask.astype(bool)] = np.frombuffer(blob[nbits:], dtype=dtype, count=h["nnz"])
            elif h["encoding"] == "gaps":
                m = h["entries"]
                pos = np.cumsum(np.frombuffer(blob[:m], np.uint8).astype(np.int64)) - 1
                a[pos] = np.frombuffer(blob[m:], dtype=dtype, count=m)
            else:
                raise CompressionError(f"unknown tensor encoding {h['encoding']!r} in sparse file")
        state[h["name"]] = torch.from_numpy(a.astype(dtype.newbyteorder("="))).reshape(h["shape"])
    return state


def load_sparse(data: bytes, builder: Callable[[], nn.Module]) -> nn.Module:
    """Rebuild a model from `sparse_bytes`: builder() gives the architecture (fresh weights)."""
    from compression.models import load_state_dict_checked
    model = builder()
    load_state_dict_checked(model, read_sparse(data), source="sparse file")
    return model.eval()


# the artifact container reads the "sparse" payload this family writes (compression.artifact)
register_payload("sparse", PayloadReader(read_sparse, magic=SPARSE_MAGIC))
