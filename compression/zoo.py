"""Reproduce a zoo checkpoint from the recipe in its model card, and record what it measured.

A model that has a recipe but no weights yet keeps its card in assets/recipes/ (not assets/models/,
so `zoo_names()` and everything that lists the zoo does not offer it); training it writes the
checkpoint and the measured card into assets/models/, and from then on it is a zoo model."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
from dataclasses import fields
from typing import Any, Callable

import torch

from compression import CompressionError
from compression.data import load_dataset
from compression.device import describe_device
from compression.metrics import measure
from compression.models import _resolve_builder, model_card, state_dict_bytes, zoo_names
from compression.paths import ASSETS_DIR, MODELS_DIR
from compression.training import ProgressFn, TrainConfig, TrainResult

DEFAULT_TRAINER = "compression.training:fit"
RECIPES_DIR = ASSETS_DIR / "recipes"  # cards of models with a recipe and no checkpoint yet


def pending_names() -> list[str]:
    """Models with a recipe in assets/recipes/ that the zoo does not have yet (no card in assets/models/)."""
    zoo = set(zoo_names())
    return sorted(p.stem for p in RECIPES_DIR.glob("*.json") if p.stem not in zoo)


def training_card(name: str) -> dict[str, Any]:
    """The card to train `name` from: the zoo's own, else the pending recipe's."""
    if name in zoo_names():
        return model_card(name)
    if name in pending_names():
        return json.loads((RECIPES_DIR / f"{name}.json").read_text())
    raise CompressionError(f"unknown model {name!r}; choose one of {', '.join(zoo_names() + pending_names())}")


def recipe_config(recipe: dict[str, Any]) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in recipe.items() if k in known})


def _trainer(path: str) -> Callable[..., TrainResult]:
    module, _, fn = path.partition(":")
    if not module.startswith("compression"):
        raise CompressionError(f"trainer {path!r} is outside compression/")
    return getattr(importlib.import_module(module), fn)


def train_zoo_model(name: str, *, device: torch.device | str = "cpu",
                    progress: ProgressFn | None = None) -> dict[str, Any]:
    """Train `name` from its card's recipe (fixed seed), write checkpoint and card, return the card."""
    card = training_card(name)
    recipe = card["recipe"]
    cfg = recipe_config(recipe)
    dataset = load_dataset(card["dataset"])
    torch.manual_seed(cfg.seed)  # the initial weights come from the seed too
    model = _resolve_builder(card)(**card.get("builder_kwargs", {}))
    trainer = _trainer(recipe.get("trainer", DEFAULT_TRAINER))
    result = trainer(model, dataset, cfg, device=device, progress=progress)
    trained = result.model.cpu().eval()
    artifact = state_dict_bytes(trained)
    metrics = measure(trained, dataset, device="cpu", artifact=artifact)  # the card's numbers: CPU, all test images
    path = MODELS_DIR / card.get("checkpoint", f"{name}.pt")
    path.write_bytes(artifact)
    card.update({
        "test_accuracy": metrics.accuracy, "accuracy_n": metrics.accuracy_n,
        "params": metrics.params, "size_bytes": metrics.size_bytes, "macs": metrics.macs,
        "train_time_s": round(result.seconds, 1), "trained_on": describe_device(torch.device(device)),
        "torch_version": torch.__version__, "trained_at": dt.date.today().isoformat(),
        "history": [{k: round(v, 4) if isinstance(v, float) else v for k, v in h.items()}
                    for h in result.history],
    })
    tmp = MODELS_DIR / f".{name}.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, MODELS_DIR / f"{name}.json")
    return card
