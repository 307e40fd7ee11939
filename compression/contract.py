"""The input contract: what a model expects of an image, which belongs to the model, not the data.

A deployer needs nothing else to feed a model: the per-channel `mean` and `std` applied to pixels
scaled to [0, 1], the `input_size` (height, width) images are resized to, the number of `channels`
and the `classes` in output order. Every exported file carries it as one JSON object with exactly
the keys of `to_json()`; model cards and artifact headers record it beside the architecture.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from compression import CompressionError
from compression.data import Dataset

KEYS = ("mean", "std", "input_size", "channels", "classes")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # what torchvision's and most timm weights were trained with
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputContract:
    mean: tuple[float, ...]          # per channel, of pixels scaled to [0, 1]
    std: tuple[float, ...]
    input_size: tuple[int, int]      # (height, width) the images are resized to
    channels: int                    # 1 (grayscale) or 3 (RGB)
    classes: tuple[str, ...]         # output index -> class name
    source: str = "dataset"          # where it came from: dataset, zoo card, torchvision, timm, hf, user

    def __post_init__(self) -> None:
        def bad(key: str, value: Any, want: str) -> None:
            raise CompressionError(f"input contract: {key} {value!r} {want}")

        def number(x: Any) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
        ch = self.channels
        if isinstance(ch, bool) or not isinstance(ch, int) or ch not in (1, 3):
            bad("channels", ch, "must be 1 (grayscale) or 3 (RGB)")
        for key in ("mean", "std"):
            values = getattr(self, key)
            if not isinstance(values, (tuple, list)) or len(values) != ch or not all(number(v) for v in values):
                bad(key, values, f"must be {ch} finite number(s), one per channel")
        if any(s <= 0 for s in self.std):
            bad("std", self.std, "must be positive")
        size = self.input_size
        if (not isinstance(size, (tuple, list)) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 16384 for v in size)):
            bad("input_size", size, "must be (height, width), integers in [1, 16384]")
        if (not isinstance(self.classes, (tuple, list)) or len(self.classes) < 2
                or not all(isinstance(c, str) for c in self.classes)):
            bad("classes", self.classes, "must be at least 2 class names")
        if not isinstance(self.source, str):
            bad("source", self.source, "must be text")

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


def chance_warning(accuracy: float, classes: int, contract: InputContract, *, points: float = 0.05) -> str | None:
    """A baseline within `points` of chance: the likely cause is a normalization the weights were
    not trained with; say which one is in use and how to set another (None when it is not)."""
    chance = 1.0 / max(2, classes)
    if accuracy > chance + points:
        return None
    return (f"accuracy {accuracy * 100:.1f} % is within {points * 100:.0f} points of chance ({chance * 100:.1f} %): "
            f"the weights may expect another input normalization than the one in use ({contract.describe()}). "
            "Set it with --normalize dataset|imagenet|none or --mean A,B,C --std A,B,C "
            "(on the home page: the normalization of the uploaded model)")


# ---------------------------------------------------------------------------------------------
# the dataset seen through a contract

def model_view(data: Any, contract: InputContract) -> Any:
    """`data` (compression.data.Dataset) as the model expects it: normalized with the contract's
    mean/std and resized to its input size. The same object when nothing differs (a zoo model on
    its own dataset); an image folder is read again at the contract's size (better than resizing
    a small decode); other datasets are resized per batch. Every `view.batches(...)` and
    `view.normalize(...)` caller then feeds the model what it was trained on."""
    from compression.data import load_dataset
    raw = getattr(data, "raw", None) or data
    c, h, w = raw.input_shape
    size = tuple(int(v) for v in contract.input_size)
    if (tuple(raw.mean) == tuple(contract.mean) and tuple(raw.std) == tuple(contract.std)
            and size == (h, w)):
        return raw
    base = raw
    if size != (h, w) and raw.name.startswith("imagefolder:") and size[0] == size[1]:
        root = raw.name.split(":", 1)[1].rpartition("?size=")
        path = root[0] if root[1] else root[2]
        base = load_dataset(f"imagefolder:{path}?size={size[0]}")
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(Dataset)}
    values.update(mean=tuple(contract.mean), std=tuple(contract.std))
    resize = None if tuple(base.input_shape[1:]) == size else size
    return ContractView(**values, raw=raw, resize=resize)


@dataclasses.dataclass(frozen=True)
class ContractView(Dataset):
    """A dataset normalized (and resized) for one model's input contract; `raw` is the dataset as
    loaded. The name stays the dataset's: runs on it are runs on that dataset."""
    raw: Any = None
    resize: tuple[int, int] | None = None   # (height, width) batches are resized to, if any

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = tuple(self.test.images.shape[1:])
        return (c, *self.resize) if self.resize else (c, h, w)

    def normalize(self, images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        x = super().normalize(images, device)
        if self.resize and tuple(x.shape[-2:]) != tuple(self.resize):
            x = F.interpolate(x, size=self.resize, mode="bilinear", antialias=True, align_corners=False)
        return x
