"""Architecture registry (builder functions, never instances) and the pretrained zoo.

A zoo entry is a model card, `assets/models/<name>.json`, beside its checkpoint
`assets/models/<name>.pt` (a plain state_dict). The card names its builder
(`"compression.models:lenet5"`), the builder's keyword arguments, the dataset, the training
recipe and the numbers measured when it was trained. Families add zoo entries the same way:
register a builder with `@register_model` in their module and commit a card + checkpoint.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import io
import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from compression import CompressionError
from compression.paths import MODELS_DIR, home_dir

Builder = Callable[..., nn.Module]
_ARCHITECTURES: dict[str, Builder] = {}


def register_model(fn: Builder) -> Builder:
    """Add a builder to the registry under its function name."""
    _ARCHITECTURES[fn.__name__] = fn
    return fn


def architecture_names() -> list[str]:
    for name in zoo_names():  # builders of zoo entries may live in family modules
        card = model_card(name)
        if str(card.get("builder", "")).startswith("compression"):
            _resolve_builder(card)
    return sorted(_ARCHITECTURES)


def build_model(architecture: str, **kwargs: Any) -> nn.Module:
    """Build a freshly initialized model by architecture name."""
    if architecture not in _ARCHITECTURES:
        architecture_names()
    if architecture not in _ARCHITECTURES:
        raise CompressionError(
            f"unknown architecture {architecture!r}; choose one of {', '.join(architecture_names())}")
    return _ARCHITECTURES[architecture](**kwargs)


def takes_width(architecture: str) -> bool:
    """Whether the architecture's builder has a width multiplier (plain classifiers do; the
    multi-exit and slimmable models do not)."""
    import inspect
    if architecture not in _ARCHITECTURES:
        architecture_names()
    builder = _ARCHITECTURES.get(architecture)
    return builder is not None and "width" in inspect.signature(builder).parameters


def _scaled(channels: int, width: float) -> int:
    if not 0 < width <= 4:
        raise CompressionError(f"width multiplier must be in (0, 4], got {width}")
    return max(1, int(round(channels * width)))


@register_model
def mlp(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
        width: float = 1.0) -> nn.Module:
    """LeNet-300-100: the classic pruning benchmark (784-300-100-10 on 28x28 gray images)."""
    h1, h2 = _scaled(300, width), _scaled(100, width)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * image_size * image_size, h1), nn.ReLU(),
        nn.Linear(h1, h2), nn.ReLU(),
        nn.Linear(h2, num_classes),
    )


@register_model
def lenet5(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
           width: float = 1.0) -> nn.Module:
    """LeNet-5: 6 and 16 5x5 filters, then 120-84-10 (ReLU and max-pooling)."""
    c1, c2 = _scaled(6, width), _scaled(16, width)
    side = ((image_size // 2) - 4) // 2  # conv1 keeps size (padding 2), pool, conv2 -4, pool
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 6, 14, 14)
        nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),                      # (B, 16, 5, 5)
        nn.Flatten(),
        nn.Linear(c2 * side * side, _scaled(120, width)), nn.ReLU(),
        nn.Linear(_scaled(120, width), _scaled(84, width)), nn.ReLU(),
        nn.Linear(_scaled(84, width), num_classes),
    )


def conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@register_model
def cnn(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
        width: float = 1.0) -> nn.Module:
    """Small BatchNorm CNN: three 3x3 conv blocks (16-32-64 channels), each halving the image,
    then 128 hidden units. The teacher and the structured-pruning target; ~2 M MACs per image."""
    c1, c2, c3 = _scaled(16, width), _scaled(32, width), _scaled(64, width)
    hidden = _scaled(128, width)
    side = image_size // 8
    return nn.Sequential(
        *conv_bn_relu(in_channels, c1), nn.MaxPool2d(2),  # (B, 16, 14, 14)
        *conv_bn_relu(c1, c2), nn.MaxPool2d(2),           # (B, 32, 7, 7)
        *conv_bn_relu(c2, c3), nn.MaxPool2d(2),           # (B, 64, 3, 3)
        nn.Flatten(),
        nn.Linear(c3 * side * side, hidden), nn.ReLU(inplace=True), nn.Dropout(0.2),
        nn.Linear(hidden, num_classes),
    )


# ---------------------------------------------------------------------------------------------
# zoo

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def user_models_dir() -> Path:
    """Where models the users brought (their own weights) are kept: $COMPRESSION_HOME/models."""
    return home_dir() / "models"


def zoo_names() -> list[str]:
    """Names of the pretrained models: the zoo's cards in assets/models/, then the users' own."""
    zoo = sorted(p.stem for p in MODELS_DIR.glob("*.json"))
    users = sorted(p.stem for p in user_models_dir().glob("*.json")) if user_models_dir().is_dir() else []
    return zoo + [n for n in users if n not in zoo]


def _card_path(name: str) -> Path | None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return None
    for folder in (MODELS_DIR, user_models_dir()):
        if (folder / f"{name}.json").is_file():
            return folder / f"{name}.json"
    return None


def model_card(name: str) -> dict[str, Any]:
    path = _card_path(name)
    if path is None:
        raise CompressionError(f"unknown model {name!r}; choose one of {', '.join(zoo_names())}")
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise CompressionError(f"{path}: model card is not valid JSON") from None


def checkpoint_path(name: str) -> Path:
    card_path = _card_path(name)
    if card_path is None:
        model_card(name)  # raises the unknown-model message
    return card_path.parent / model_card(name).get("checkpoint", f"{name}.pt")


def _resolve_builder(card: dict[str, Any]) -> Builder:
    module_name, _, fn_name = card["builder"].partition(":")
    if not module_name.startswith("compression"):
        raise CompressionError(f"model card {card.get('name')!r}: builder {card['builder']!r} is outside compression/")
    fn = getattr(importlib.import_module(module_name), fn_name)
    _ARCHITECTURES.setdefault(fn_name, fn)
    return fn


def build_from_card(name: str) -> nn.Module:
    """The zoo entry's architecture with fresh (untrained) weights. A named model's card may name
    any builder the resolver rebuilds (torchvision, timm, hf, entry points: compression.refs.rebuild)."""
    card = model_card(name)
    if not str(card.get("builder", "")).startswith("compression"):
        from compression.refs import rebuild
        return rebuild({"builder": card.get("builder"), "kwargs": card.get("builder_kwargs", {})})
    return _resolve_builder(card)(**card.get("builder_kwargs", {}))


def load_pretrained(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """A zoo model with its checkpoint, in eval mode. Callers that cache it must not mutate it."""
    model = build_from_card(name)
    path = checkpoint_path(name)
    if not path.is_file():
        raise CompressionError(
            f"checkpoint for {name!r} missing at {path}; run `python -m compression zoo train {name}`")
    state = read_state_dict(path)
    load_state_dict_checked(model, state, source=str(path))
    return model.to(device).eval()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state_dict (.pt/.pth or .safetensors) without unpickling code."""
    from compression.weights import read_weights
    return read_weights(Path(path))


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load weights, or raise one message listing the first missing/unexpected/mismatched keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"{label}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                 for label, items in (("missing", missing), ("unexpected", unexpected),
                                      ("shape mismatch", shapes)) if items]
        raise CompressionError(f"{source} does not fit this architecture ({'; '.join(parts)})")
    model.load_state_dict(with_own_metadata(model, state, own))


