"""Tensor quantizers: float32 weights -> an `Encoded` (what is stored) that decodes exactly.

Every quantizer works on a weight of shape (out_channels, ...) as a numpy float32 array; channel
granularity means one scale (or codebook entry set) per output channel (axis 0). `Encoded.decode()`
is the only dequantization: the quantized model and the model loaded back from the artifact both
take their weights from it, so their predictions are identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

CLIP_RATIOS = np.linspace(1.0, 0.3, 29)  # candidate clip ranges (fractions of max) for the MSE search


@dataclass
class Encoded:
    encoding: str                   # affine | codebook | binary | ternary | float16 | float32
    shape: tuple[int, ...]
    bits: int                       # bits per stored weight index (before Huffman); 32 for float32
    arrays: dict[str, np.ndarray]   # what the artifact stores
    meta: dict[str, Any] = field(default_factory=dict)  # small settings (symmetric, huffman, ...)

    def decode(self) -> np.ndarray:
        """The dequantized float32 weight, shape `self.shape`."""
        a = self.arrays
        if self.encoding in ("float32", "float16"):
            return a["values"].astype(np.float32).reshape(self.shape)
        if self.encoding == "affine":
            q = a["q"].reshape(a["scale"].shape[0], -1).astype(np.float32)
            zp = a["zero_point"].astype(np.float32)[:, None]
            return ((q - zp) * a["scale"][:, None]).reshape(self.shape)
        if self.encoding == "binary":
            s = a["scale"][:, None]
            return np.where(a["signs"].reshape(s.shape[0], -1) > 0, s, -s).astype(np.float32).reshape(self.shape)
        if self.encoding == "ternary":
            t = a["trits"].reshape(a["scale"].shape[0], -1).astype(np.float32)
            return (t * a["scale"][:, None]).reshape(self.shape)
        if self.encoding == "codebook":
            flat = np.zeros(int(np.prod(self.shape)), dtype=np.float32)
            values = a["codebook"][a["indices"]]
            if "positions" in a:   # exact zeros kept: only these positions hold a codebook value
                flat[a["positions"]] = values
            else:
                flat[:] = values
            return flat.reshape(self.shape)
        raise ValueError(f"unknown encoding {self.encoding!r}")

    def levels(self, channel: int | None = None) -> np.ndarray:
        """The values this weight can take (of one channel for per-channel scales), sorted."""
        a = self.arrays
        if self.encoding == "codebook":
            values = a["codebook"]
            return np.unique(np.append(values, 0.0) if "positions" in a else values)
        if self.encoding in ("float32", "float16"):
            return np.zeros(0, np.float32)
        c = 0 if channel is None or a["scale"].shape[0] == 1 else channel
        s = float(a["scale"][c])
        if self.encoding == "binary":
            return np.array([-s, s], np.float32)
        if self.encoding == "ternary":
            return np.array([-s, 0.0, s], np.float32)
        lo, hi = self.meta["qmin"], self.meta["qmax"]
        return (np.arange(lo, hi + 1) - float(a["zero_point"][c])).astype(np.float32) * np.float32(s)


# ---------------------------------------------------------------------------------------------
# uniform (affine) quantization

def affine_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """(qmin, qmax) of the integer grid: symmetric uses [-(2^(b-1)-1), 2^(b-1)-1] so 0 is exact."""
    if symmetric:
        qmax = (1 << (bits - 1)) - 1
        return -qmax, qmax
    return 0, (1 << bits) - 1


def affine_params(lo: np.ndarray, hi: np.ndarray, bits: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """(scale float32, zero_point int64) per row for value ranges [lo, hi] (zero always inside)."""
    qmin, qmax = affine_range(bits, symmetric)
    lo = np.minimum(lo, 0.0)
    hi = np.maximum(hi, 0.0)
    if symmetric:
        scale = np.maximum(-lo, hi) / qmax
        zp = np.zeros(lo.shape, np.int64)
    else:
        scale = (hi - lo) / (qmax - qmin)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    if not symmetric:
        zp = np.clip(np.round(-lo / scale), qmin, qmax).astype(np.int64)
    return scale, zp


def affine_quantize(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    """Integer codes of rows x (R, N) with per-row scale and zero point: round to nearest, clamp."""
    return np.clip(np.round(x / scale[:, None]) + zp[:, None], qmin, qmax).astype(np.int64)


def quantize_affine(w: np.ndarray, bits: int, *, symmetric: bool = True, per_channel: bool = True,
                    clip: str = "max") -> Encoded:
    """b-bit uniform quantization; `clip="mse"` searches the clip range that minimizes squared error."""
    rows = w.reshape(w.shape[0] if per_channel else 1, -1).astype(np.float32)
    qmin, qmax = affine_range(bits, symmetric)
    lo, hi = rows.min(axis=1), rows.max(axis=1)
    ratio = np.ones(len(rows), np.float32)
    if clip == "mse":
        best = np.full(len(rows), np.inf)
        for r in CLIP_RATIOS:
            scale, zp = affine_params(lo * r, hi * r, bits, symmetric)
            q = affine_quantize(rows, scale, zp, qmin, qmax)
            err = (((q - zp[:, None]) * scale[:, None] - rows) ** 2).sum(axis=1)
            better = err < best
            best, ratio = np.where(better, err, best), np.where(better, r, ratio).astype(np.float32)
    scale, zp = affine_params(lo * ratio, hi * ratio, bits, symmetric)
    q = affine_quantize(rows, scale, zp, qmin, qmax)
    return Encoded("affine", tuple(w.shape), bits,
                   {"q": q.ravel(), "scale": scale, "zero_point": zp},
                   {"symmetric": symmetric, "qmin": qmin, "qmax": qmax, "clip_ratio": ratio})


def quantize_float(w: np.ndarray, bits: int) -> Encoded:
    """Reference points: float16 (half precision) or float32 (unchanged)."""
    dtype = np.float16 if bits == 16 else np.float32
    return Encoded(f"float{bits}", tuple(w.shape), bits, {"values": w.astype(dtype).ravel()})


# ---------------------------------------------------------------------------------------------
# weight clustering (weight sharing)

def kmeans_1d(x: np.ndarray, k: int, iters: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars with linear initialization (Han et al. 2016 found it best):
    returns (sorted centroids float32 (k,), label per value). O(n log n + iters * (n + k))."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        return np.zeros(k, np.float32), np.zeros(0, np.int64)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    csum = np.concatenate([[0.0], np.cumsum(xs)])
    centroids = np.linspace(xs[0], xs[-1], k)
    for _ in range(iters):
        # sorted values between consecutive midpoints belong to one centroid
        bounds = np.concatenate([[0], np.searchsorted(xs, (centroids[1:] + centroids[:-1]) / 2), [xs.size]])
        counts = np.diff(bounds)
        sums = csum[bounds[1:]] - csum[bounds[:-1]]
        updated = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        updated.sort()
        if np.allclose(updated, centroids, rtol=0, atol=1e-10):
            centroids = updated
            break
        centroids = updated
    centroids = centroids.astype(np.float32)
    mids = (centroids[1:].astype(np.float64) + centroids[:-1]) / 2
    labels = np.searchsorted(mids, x)  # nearest centroid for each value (in input order)
    return centroids, labels.astype(np.int64)


def quantize_cluster(w: np.ndarray, bits: int, *, keep_zeros: bool = False, huffman: bool = False) -> Encoded:
    """k-means the layer's weights into 2**bits shared values: a codebook + one index per weight.
    keep_zeros: exact zeros (pruned weights) stay zero, left out of k-means and stored as positions."""
    flat = w.astype(np.float32).ravel()
    arrays: dict[str, np.ndarray] = {}
    if keep_zeros:
        positions = np.flatnonzero(flat)
        arrays["positions"] = positions
        flat = flat[positions]
    codebook, labels = kmeans_1d(flat, 1 << bits)
    arrays.update(codebook=codebook, indices=labels)
    return Encoded("codebook", tuple(w.shape), bits, arrays, {"huffman": huffman, "keep_zeros": keep_zeros})


# ---------------------------------------------------------------------------------------------
# binary and ternary weights

def _rows(w: np.ndarray, per_channel: bool) -> np.ndarray:
    return w.reshape(w.shape[0] if per_channel else 1, -1).astype(np.float32)


def quantize_binary(w: np.ndarray, *, per_channel: bool = True) -> Encoded:
    """w ~ alpha * sign(w), alpha = mean |w| per channel (the L2-optimal scale, XNOR-Net)."""
    rows = _rows(w, per_channel)
    scale = np.abs(rows).mean(axis=1).astype(np.float32)
    signs = (rows >= 0).astype(np.int64)
    return Encoded("binary", tuple(w.shape), 1, {"signs": signs.ravel(), "scale": scale})


def quantize_ternary(w: np.ndarray, *, per_channel: bool = True) -> Encoded:
    """Ternary weight networks (Li & Liu 2016): t = sign(w) where |w| > 0.7 mean|w|, else 0;
    alpha = mean |w| over the kept weights, per channel."""
    rows = _rows(w, per_channel)
    absw = np.abs(rows)
    delta = 0.7 * absw.mean(axis=1, keepdims=True)
    keep = absw > delta
    count = keep.sum(axis=1)
    scale = np.where(count > 0, (absw * keep).sum(axis=1) / np.maximum(count, 1), 0.0).astype(np.float32)
    trits = (np.sign(rows) * keep).astype(np.int64)
    return Encoded("ternary", tuple(w.shape), 2, {"trits": trits.ravel(), "scale": scale})


def sqnr_db(original: np.ndarray, quantized: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(sum x^2 / sum (x - q)^2)."""
    noise = float(((original.astype(np.float64) - quantized) ** 2).sum())
    signal = float((original.astype(np.float64) ** 2).sum())
    return float("inf") if noise == 0 else 10.0 * np.log10(signal / noise) if signal > 0 else float("-inf")
