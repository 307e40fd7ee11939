"""Per-image predictions of a run, kept beside it, so any two runs evaluated on the same test images
can be compared later without re-running either (compression.compare).

Stored compactly: the predicted class per image (uint8, or uint16 past 256 classes) and the top-1
probability (float16), zlib-compressed: about 15-25 KB for the 10,000 Fashion-MNIST test images.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from compression import CompressionError

MAGIC = b"CXPRED1\0"


@dataclass(frozen=True)
class Predictions:
    predicted: np.ndarray      # (N,) class index per test image, in test-split order
    confidence: np.ndarray     # (N,) top-1 probability, float16

    @property
    def n(self) -> int:
        return int(self.predicted.shape[0])

    @classmethod
    def from_logits(cls, logits: torch.Tensor) -> "Predictions":
        probs = torch.softmax(logits.float(), dim=1)
        conf, pred = probs.max(dim=1)
        dtype = np.uint8 if logits.shape[1] <= 256 else np.uint16
        return cls(pred.numpy().astype(dtype), conf.numpy().astype(np.float16))

    def to_bytes(self) -> bytes:
        body = zlib.compress(self.predicted.tobytes() + self.confidence.tobytes(), 9)
        return MAGIC + struct.pack("<IB", self.n, self.predicted.dtype.itemsize) + body

    @classmethod
    def from_bytes(cls, blob: bytes) -> "Predictions":
        if blob[:8] != MAGIC:
            raise CompressionError("stored predictions unreadable (bad magic bytes)")
        n, width = struct.unpack_from("<IB", blob, 8)
        raw = zlib.decompress(blob[13:])
        dtype = {1: np.uint8, 2: np.uint16}.get(width)
        if dtype is None or len(raw) != n * width + 2 * n:
            raise CompressionError("stored predictions truncated or corrupt")
        return cls(np.frombuffer(raw[:n * width], dtype=dtype).copy(),
                   np.frombuffer(raw[n * width:], dtype=np.float16).copy())