def with_own_metadata(model: nn.Module, state: dict[str, torch.Tensor], own: dict | None = None) -> dict:
    """`state` carrying the model's own per-module versions when it has none (a dict built key by key,
    a safetensors file): torchvision's MNASNet refuses a state_dict without its `version` entry."""
    if getattr(state, "_metadata", None) is not None:
        return state
    meta = getattr(own if own is not None else model.state_dict(), "_metadata", None)
    if meta is None:
        return state
    out = OrderedDict(state)
    out._metadata = meta  # type: ignore[attr-defined]
    return out


def state_dict_bytes(model: nn.Module) -> bytes:
    """The dense fp32 artifact: torch.save of the state_dict, as written to disk."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def state_dict_hash(model: nn.Module) -> str:
    """SHA-256 over every tensor's bytes: proves a cached model was not modified."""
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def clone_model(model: nn.Module) -> nn.Module:
    """A deep copy, so compression never touches the caller's (possibly cached) model."""
    return copy.deepcopy(model)



def load_model(name: str, *, weights: str | Path | None = None, device: torch.device | str = "cpu") -> nn.Module:
    """A zoo model, or the zoo entry's architecture with the user's own weights file."""
    if weights is None:
        return load_pretrained(name, device)
    path = Path(weights)
    model = build_from_card(name)
    load_state_dict_checked(model, read_state_dict(path), source=path.name)
    return model.to(device).eval()


def expected_input(name: str) -> tuple[int, int, int, int]:
    """(channels, height, width, classes) a zoo model was built for."""
    card = model_card(name)
    if "input_contract" in card:  # a named model records its contract
        contract = card["input_contract"]
        h, w = contract["input_size"]
        return int(contract["channels"]), int(h), int(w), len(contract["classes"])
    kw = card.get("builder_kwargs", {})
    if "input_shape" in kw:  # builders that record it whole (compression.dynamic.attach)
        c, h, w = kw["input_shape"]
        return int(c), int(h), int(w), int(kw.get("num_classes", 10))
    side = kw.get("image_size", 28)
    return kw.get("in_channels", 1), side, side, kw.get("num_classes", 10)


import compression.zoo_resnet_vit  # noqa: E402,F401  registers resnet and vit (builders without weights yet)
