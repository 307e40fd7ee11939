"""The input contract: what a model expects of an image, which belongs to the model, not the data.

A deployer needs nothing else to feed a model: the per-channel `mean` and `std` applied to pixels
scaled to [0, 1], the `input_size` (height, width) images are resized to, the number of `channels`
and the `classes` in output order. Every exported file carries it as one JSON object with exactly
the keys of `to_json()`; model cards and artifact headers record it beside the architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from compression import CompressionError

KEYS = ("mean", "std", "input_size", "channels", "classes")


@dataclass(frozen=True)
class InputContract:
    mean: tuple[float, ...]          # per channel, of pixels scaled to [0, 1]
    std: tuple[float, ...]
    input_size: tuple[int, int]      # (height, width) the images are resized to
    channels: int                    # 1 (grayscale) or 3 (RGB)
    classes: tuple[str, ...]         # output index -> class name
    source: str = "dataset"          # where it came from: dataset, zoo card, torchvision, timm, hf, user

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise CompressionError(f"input contract: channels must be 1 or 3, got {self.channels!r}")
        for key in ("mean", "std"):
            values = getattr(self, key)
            if len(values) != self.channels:
                raise CompressionError(f"input contract: {key} has {len(values)} values for {self.channels} channel(s)")
        if any(s <= 0 for s in self.std):
            raise CompressionError(f"input contract: std must be positive, got {list(self.std)}")
        if len(self.input_size) != 2 or any(int(v) < 1 for v in self.input_size):
            raise CompressionError(f"input contract: input_size must be (height, width), got {self.input_size!r}")
        if len(self.classes) < 2:
            raise CompressionError(f"input contract: need at least 2 classes, got {len(self.classes)}")

    def to_json(self) -> dict[str, Any]:
        """The object every exported file carries (keys: mean, std, input_size, channels, classes)."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
                "input_size": [int(v) for v in self.input_size], "channels": int(self.channels),
                "classes": [str(c) for c in self.classes]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, source: str = "file") -> "InputContract":
        missing = [k for k in KEYS if k not in d]
        if missing:
            raise CompressionError(f"input contract lacks {', '.join(missing)}")
        return cls(tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"]),
                   tuple(int(v) for v in d["input_size"]), int(d["channels"]),
                   tuple(str(c) for c in d["classes"]), source)

    @classmethod
    def of_dataset(cls, dataset: Any, *, source: str = "dataset") -> "InputContract":
        """The contract a model trained on `dataset` (compression.data.Dataset) with its own
        normalization has: the zoo's models, and the default before a model states its own."""
        c, h, w = dataset.input_shape
        return cls(tuple(dataset.mean), tuple(dataset.std), (int(h), int(w)), int(c), tuple(dataset.classes), source)

    def describe(self) -> str:
        """One line for cards and captions: '3 x 224 x 224, mean 0.485/0.456/0.406, std ... (torchvision)'."""
        fmt = lambda xs: "/".join(f"{v:.3g}" for v in xs)  # noqa: E731
        h, w = self.input_size
        return (f"{self.channels} x {h} x {w}, mean {fmt(self.mean)}, std {fmt(self.std)}, "
                f"{len(self.classes)} classes ({self.source})")


def check_classes(contract: InputContract, classes: Sequence[str]) -> None:
    """A model's classes must be the dataset's, in number (names may differ)."""
    if len(classes) != len(contract.classes):
        raise CompressionError(f"the model predicts {len(contract.classes)} classes; the dataset has {len(classes)}")
