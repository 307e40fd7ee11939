"""Images that stay on disk: a split too large for memory, read a batch at a time.

`LazyImages` stands where a split's uint8 tensor (N, C, H, W) would be: it has `shape`, `dtype` and
`len`, and indexing it (an int, a slice, a list, an index or boolean tensor) reads those rows from
a raw file of decoded images (compression.imagefolder writes it: N rows of C*H*W bytes) and returns
a real tensor. `select(index)` is a view (no read): `Split.head` and `Split.take` use it, so a
subset of a large split stays on disk too.

Whether a split is read into memory or left on disk is decided by the memory budget:
COMPRESSION_MEMORY_BUDGET (bytes, or with a unit: 512M, 2G, 1.5GiB; default 2 GiB).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compression import CompressionError

DEFAULT_BUDGET = 2 * 1024 ** 3
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2, "mib": 1024 ** 2,
          "g": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3, "t": 1024 ** 4, "tb": 1024 ** 4, "tib": 1024 ** 4}


def memory_budget() -> int:
    """Bytes of decoded images a dataset may keep in memory (COMPRESSION_MEMORY_BUDGET)."""
    text = os.environ.get("COMPRESSION_MEMORY_BUDGET", "").strip()
    if not text:
        return DEFAULT_BUDGET
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", text)
    if m is None or m.group(2).lower() not in _UNITS:
        raise CompressionError(f"COMPRESSION_MEMORY_BUDGET={text!r} is not a size; write e.g. 2G, 512M or 1000000")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


class LazyImages:
    """(N, C, H, W) uint8 images in a raw file, read when indexed. `rows`: which rows of the file,
    in order (a view selects some of them)."""

    dtype = torch.uint8

    def __init__(self, path: str | Path, image_shape: tuple[int, int, int], rows: torch.Tensor):
        self.path = Path(path)
        self.image_shape = tuple(int(v) for v in image_shape)  # (C, H, W)
        self.rows = rows.to(torch.int64)
        self.row_bytes = int(np.prod(self.image_shape))

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.image_shape))

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"LazyImages({len(self)} x {'x'.join(map(str, self.image_shape))} from {self.path.name})"

    def select(self, index: Any) -> "LazyImages":
        """The rows `index` picks (a slice, ints, an index or boolean tensor), still on disk."""
        return LazyImages(self.path, self.image_shape, self.rows[_as_index(index, len(self))])

    def __getitem__(self, index: Any) -> torch.Tensor:
        if isinstance(index, (int, np.integer)) or (isinstance(index, torch.Tensor) and index.ndim == 0):
            i = int(index)
            if not -len(self) <= i < len(self):
                raise IndexError(f"image {i} of {len(self)}")
            return self._read(self.rows[i:i + 1] if i >= 0 else self.rows[len(self) + i:][:1])[0]
        if isinstance(index, tuple):  # images[idx, channel, ...]: rows first, then the rest on the tensor
            rows = self[index[0]]
            return rows[index[1:]] if rows.ndim == len(self.image_shape) else rows[(slice(None), *index[1:])]
        return self._read(self.rows[_as_index(index, len(self))])

    def load(self) -> torch.Tensor:
        """Every image of the view, in memory."""
        return self._read(self.rows)

    def _read(self, rows: torch.Tensor) -> torch.Tensor:
        """The given file rows as a (k, C, H, W) tensor: sorted, contiguous runs read at once."""
        out = np.empty((len(rows), self.row_bytes), dtype=np.uint8)
        if len(rows):
            order = torch.argsort(rows, stable=True)
            wanted = rows[order].numpy()
            with open(self.path, "rb", buffering=0) as f:
                start = 0
                while start < len(wanted):
                    end = start + 1
                    while end < len(wanted) and wanted[end] == wanted[end - 1] + 1:
                        end += 1
                    f.seek(int(wanted[start]) * self.row_bytes)
                    block = out[start:end]  # filled in sorted order, put back in the asked order below
                    read_exact(f, memoryview(block).cast("B"), self.path)
                    start = end
            if not bool((order[1:] > order[:-1]).all()):
                back = np.empty_like(out)
                back[order.numpy()] = out
                out = back
        return torch.from_numpy(out).view(len(rows), *self.image_shape)


def read_exact(f, view: memoryview, path: Path) -> None:
    """Fill `view` from the file's position (one read returns at most ~2 GiB on Linux: loop)."""
    done = 0
    while done < len(view):
        got = f.readinto(view[done:])
        if not got:
            raise CompressionError(f"{path}: shorter than its index says (a damaged cache file); "
                                   "delete it and the folder is decoded again")
        done += got


def _as_index(index: Any, n: int) -> torch.Tensor | slice:
    """A slice as it is; ints, lists, arrays and tensors as an int64 index (booleans to positions)."""
    if isinstance(index, slice):
        return index
    t = torch.as_tensor(index)
    if t.dtype == torch.bool:
        if t.shape != (n,):
            raise IndexError(f"boolean index of shape {tuple(t.shape)} for {n} images")
        return t.nonzero().flatten()
    t = t.to(torch.int64).flatten()
    if len(t) and (int(t.max()) >= n or int(t.min()) < -n):
        raise IndexError(f"image index out of range for {n} images")
    return torch.where(t < 0, t + n, t)
