"""hf:<directory>: a Hugging Face transformers image classifier saved with `save_pretrained`, loaded
with AutoModelForImageClassification from the local directory (safetensors only, no remote code).
Its preprocessor_config.json gives the input contract (image_mean, image_std, size); the logits are
taken from the output object (`HFClassifier`). Artifacts record the model's config, so a stored
run rebuilds without the directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from compression import CompressionError
from compression.contract import InputContract
from compression.data import Dataset
from compression.refs import HF, ModelRef, Source, register_source


class HFClassifier(nn.Module):
    """A transformers image classifier whose forward returns the logits tensor."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def _directory(ref: ModelRef) -> Path:
    return Path(ref.text[len(HF):]).expanduser()


def read_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        raise CompressionError(f"hf:{folder}: no readable config.json (save the model with save_pretrained)") from None


def preprocessor(folder: Path) -> dict[str, Any]:
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise CompressionError(f"{path}: not valid JSON") from None


class HFSource(Source):
    kind = "hf"
    prefix = HF
    builders = ("hf",)

    def check(self, ref: ModelRef) -> None:
        folder = _directory(ref)
        if not folder.is_dir():
            raise CompressionError(f"hf:{folder}: not a folder (a model saved with save_pretrained)")
        read_config(folder)

    def check_input(self, ref: ModelRef, data: Dataset) -> None:
        config = read_config(_directory(ref))
        labels = len(config.get("id2label") or {}) or config.get("num_labels")
        if labels and int(labels) != data.num_classes:
            raise CompressionError(f"{ref.text} predicts {labels} classes; dataset {data.name!r} has {data.num_classes}")
        channels = config.get("num_channels", 3)
        if int(channels) != data.input_shape[0]:
            raise CompressionError(f"{ref.text} takes {channels}-channel images; dataset {data.name!r} has "
                                   f"{data.input_shape[0]}")

    def contract(self, ref: ModelRef, data: Dataset) -> InputContract:
        from compression.refs import _channels
        folder = _directory(ref)
        proc, config = preprocessor(folder), read_config(folder)
        c = data.input_shape[0]
        if proc.get("do_normalize", True) and proc.get("image_mean") is not None:
            mean, std = tuple(proc["image_mean"]), tuple(proc["image_std"])
        elif proc:
            mean, std = (0.0,) * c, (1.0,) * c
        else:
            mean, std = data.mean, data.std
        size = proc.get("size") or {}
        side = (size.get("height") or size.get("shortest_edge") if isinstance(size, dict) else size) \
            or config.get("image_size") or data.input_shape[1]
        side = int(side[0] if isinstance(side, (list, tuple)) else side)
        return InputContract(_channels(mean, c), _channels(std, c), (side, side), c, tuple(data.classes),
                             "hf preprocessor_config.json" if proc else "hf config")

    def architecture(self, ref: ModelRef, data: Dataset, contract: InputContract) -> dict[str, Any]:
        config = read_config(_directory(ref))
        return {"name": ref.text, "builder": "hf", "kwargs": {"config": config}}

    def build(self, ref: ModelRef, data: Dataset, contract: InputContract) -> nn.Module:
        if ref.weights:
            return self.rebuild("hf", self.architecture(ref, data, contract)["kwargs"])
        from transformers import AutoModelForImageClassification
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()  # a library never prints: no loading bars on the CLI's stderr
        folder = _directory(ref)
        if not any(folder.glob("*.safetensors")):
            raise CompressionError(f"hf:{folder}: no .safetensors weights (pickled .bin files are not loaded); "
                                   "save with save_pretrained(safe_serialization=True)")
        try:
            model = AutoModelForImageClassification.from_pretrained(str(folder), use_safetensors=True,
                                                                    local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError, KeyError) as exc:
            raise CompressionError(f"hf:{folder}: not loadable as an image classifier "
                                   f"({str(exc).splitlines()[0][:160]})") from None
        return HFClassifier(model).eval()

    def adapt_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return adapt_state(model, state)

    def rebuild(self, builder: str, kwargs: dict[str, Any]) -> nn.Module:
        from transformers import AutoConfig, AutoModelForImageClassification
        config = dict(kwargs.get("config") or {})
        model_type = config.pop("model_type", None)
        if not model_type:
            raise CompressionError("artifact's hf recipe has no model_type")
        try:
            cfg = AutoConfig.for_model(model_type, **config)
            return HFClassifier(AutoModelForImageClassification.from_config(cfg)).eval()
        except (ValueError, KeyError) as exc:
            raise CompressionError(f"hf model type {model_type!r} cannot be built: {str(exc).splitlines()[0][:160]}") from None


def adapt_state(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers state_dict (no 'model.' prefix) for an HFClassifier."""
    if isinstance(model, HFClassifier) and state and not any(k.startswith("model.") for k in state):
        return {f"model.{k}": v for k, v in state.items()}
    return state


register_source(HFSource())
