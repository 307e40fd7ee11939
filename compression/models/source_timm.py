"""timm:<arch>: timm's create_model for the dataset's classes and channels. The architecture's
pretrained_cfg gives its input contract: mean/std, and the input size where the network needs one
(`fixed_input_size`, the ViTs), else the dataset's. `pretrained`: the published weights, read from
the local Hugging Face / torch cache (downloaded when online)."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from compression import CompressionError
from compression.contract import InputContract
from compression.data import Dataset
from compression.refs import TIMM, ModelRef, Source, register_source


def _timm():
    try:
        import timm
    except ImportError:  # pragma: no cover - timm is in requirements.txt
        raise CompressionError("timm:<arch> needs the timm package: pip install timm") from None
    return timm


def pretrained_cfg(arch: str) -> dict[str, Any]:
    cfg = _timm().models.get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {}


class TimmSource(Source):
    kind = "timm"
    prefix = TIMM
    builders = ("timm",)
    pretrained = True

    def check(self, ref: ModelRef) -> None:
        arch = ref.text[len(TIMM):]
        if not _timm().models.is_model(arch):
            raise CompressionError(f"unknown timm architecture {arch!r}; e.g. resnet18, mobilenetv3_small_100, "
                                   "vit_tiny_patch16_224 (timm.list_models())")

    def contract(self, ref: ModelRef, data: Dataset) -> InputContract:
        cfg = pretrained_cfg(ref.text[len(TIMM):])
        side = data.input_shape[1]
        if cfg.get("fixed_input_size") and cfg.get("input_size"):
            side = int(cfg["input_size"][-1])
        mean, std = cfg.get("mean") or data.mean, cfg.get("std") or data.std
        from compression.refs import _channels
        c = data.input_shape[0]
        return InputContract(_channels(tuple(mean), c), _channels(tuple(std), c), (side, side), c,
                             tuple(data.classes), "timm pretrained_cfg")

    def architecture(self, ref: ModelRef, data: Dataset, contract: InputContract) -> dict[str, Any]:
        arch = ref.text[len(TIMM):]
        kwargs: dict[str, Any] = {"arch": arch, "num_classes": data.num_classes, "in_chans": data.input_shape[0]}
        if pretrained_cfg(arch).get("fixed_input_size"):
            kwargs["img_size"] = int(contract.input_size[0])
        return {"name": ref.text, "builder": "timm", "kwargs": kwargs}

    def build(self, ref: ModelRef, data: Dataset, contract: InputContract) -> nn.Module:
        recipe = self.architecture(ref, data, contract)
        if not ref.pretrained:
            return self.rebuild("timm", recipe["kwargs"])
        return published_model(ref.text[len(TIMM):], recipe["kwargs"])

    def rebuild(self, builder: str, kwargs: dict[str, Any]) -> nn.Module:
        kwargs = dict(kwargs)
        arch = kwargs.pop("arch", None)
        if not isinstance(arch, str) or not _timm().models.is_model(arch):
            raise CompressionError(f"artifact names an unknown timm architecture {arch!r}")
        try:
            return _timm().create_model(arch, pretrained=False, **kwargs).eval()
        except (TypeError, ValueError, AssertionError) as exc:
            raise CompressionError(f"timm:{arch} cannot be built with {kwargs}: {str(exc).splitlines()[0][:160]}") from None

    def references(self) -> list[str]:
        return [TIMM + a for a in _timm().list_models()]


def published_model(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    """timm:<arch> with its published weights (from the local cache; online when allowed), the
    classifier replaced for kwargs["num_classes"] by timm itself."""
    import os
    if os.environ.get("COMPRESSION_OFFLINE"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return _timm().create_model(arch, pretrained=True, **kwargs).eval()
    except Exception as exc:  # offline and not cached, or a failed download
        cfg = pretrained_cfg(arch)
        where = cfg.get("hf_hub_id") or cfg.get("url") or arch
        from pathlib import Path
        cache = Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME", "~/.cache/huggingface") + "/hub").expanduser()
        raise CompressionError(f"timm:{arch}: published weights ({where}) not found in {cache} and could not be "
                               f"downloaded ({type(exc).__name__}); go online once, or drop --pretrained") from None


register_source(TimmSource())
