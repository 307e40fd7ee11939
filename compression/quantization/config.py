"""The quantization config: one frozen dataclass, validated on construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from compression import CompressionError

METHODS = ("uniform", "cluster", "cluster-huffman", "binary", "ternary")
WEIGHT_BITS = (1, 2, 3, 4, 5, 6, 7, 8, 16, 32)  # 16 = float16, 32 = float32 (references)
CLUSTER_BITS = (1, 2, 3, 4, 5, 6, 7, 8)          # 2**bits clusters per layer
ACTIVATION_BITS = (None, 8, 4)
GRANULARITIES = ("tensor", "channel")
CLIPPINGS = ("auto", "max", "mse")
BACKENDS = ("auto", "ort-dynamic", "ort-static", "ort-static-linear", "torch-dynamic", "inductor-int8", "none")
BITS_OF = {"binary": 1, "ternary": 2}  # fixed; ternary packs 5 weights per byte: 1.6 bits each


@dataclass(frozen=True)
class QuantConfig:
    method: str = "uniform"          # uniform | cluster | cluster-huffman | binary | ternary
    bits: int = 8                    # weight bits (binary: 1, ternary: 2 -> stored as 1.6)
    granularity: str = "channel"     # one scale per output channel, or one per tensor
    symmetric: bool = True           # uniform: zero maps to 0 (no zero point) or an affine range
    activation_bits: int | None = None  # fake-quantize each layer's input (calibrated), or not
    calibration_size: int = 512      # validation images for activation ranges and the int8 kernel
    clipping: str = "auto"           # uniform ranges: max-abs, or the MSE-best clip (auto: mse below 8 bits)
    qat_epochs: int = 0              # quantization-aware fine-tuning (straight-through estimator)
    qat_lr: float = 1e-4
    qat_subset: int | None = None    # train on the first N training images only
    seed: int = 0
    layer_bits: tuple[tuple[str, int], ...] = ()  # per-layer overrides (mixed precision); 32 = keep fp32
    keep_zeros: bool = False         # clustering: exact zeros stay zero, stored as sparse positions
    backend: str = "auto"            # real int8 kernel for 8-bit uniform weights on the CPU
    centroid_epochs: int = 0         # clustering: train the shared centroids (codes and zeros fixed), Han et al. 2016
    centroid_lr: float = 1e-4

    def __post_init__(self):
        if self.method not in METHODS:
            raise CompressionError(f"unknown quantization method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method in BITS_OF:
            object.__setattr__(self, "bits", BITS_OF[self.method])
        allowed = (CLUSTER_BITS if self.method.startswith("cluster") else
                   (BITS_OF[self.method],) if self.method in BITS_OF else WEIGHT_BITS)
        if not isinstance(self.bits, int) or isinstance(self.bits, bool) or self.bits not in allowed:
            raise CompressionError(f"weight bits {self.bits!r} not allowed for {self.method}; "
                                   f"choose one of {', '.join(map(str, allowed))}")
        if self.method == "uniform" and self.symmetric and self.bits == 1:
            raise CompressionError("weight bits 1 with symmetric uniform quantization has a single level; "
                                   "use --asymmetric or method 'binary'")
        if self.granularity not in GRANULARITIES:
            raise CompressionError(f"granularity {self.granularity!r} not allowed; choose tensor or channel")
        if self.activation_bits not in ACTIVATION_BITS:
            raise CompressionError(f"activation bits {self.activation_bits!r} not allowed; choose none, 8 or 4")
        if not isinstance(self.calibration_size, int) or not 1 <= self.calibration_size <= 5000:
            raise CompressionError(f"calibration size {self.calibration_size!r} out of range: 1..5000 validation images")
        if self.clipping not in CLIPPINGS:
            raise CompressionError(f"clipping {self.clipping!r} not allowed; choose auto, max or mse")
        if not isinstance(self.qat_epochs, int) or not 0 <= self.qat_epochs <= 50:
            raise CompressionError(f"QAT epochs {self.qat_epochs!r} out of range: 0..50")
        if not (isinstance(self.qat_lr, (int, float)) and 0 < self.qat_lr <= 1):
            raise CompressionError(f"QAT learning rate {self.qat_lr!r} out of range: (0, 1]")
        if self.qat_subset is not None and (not isinstance(self.qat_subset, int) or self.qat_subset < 1):
            raise CompressionError(f"QAT subset {self.qat_subset!r} must be a positive number of images")
        if not isinstance(self.centroid_epochs, int) or isinstance(self.centroid_epochs, bool) \
                or not 0 <= self.centroid_epochs <= 50:
            raise CompressionError(f"centroid fine-tuning epochs {self.centroid_epochs!r} out of range: 0..50")
        if self.centroid_epochs and not self.method.startswith("cluster"):
            raise CompressionError(f"centroid_epochs={self.centroid_epochs} needs a codebook: method cluster or "
                                   f"cluster-huffman, not {self.method}")
        if not (isinstance(self.centroid_lr, (int, float)) and not isinstance(self.centroid_lr, bool)
                and 0 < self.centroid_lr <= 1):
            raise CompressionError(f"centroid learning rate {self.centroid_lr!r} out of range: (0, 1]")
        if self.backend not in BACKENDS:
            raise CompressionError(f"int8 backend {self.backend!r} unknown; choose one of {', '.join(BACKENDS)}")
        try:
            given = dict(self.layer_bits)  # accepts a dict or (name, bits) pairs
        except (TypeError, ValueError):
            raise CompressionError("per-layer bits must map layer names to bits, e.g. {'0': 4}, "
                                   f"got {self.layer_bits!r}") from None
        for name in given:
            if not isinstance(name, str):
                raise CompressionError(f"per-layer bits: layer names are strings, got {name!r} in {self.layer_bits!r}")
        pairs = tuple(sorted(given.items()))
        per_layer = tuple(sorted(set(allowed) | {32}))         # 32 always means: keep this layer fp32
        for name, b in pairs:
            if b not in per_layer or isinstance(b, bool):
                raise CompressionError(f"bits {b!r} for layer {name!r} (in {self.layer_bits!r}) not allowed for {self.method}; "
                                       f"choose one of {', '.join(map(str, per_layer))} (32 keeps it fp32)")
        object.__setattr__(self, "layer_bits", pairs)

    def bits_for(self, layer: str) -> int:
        """Weight bits of one layer (its override, else the config's)."""
        return dict(self.layer_bits).get(layer, self.bits)

    def label(self) -> str:
        """Short description, e.g. 'uniform 4-bit per-channel symmetric, activations 8-bit'."""
        if self.method in ("binary", "ternary"):
            text = f"{self.method} ({'1' if self.method == 'binary' else '1.6'} bit) per-{self.granularity}"
        elif self.method.startswith("cluster"):
            text = f"{self.method} {self.bits}-bit ({2 ** self.bits} clusters per layer)"
        elif self.bits >= 16:
            text = f"float{self.bits}"
        else:
            text = (f"uniform {self.bits}-bit per-{self.granularity} "
                    f"{'symmetric' if self.symmetric else 'asymmetric'}")
        if self.activation_bits:
            text += f", activations {self.activation_bits}-bit"
        if self.layer_bits:
            text += ", mixed precision"
        if self.qat_epochs:
            text += f", QAT {self.qat_epochs} epoch{'s' if self.qat_epochs > 1 else ''}"
        if self.centroid_epochs:
            text += f", centroids fine-tuned {self.centroid_epochs} epoch{'s' if self.centroid_epochs > 1 else ''}"
        return text

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layer_bits"] = dict(self.layer_bits)
        return d
