"""entry:<name>: a builder an installed package registers under the entry-point group
`compression_explorer.models`: `fn(*, num_classes, in_channels, image_size) -> nn.Module`; an
optional attribute `fn.dataset` names its default dataset (a team adds architectures with pip)."""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from compression import CompressionError
from compression.contract import InputContract
from compression.data import Dataset
from compression.refs import ENTRY, ENTRY_POINT_GROUP, ModelRef, Source, entry_points, register_source


class EntrySource(Source):
    kind = "entry"
    prefix = ENTRY

    def check(self, ref: ModelRef) -> None:
        name = ref.text[len(ENTRY):]
        if name not in entry_points():
            known = ", ".join(sorted(entry_points())) or "none installed"
            raise CompressionError(f"no model {name!r} registered under the entry-point group "
                                   f"{ENTRY_POINT_GROUP!r} ({known})")

    def default_dataset(self, ref: ModelRef) -> str | None:
        return getattr(entry_builder(ref.text), "dataset", "fashion-mnist")

    def contract(self, ref: ModelRef, data: Dataset) -> InputContract:
        return InputContract.of_dataset(data, source="entry point (dataset's)")

    def architecture(self, ref: ModelRef, data: Dataset, contract: InputContract) -> dict[str, Any]:
        h = int(contract.input_size[0])
        return {"name": ref.text, "builder": ref.text,
                "kwargs": {"num_classes": data.num_classes, "in_channels": data.input_shape[0], "image_size": h}}

    def rebuild(self, builder: str, kwargs: dict[str, Any]) -> nn.Module:
        return build_entry(builder, kwargs)

    def references(self) -> list[str]:
        return [ENTRY + n for n in sorted(entry_points())]


def entry_builder(text: str) -> Callable[..., nn.Module]:
    name = text[len(ENTRY):]
    ep = entry_points().get(name)
    if ep is None:
        raise CompressionError(f"no model {name!r} registered under the entry-point group {ENTRY_POINT_GROUP!r}")
    try:
        fn = ep.load()
    except Exception as exc:  # the installed package is broken: name it in one line
        raise CompressionError(f"entry point {name!r} ({ep.value}) could not be loaded: "
                               f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    if not callable(fn):
        raise CompressionError(f"entry point {name!r} ({ep.value}) is not a builder function")
    return fn


def build_entry(text: str, kwargs: dict[str, Any]) -> nn.Module:
    fn = entry_builder(text)
    try:
        model = fn(**kwargs)
    except TypeError as exc:  # the builder does not take the contract's keywords
        raise CompressionError(f"entry point {text[len(ENTRY):]!r} must be a builder fn(*, num_classes, "
                               f"in_channels, image_size) -> nn.Module; calling it with "
                               f"{', '.join(f'{k}={v}' for k, v in kwargs.items())} failed: {exc}") from None
    if not isinstance(model, nn.Module):
        raise CompressionError(f"entry point {text[len(ENTRY):]!r} returned {type(model).__name__}, not an nn.Module")
    return model


register_source(EntrySource())
