"""Recovery of a converted model: optionally match each new layer to the original layer's output
(layer-wise distillation), then fine-tune on the labels or distill from the original."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from compression import CompressionError
from compression.architecture.blocks import LowRankLinear, SeparableConv2d
from compression.data import Dataset
from compression.models import clone_model
from compression.teacher import frozen_teacher_loss
from compression.training import ProgressFn, StopFn, TrainConfig, TrainResult, accuracy_on, fit

RECOVERY_METHODS = ("finetune", "distill")


@dataclass(frozen=True)
class RecoveryConfig:
    method: str = "finetune"     # finetune (labels only) | distill (the original's soft labels too)
    epochs: int = 3              # passes over the training images
    lr: float = 2e-3             # Adam, cosine to zero (the zoo recipe's peak rate)
    subset: int | None = None    # train on the first N training images only (None: all 55k)
    augment: bool = True         # the zoo recipe's shifts and flips
    temperature: float = 4.0     # distill: softening of both distributions
    alpha: float = 0.9           # distill: weight of the soft (teacher) term
    match_steps: int = 0         # before training: steps per new layer fitting the original layer's output
    match_images: int = 2048     # training images those steps draw from
    seed: int = 0

    def __post_init__(self):
        if self.method not in RECOVERY_METHODS:
            raise CompressionError(f"recovery method must be one of {', '.join(RECOVERY_METHODS)}, got {self.method!r}")
        if not isinstance(self.epochs, int) or not 0 <= self.epochs <= 200:
            raise CompressionError(f"recovery epochs must be an integer in [0, 200], got {self.epochs!r}")
        if not isinstance(self.match_steps, int) or not 0 <= self.match_steps <= 100_000:
            raise CompressionError(f"match_steps must be an integer in [0, 100000], got {self.match_steps!r}")
        if not isinstance(self.match_images, int) or not 1 <= self.match_images <= 100_000:
            raise CompressionError(f"match_images must be an integer in [1, 100000], got {self.match_images!r}")
        if self.epochs == 0 and self.match_steps == 0:
            raise CompressionError(f"recovery needs epochs >= 1 or match_steps >= 1, got epochs={self.epochs!r}, "
                                   f"match_steps={self.match_steps!r}")
        if not isinstance(self.temperature, (int, float)) or not 0 < self.temperature <= 100:
            raise CompressionError(f"temperature must be in (0, 100], got {self.temperature!r}")
        if not isinstance(self.alpha, (int, float)) or not 0 <= self.alpha <= 1:
            raise CompressionError(f"alpha must be in [0, 1], got {self.alpha!r}")
        self.train_config()  # lr, subset and seed are checked by TrainConfig

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=128, optimizer="adam",
                           schedule="cosine", augment=self.augment, weight_decay=1e-4, seed=self.seed,
                           split="train", subset=self.subset, eval_split="val")


def _new_layers(converted: nn.Module) -> list[str]:
    return [n for n, m in converted.named_modules() if isinstance(m, (SeparableConv2d, LowRankLinear))]


@torch.no_grad()
def _capture(model: nn.Module, name: str, x: torch.Tensor, *, want: str, batch: int = 512) -> torch.Tensor:
    """The input (want="input") or output of submodule `name` for the images x, in eval mode."""
    seen: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        seen.append((inputs[0] if want == "input" else output).detach())
    handle = model.get_submodule(name).register_forward_hook(hook)
    model.eval()
    try:
        for start in range(0, len(x), batch):
            model(x[start:start + batch])
    finally:
        handle.remove()
    return torch.cat(seen)


def match_layers(original: nn.Module, converted: nn.Module, dataset: Dataset, cfg: RecoveryConfig, *,
                 device: torch.device | str = "cpu", progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Layer-wise distillation: in forward order, train each new block so that, fed the converted
    model's own input, it reproduces the original layer's output (mean squared error relative to
    the output's power). A copy of `converted` is trained; returns it and the relative error per
    layer. New depthwise filters start untrained; this gives the later training a start that
    already knows what every layer computed."""
    device = torch.device(device)
    model, teacher = clone_model(converted).to(device), clone_model(original).to(device).eval()
    x = dataset.normalize(dataset.train.head(cfg.match_images).images, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    names, report = _new_layers(model), []
    for n_done, name in enumerate(names):
        inputs = _capture(model, name, x, want="input")
        target = _capture(teacher, name, x, want="output")
        power = target.pow(2).mean().clamp_min(1e-12)
        block = model.get_submodule(name).train()
        opt = torch.optim.Adam(block.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.match_steps)
        for step in range(cfg.match_steps):
            if should_stop is not None and should_stop():
                return model.eval(), report
            idx = torch.randint(0, len(x), (min(256, len(x)),), generator=gen).to(device)
            loss = torch.nn.functional.mse_loss(block(inputs[idx]), target[idx]) / power
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        block.eval()
        with torch.no_grad():
            error = float(torch.nn.functional.mse_loss(block(inputs), target) / power)
        report.append({"layer": name, "relative_error": error})
        if progress is not None:
            progress({"stage": "match", "layer": name, "relative_error": error,
                      "step": n_done + 1, "steps": len(names)})
    return model.eval(), report


def recover(model: nn.Module, dataset: Dataset, cfg: RecoveryConfig, *, teacher: nn.Module | None = None,
            device: torch.device | str = "cpu", progress: ProgressFn | None = None,
            should_stop: StopFn | None = None) -> tuple[TrainResult, list[dict[str, Any]]]:
    """Recover a copy of the converted `model`: optionally match its new layers to the `teacher`'s
    (the original, copied and never modified), then fine-tune on the labels or distill from the
    teacher's soft labels for the same augmented batch. Returns the training result and the
    per-layer matching errors."""
    device = torch.device(device)
    needs_teacher = cfg.method == "distill" or cfg.match_steps > 0
    if needs_teacher and teacher is None:
        raise CompressionError("distillation and layer matching need the original model as teacher")
    matched: list[dict[str, Any]] = []
    if cfg.match_steps > 0:
        model, matched = match_layers(teacher, model, dataset, cfg, device=device, progress=progress,
                                      should_stop=should_stop)
        stopped = should_stop is not None and should_stop()
        if progress is not None and not stopped:  # the starting point of the training that follows
            progress({"stage": "matched", "epoch": 0, "epochs": cfg.epochs,
                      "val_accuracy": accuracy_on(model, dataset, "val", device)})
        if stopped or cfg.epochs == 0:
            return TrainResult(model=model, stopped=stopped), matched
    kwargs = ({"loss_fn": frozen_teacher_loss(teacher, device, temperature=cfg.temperature, alpha=cfg.alpha)}
              if cfg.method == "distill" else {})
    return fit(model, dataset, cfg.train_config(), device=device, progress=progress,
               should_stop=should_stop, **kwargs), matched
