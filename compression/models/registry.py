"""The model-source registry: what a model reference is (`ModelRef`) and the kinds of reference
(`Source` subclasses in compression/models/source_*.py, each registering itself). The resolver,
compression.refs, re-exports these names; it imports no source module at import time."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import torch
import torch.nn as nn

from compression import CompressionError
from compression.contract import InputContract
from compression.data import Dataset


@dataclass(frozen=True)
class ModelRef:
    """A parsed, checked reference (no weights loaded yet)."""
    text: str                       # without options: "cnn", "torchvision:resnet18", "run:42"
    kind: str                       # zoo | torchvision | timm | hf | entry | run
    weights: str | None = None      # a user's state_dict file for the architecture
    pretrained: bool = False        # torchvision/timm: the published weights
    normalize: str | None = None    # dataset | imagenet | none: the normalization the weights expect
    mean: tuple[float, ...] | None = None  # or stated per channel (with std)
    std: tuple[float, ...] | None = None
    input_size: int | None = None   # images resized to input_size x input_size

    @property
    def label(self) -> str:
        """The name results are stored under (the file name added for user weights)."""
        return f"{self.text}+{Path(self.weights).name}" if self.weights else self.text

    @property
    def options(self) -> dict[str, str]:
        out = {}
        if self.weights:
            out["weights"] = str(self.weights)
        if self.pretrained:
            out["pretrained"] = "1"
        if self.normalize:
            out["normalize"] = self.normalize
        if self.mean is not None:
            out["mean"] = ",".join(f"{v:g}" for v in self.mean)
            out["std"] = ",".join(f"{v:g}" for v in self.std or ())
        if self.input_size:
            out["input_size"] = str(self.input_size)
        return out

    @property
    def spec(self) -> str:
        """The reference with its options as one string: parse(spec) == self (for jobs, steps)."""
        return f"{self.text}?{urlencode(self.options)}" if self.options else self.text


class Source:
    """One kind of model reference. Subclasses (compression/models/source_*.py) override what
    differs; `register_source(instance)` makes the resolver know it."""
    kind = ""
    prefix = ""                     # "torchvision:"; "" for bare names (the zoo and named models)
    builders: tuple[str, ...] = ()  # architecture-recipe builder names this source rebuilds
    pretrained = False              # whether `pretrained` means something for it

    def check(self, ref: ModelRef) -> None:
        """Raise a one-line CompressionError if the reference names nothing that exists."""

    def default_dataset(self, ref: ModelRef) -> str | None:
        return None

    def check_input(self, ref: ModelRef, data: Dataset) -> None:
        """Refuse a dataset the model cannot take (channels, classes)."""

    def contract(self, ref: ModelRef, data: Dataset) -> InputContract:
        """The model's own input contract (before the user's --normalize/--input-size)."""
        return InputContract.of_dataset(data, source=self.kind)

    def architecture(self, ref: ModelRef, data: Dataset, contract: InputContract) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, ref: ModelRef, data: Dataset, contract: InputContract) -> nn.Module:
        """The model with its own weights (a card's checkpoint, published ones), or the untrained
        module when the user gives weights (ref.weights, loaded by the resolver)."""
        from compression.refs import rebuild
        return rebuild(self.architecture(ref, data, contract))

    def adapt_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The user's state_dict in the key layout of the built module (hf adds its wrapper's prefix)."""
        return state

    def rebuild(self, builder: str, kwargs: dict[str, Any]) -> nn.Module:
        raise CompressionError(f"artifact names a builder {builder!r} this code does not rebuild")

    def references(self) -> list[str]:
        """What a picker offers of this kind (may be long: every torchvision architecture)."""
        return []


_SOURCES: dict[str, Source] = {}
_BUILTINS = ("compression.models.source_zoo", "compression.models.source_torchvision",
             "compression.models.source_timm", "compression.models.source_hf",
             "compression.models.source_entry", "compression.models.source_run")


def register_source(source: Source) -> Source:
    _SOURCES[source.kind] = source
    return source


def sources() -> dict[str, Source]:
    for module in _BUILTINS:
        importlib.import_module(module)
    return _SOURCES


def source_of(kind: str) -> Source:
    return sources()[kind]


KINDS = ("zoo", "torchvision", "timm", "hf", "entry", "run")
