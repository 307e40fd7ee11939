"""Architecture design as a registered method: `architecture:<conversions>:key=value...`.

    architecture:depthwise                              depthwise-separable 3x3 convolutions
    architecture:low-rank:energy=0.9:recover=finetune:recover_epochs=3
    architecture:depthwise+low-rank:rank=16:recover=distill:recover_epochs=8:match_steps=300

Conversions are joined with '+' (a ',' separates pipeline steps). Without recovery the converted
network is measured as initialized (the SVD factors keep most of a Linear layer; new depthwise
layers start from scratch and need recovery). The artifact's header records which layers became
which block (and each low-rank layer's rank), so `load_artifact` rebuilds the converted network
from the file alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from compression import CompressionError
from compression.architecture.blocks import LowRankLinear, SeparableConv2d
from compression.architecture.conversion import CONVERSIONS, ArchitectureConfig, _replace, convert, layer_table
from compression.architecture.recovery import RECOVERY_METHODS, RecoveryConfig, recover
from compression.methods import Compressed, Context, register_method

RECOVER = ("none", *RECOVERY_METHODS)


@dataclass(frozen=True)
class ArchitectureStep:
    convert: str = "depthwise"        # depthwise | low-rank | depthwise+low-rank
    rank: int | None = None           # low-rank: one rank for every Linear layer ...
    energy: float | None = None       # ... or the kept-energy share per layer
    min_in_channels: int = 1          # depthwise: convs with fewer input channels are kept
    recover: str = "none"             # none | finetune | distill (from the original)
    recover_epochs: int = 3
    lr: float = 2e-3
    subset: int | None = None         # recovery on the first N training images
    augment: bool = True
    temperature: float = 4.0
    alpha: float = 0.9
    match_steps: int = 0              # per new layer, fit the original layer's output first
    seed: int = 0
    kind = "architecture"

    def __post_init__(self):
        self.conversion()
        if self.recover not in RECOVER:
            raise CompressionError(f"recover must be one of {', '.join(RECOVER)}, got {self.recover!r}")
        if self.recover != "none":
            self.recovery()

    def conversion(self) -> ArchitectureConfig:
        if not isinstance(self.convert, str):
            raise CompressionError(f"convert must be text such as depthwise+low-rank, got {self.convert!r}")
        parts = tuple(p for p in self.convert.split("+") if p)
        if not parts or any(p not in CONVERSIONS for p in parts):
            raise CompressionError(f"convert must be {' or '.join(CONVERSIONS)} joined by '+', got {self.convert!r}")
        return ArchitectureConfig(parts, self.rank, self.energy, self.min_in_channels, self.seed)

    def recovery(self) -> RecoveryConfig:
        return RecoveryConfig(self.recover, self.recover_epochs, self.lr, self.subset, self.augment,
                              self.temperature, self.alpha, self.match_steps, seed=self.seed)


def structure(converted: nn.Module) -> dict[str, Any]:
    """Which layers are separable blocks and which low-rank (with their ranks)."""
    return {"separable": [n for n, m in converted.named_modules() if isinstance(m, SeparableConv2d)],
            "low_rank": {n: m.rank for n, m in converted.named_modules() if isinstance(m, LowRankLinear)}}


def converted(*, base: dict[str, Any], separable: list[str], low_rank: dict[str, int]) -> nn.Module:
    """The builder artifact headers name: the base architecture with the recorded layers replaced
    by blocks of the same shapes (untrained; the artifact's weights are loaded into it)."""
    from compression.refs import rebuild
    model = rebuild(base)
    modules = dict(model.named_modules())
    for name in separable:
        _replace(model, name, SeparableConv2d.like(modules[name]))
    for name, rank in low_rank.items():
        layer = modules[name]
        _replace(model, name, LowRankLinear(layer.in_features, layer.out_features, rank, bias=layer.bias is not None))
    return model


def apply(model: nn.Module, cfg: ArchitectureStep, ctx: Context) -> Compressed:
    new = convert(model, cfg.conversion()).to(ctx.device)
    extra: dict[str, Any] = {"stage": "converted"}
    history: list[dict] = []
    stopped = False
    if cfg.recover != "none":
        trained, matched = recover(new, ctx.dataset, cfg.recovery(), teacher=ctx.original, device=ctx.device,
                                   progress=ctx.progress, should_stop=ctx.should_stop)
        new, history, stopped = trained.model, trained.history, trained.stopped
        extra.update(stage="recovered", matched=matched)
    new = new.eval()
    extra["layers"] = layer_table(model, new, ctx.dataset.input_shape, ctx.device)
    architecture = {"name": ctx.resolved.name, "builder": "compression.architecture.method:converted",
                    "kwargs": {"base": ctx.resolved.architecture, **structure(new)}}
    return Compressed(new, architecture=architecture, history=history, extra=extra, stopped=stopped)


register_method(
    "architecture", ArchitectureStep, apply, positional=("convert",), units=lambda c: max(1, c.recover_epochs)
    if c.recover != "none" else 1,
    knobs={"convert": {"choices": ["depthwise", "low-rank", "depthwise+low-rank"]},
           "rank": {"min": 1, "help": "low-rank: one rank for every Linear layer"},
           "energy": {"min": 0.0, "max": 1.0, "min_open": True, "help": "low-rank: kept share of sum(s^2)"},
           "recover": {"choices": list(RECOVER), "help": "train the converted network afterwards"},
           "recover_epochs": {"min": 0, "max": 200}, "match_steps": {"min": 0, "max": 100000}},
    help="rebuild layers as depthwise-separable convolutions and/or rank-K factorized Linear layers, "
         "then optionally recover by fine-tuning or distillation from the original")
