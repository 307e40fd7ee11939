"""The converters: new models with every eligible conv made depthwise-separable and/or every Linear
layer factorized (inputs untouched), and the measured per-layer table beside the calculator's
predictions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from compression import CompressionError
from compression.architecture.blocks import (LowRankLinear, SeparableConv2d, factorize_linear, kept_energy,
                                             rank_for_energy)
from compression.architecture.calculator import (_area, conv_macs, conv_params, linear_params, low_rank_params,
                                                 low_rank_saves, separable_conv_macs, separable_conv_params)
from compression.model_kinds import refuse_slimmable
from compression.models import clone_model

CONVERSIONS = ("depthwise", "low-rank")


@dataclass(frozen=True)
class SeparableConfig:
    min_in_channels: int = 1   # convert only convs with at least this many input channels
                               # (2 keeps a gray-image stem standard, as MobileNet keeps its first conv)
    seed: int = 0              # initialization of the new depthwise and pointwise weights

    def __post_init__(self):
        if not isinstance(self.min_in_channels, int) or not 1 <= self.min_in_channels <= 4096:
            raise CompressionError(f"min_in_channels must be an integer in [1, 4096], got {self.min_in_channels!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise CompressionError(f"seed must be a non-negative integer, got {self.seed!r}")


@dataclass(frozen=True)
class LowRankConfig:
    rank: int | None = None     # the same K for every Linear layer (capped at min(M, N))
    energy: float | None = None  # or per layer the smallest K keeping this share of sum(s^2)

    def __post_init__(self):
        if (self.rank is None) == (self.energy is None):
            raise CompressionError("low-rank needs exactly one of rank or energy, "
                                   f"got rank={self.rank!r}, energy={self.energy!r}")
        if self.rank is not None and (not isinstance(self.rank, int) or isinstance(self.rank, bool)
                                      or not 1 <= self.rank <= 1_000_000):
            raise CompressionError(f"rank must be an integer >= 1, got {self.rank!r}")
        if self.energy is not None and (not isinstance(self.energy, (int, float))
                                        or not 0 < self.energy <= 1):
            raise CompressionError(f"energy must be a fraction in (0, 1], got {self.energy!r}")


def _convertible_conv(module: nn.Module, cfg: SeparableConfig) -> str | None:
    """Why a conv is kept as it is, or None when it is converted."""
    if module.groups != 1:
        return "already grouped"
    if _area(module.kernel_size) == 1:
        return "1x1: nothing to separate"
    if module.in_channels < cfg.min_in_channels:
        return f"I={module.in_channels} < {cfg.min_in_channels}"
    return None


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def to_depthwise_separable(model: nn.Module, config: SeparableConfig | None = None) -> nn.Module:
    """A copy of `model` with every k x k (k > 1, groups = 1) Conv2d replaced by a SeparableConv2d.

    The new depthwise and pointwise weights start from PyTorch's default initialization: a trained
    filter bank is far from separable (one rank-1 term per input channel keeps ~30% of the
    weight energy on the zoo cnn), so the converted model needs recovery (`recover`)."""
    cfg = config or SeparableConfig()
    model = clone_model(model)
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's RNG state
        torch.manual_seed(cfg.seed)
        for name, module in list(model.named_modules()):
            if isinstance(module, nn.Conv2d) and not _inside_separable(model, name) \
                    and _convertible_conv(module, cfg) is None:
                _replace(model, name, SeparableConv2d.like(module))
    return model


def _inside_separable(model: nn.Module, name: str) -> bool:
    parent, _, _ = name.rpartition(".")
    return bool(parent) and isinstance(model.get_submodule(parent), SeparableConv2d)


def low_rank(model: nn.Module, rank: int | None = None, energy: float | None = None) -> nn.Module:
    """A copy of `model` with each Linear layer factorized at `rank` or at the `energy` share.

    A layer whose factors would not be smaller than the original (K*(M+N) >= M*N) is kept."""
    cfg = LowRankConfig(rank=rank, energy=energy)
    model = clone_model(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and not _inside_low_rank(model, name):
            k = _layer_rank(module, cfg)
            m, n = module.weight.shape
            if low_rank_saves(m, n, k):
                _replace(model, name, factorize_linear(module, k))
    return model


def _inside_low_rank(model: nn.Module, name: str) -> bool:
    parent, _, _ = name.rpartition(".")
    return bool(parent) and isinstance(model.get_submodule(parent), LowRankLinear)


def _layer_rank(linear: nn.Linear, cfg: LowRankConfig) -> int:
    m, n = linear.weight.shape
    if cfg.rank is not None:
        return min(cfg.rank, m, n)
    return rank_for_energy(torch.linalg.svdvals(linear.weight.detach().float()), cfg.energy)


@dataclass(frozen=True)
class ArchitectureConfig:
    convert: tuple[str, ...] = ("depthwise",)  # any of CONVERSIONS, applied in that order
    rank: int | None = None                    # low-rank: one rank for every Linear layer ...
    energy: float | None = None                # ... or the kept-energy share per layer
    min_in_channels: int = 1                   # depthwise: convs with fewer input channels are kept
    seed: int = 0                              # depthwise: initialization of the new layers

    def __post_init__(self):
        given = self.convert
        if isinstance(self.convert, str):
            convert = (self.convert,)
        elif isinstance(self.convert, (list, tuple)):
            convert = tuple(self.convert)
        else:
            raise CompressionError(f"convert must be one or more of {', '.join(CONVERSIONS)}, got {self.convert!r}")
        object.__setattr__(self, "convert", convert)
        bad = [c for c in convert if c not in CONVERSIONS]
        if not convert or bad:
            raise CompressionError(f"convert must be one or more of {', '.join(CONVERSIONS)}, got {given!r}")
        SeparableConfig(self.min_in_channels, self.seed)
        if "low-rank" in convert:
            LowRankConfig(self.rank, self.energy)
        elif self.rank is not None or self.energy is not None:
            raise CompressionError("rank/energy apply only with the low-rank conversion, "
                                   f"got rank={self.rank!r}, energy={self.energy!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "convert": list(self.convert)}


def convert(model: nn.Module, cfg: ArchitectureConfig) -> nn.Module:
    """Apply the chosen conversions to a copy of `model`."""
    refuse_slimmable(model, "architecture conversion")
    if "depthwise" in cfg.convert:
        model = to_depthwise_separable(model, SeparableConfig(cfg.min_in_channels, cfg.seed))
    if "low-rank" in cfg.convert:
        model = low_rank(model, rank=cfg.rank, energy=cfg.energy)
    return model


# ---------------------------------------------------------------------------------------------
# the per-layer table: measured counts beside the calculator's predictions

def _io_shapes(model: nn.Module, names: set[str], input_shape: tuple[int, ...],
               device: torch.device | str) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """(input shape, output shape) of the named modules during one batch-1 forward pass."""
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            shapes.setdefault(name, (tuple(inputs[0].shape), tuple(output.shape)))
        return hook
    hooks = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n in names]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return shapes


@torch.inference_mode()
def _module_macs(module: nn.Module, input_shape: tuple[int, ...], device: torch.device | str) -> int:
    was_training = module.training
    module.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        module(torch.zeros(*input_shape, device=device))
    module.train(was_training)
    return counter.get_total_flops() // 2


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def layer_table(original: nn.Module, converted: nn.Module, input_shape: tuple[int, ...],
                device: torch.device | str = "cpu") -> list[dict[str, Any]]:
    """One row per Conv2d/Linear of `original`: what became of it, weights and MACs before and
    after (measured on the executed modules) and the calculator's prediction for the new layer."""
    device = torch.device(device)
    targets = {n for n, m in original.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    before = _io_shapes(clone_model(original), targets, input_shape, device)  # hooks never on a shared model
    after = _io_shapes(converted, targets, input_shape, device)
    new_modules = dict(converted.named_modules())
    rows = []
    for name, old in original.named_modules():
        if name not in targets or name not in before:
            continue
        new = new_modules[name]
        (in_shape, out_shape) = before[name]
        row = {"layer": name, "kind": _kind(old, out_shape),
               "params_before": _count(old), "params_after": _count(new),
               "macs_before": _module_macs(old, in_shape, device),
               "macs_after": _module_macs(new, after[name][0], device)}
        row.update(_prediction(old, new, out_shape))
        rows.append(row)
    return rows


def _kind(module: nn.Module, out_shape: tuple[int, ...]) -> str:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return f"conv {kh}x{kw} {module.in_channels}→{module.out_channels} @ {out_shape[2]}x{out_shape[3]}"
    return f"linear {module.in_features}→{module.out_features}"


def _prediction(old: nn.Module, new: nn.Module, out_shape: tuple[int, ...]) -> dict[str, Any]:
    """The calculator's numbers for the layer that replaced `old` (or for `old` when kept)."""
    if isinstance(new, SeparableConv2d):
        k, i, o, bias = old.kernel_size, old.in_channels, old.out_channels, old.bias is not None
        h, w = out_shape[2], out_shape[3]
        return {"change": "depthwise-separable",
                "predicted_params": separable_conv_params(k, i, o, bias=bias, batchnorm=True),
                "predicted_macs": separable_conv_macs(k, i, o, h, w)}
    if isinstance(new, LowRankLinear):
        m, n, r = old.out_features, old.in_features, new.rank
        s = torch.linalg.svdvals(old.weight.detach().float())
        return {"change": f"low-rank K={r} ({kept_energy(s, r) * 100:.1f}% energy)",
                "predicted_params": low_rank_params(m, n, r, bias=old.bias is not None),
                "predicted_macs": r * (m + n)}
    if isinstance(old, nn.Conv2d):
        k, i, o = old.kernel_size, old.in_channels, old.out_channels
        why = _convertible_conv(old, SeparableConfig()) or f"I={i}, below min_in_channels"
        per_group = i // old.groups  # each filter sees I/groups channels
        return {"change": f"kept ({why})", "predicted_params": conv_params(k, per_group, o, bias=old.bias is not None),
                "predicted_macs": conv_macs(k, per_group, o, out_shape[2], out_shape[3])}
    m, n = old.out_features, old.in_features
    return {"change": "kept", "predicted_params": linear_params(m, n, bias=old.bias is not None),
            "predicted_macs": m * n}
