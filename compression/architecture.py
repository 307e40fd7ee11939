"""Architecture design: depthwise-separable convolution and low-rank factorization.

A standard k x k convolution stores k*k*I*O weights: every filter covers every input channel. A
depthwise-separable one (MobileNet) splits it into a depthwise step, one k x k filter per input
channel (k*k*I), and a pointwise 1 x 1 step that mixes channels (I*O): the ratio is
1/O + 1/k^2. For a Linear layer the analogue is low-rank factorization: the M x N weight becomes
(M x K) @ (K x N), K*(M + N) weights, initialized from the truncated SVD of the trained weight.

Four parts: the calculator (pure arithmetic, `compare_conv`); the converters
(`to_depthwise_separable`, `low_rank`, `convert`; new models, inputs untouched) with a measured
per-layer table (`layer_table`); recovery (`recover`: optionally `match_layers`, which fits each new
layer to the original layer's output, then fine-tuning or distillation from the original); and
`converted_result` / `recovered_result`, which measure and return `Result`s. `ds_cnn` is the cnn
built from the same blocks, for the zoo.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Iterator

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from compression import CompressionError
from compression.data import Dataset
from compression.models import _scaled, clone_model, register_model, state_dict_bytes
from compression.training import ProgressFn, StopFn, TrainConfig, TrainResult, accuracy_on, fit

if TYPE_CHECKING:
    from compression.metrics import Result

CONVERSIONS = ("depthwise", "low-rank")
RECOVERY_METHODS = ("finetune", "distill")


# ---------------------------------------------------------------------------------------------
# the calculator: pure arithmetic, no model work

def _area(k: int | tuple[int, int]) -> int:
    return k[0] * k[1] if isinstance(k, tuple) else k * k


def conv_params(k: int | tuple[int, int], i: int, o: int, *, bias: bool = False) -> int:
    """Standard convolution: k*k*I*O weights (+ O biases)."""
    return _area(k) * i * o + (o if bias else 0)


def separable_conv_params(k: int | tuple[int, int], i: int, o: int, *, bias: bool = False,
                          batchnorm: bool = False) -> int:
    """Depthwise (k*k*I) + pointwise (I*O) weights; the bias sits on the pointwise step (+O),
    the BatchNorm between the two steps (MobileNet) adds a scale and a shift per channel (+2I)."""
    return _area(k) * i + i * o + (o if bias else 0) + (2 * i if batchnorm else 0)


def conv_macs(k: int | tuple[int, int], i: int, o: int, h: int, w: int | None = None) -> int:
    """Multiply-accumulates of a standard convolution with an h x w output: k*k*I*O per position."""
    return _area(k) * i * o * h * (h if w is None else w)


def separable_conv_macs(k: int | tuple[int, int], i: int, o: int, h: int, w: int | None = None) -> int:
    """(k*k*I + I*O) per output position: the depthwise output has the same size as the original's."""
    return (_area(k) * i + i * o) * h * (h if w is None else w)


def separable_ratio(k: int, o: int) -> float:
    """The closed form of separable / standard (weights and MACs, no bias): 1/O + 1/k^2."""
    return 1 / o + 1 / (k * k)


def linear_params(m: int, n: int, *, bias: bool = True) -> int:
    """An N -> M Linear layer: M*N weights (+ M biases)."""
    return m * n + (m if bias else 0)


def low_rank_params(m: int, n: int, rank: int, *, bias: bool = True) -> int:
    """(M x K) @ (K x N): K*(M + N) weights (+ M biases, kept on the second factor)."""
    return rank * (m + n) + (m if bias else 0)


def low_rank_saves(m: int, n: int, rank: int) -> bool:
    """Factorizing saves weights only while K*(M + N) < M*N."""
    return rank * (m + n) < m * n


@dataclass(frozen=True)
class ConvComparison:
    k: int
    i: int
    o: int
    size: int                # output feature map is size x size
    bias: bool
    standard_params: int
    separable_params: int
    standard_macs: int
    separable_macs: int
    closed_form: float       # 1/O + 1/k^2

    @property
    def param_ratio(self) -> float:
        return self.separable_params / self.standard_params

    @property
    def mac_ratio(self) -> float:
        return self.separable_macs / self.standard_macs


CALCULATOR_LIMITS = {"k": (1, 15), "i": (1, 4096), "o": (1, 4096), "size": (1, 1024)}


def compare_conv(k: int, i: int, o: int, size: int = 1, *, bias: bool = False) -> ConvComparison:
    """Standard vs depthwise-separable convolution: weights, MACs and the closed-form ratio."""
    for name, value in (("k", k), ("i", i), ("o", o), ("size", size)):
        lo, hi = CALCULATOR_LIMITS[name]
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise CompressionError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return ConvComparison(
        k=k, i=i, o=o, size=size, bias=bias,
        standard_params=conv_params(k, i, o, bias=bias),
        separable_params=separable_conv_params(k, i, o, bias=bias),
        standard_macs=conv_macs(k, i, o, size), separable_macs=separable_conv_macs(k, i, o, size),
        closed_form=separable_ratio(k, o))


# ---------------------------------------------------------------------------------------------
# the building blocks

class SeparableConv2d(nn.Sequential):
    """Depthwise k x k (one filter per input channel) -> BatchNorm -> ReLU -> pointwise 1 x 1.

    A plain nn.Sequential underneath, so its state_dict keys are 0 (depthwise), 1 (BatchNorm)
    and 3 (pointwise): a converted model and a model built from these blocks load each other's
    weights. The original's bias, if any, moves to the pointwise step."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: Any = 1, padding: Any = 0, dilation: Any = 1, bias: bool = False,
                 padding_mode: str = "zeros"):
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, dilation,
                      groups=in_channels, bias=False, padding_mode=padding_mode),  # (B, I, H', W')
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=bias),                    # (B, O, H', W')
        )

    @classmethod
    def like(cls, conv: nn.Conv2d) -> "SeparableConv2d":
        return cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                   conv.dilation, bias=conv.bias is not None,
                   padding_mode=conv.padding_mode).to(conv.weight.device)


class LowRankLinear(nn.Sequential):
    """Linear(N, K, no bias) -> Linear(K, M): the (M x N) weight as a rank-K product."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__(nn.Linear(in_features, rank, bias=False), nn.Linear(rank, out_features, bias=bias))

    @property
    def rank(self) -> int:
        return self[0].out_features


def factorize_linear(linear: nn.Linear, rank: int) -> LowRankLinear:
    """Rank-K factors from the truncated SVD W ~ U_K S_K V_K^T, split as (U_K sqrt(S_K)) (sqrt(S_K) V_K^T).
    At full rank (K = min(M, N)) the product is W up to float rounding."""
    w = linear.weight.detach().float()
    m, n = w.shape
    if not 1 <= rank <= min(m, n):
        raise CompressionError(f"rank must be in [1, {min(m, n)}] for a {n} -> {m} layer, got {rank}")
    u, s, vh = torch.linalg.svd(w, full_matrices=False)  # (M, R), (R,), (R, N)
    root = s[:rank].sqrt()
    layer = LowRankLinear(n, m, rank, bias=linear.bias is not None).to(w.device)
    with torch.no_grad():
        layer[0].weight.copy_(root[:, None] * vh[:rank])       # (K, N)
        layer[1].weight.copy_(u[:, :rank] * root[None, :])     # (M, K)
        if linear.bias is not None:
            layer[1].bias.copy_(linear.bias.detach())
    return layer.to(linear.weight.dtype)


def rank_for_energy(singular_values: torch.Tensor, energy: float) -> int:
    """The smallest K whose top-K singular values keep `energy` of sum(s^2)."""
    power = singular_values.double() ** 2
    kept = torch.cumsum(power, 0) / power.sum()
    k = int(torch.searchsorted(kept, torch.tensor(energy * (1 - 1e-9), dtype=torch.float64))) + 1
    return min(k, len(singular_values))


def kept_energy(singular_values: torch.Tensor, rank: int) -> float:
    power = singular_values.double() ** 2
    return float(power[:rank].sum() / power.sum())


# ---------------------------------------------------------------------------------------------
# configs and converters

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
    from compression.dynamic import refuse_slimmable
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


# ---------------------------------------------------------------------------------------------
# recovery: match the new layers to the old ones, then fine-tune or distill from the original

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
    loss_fn = None
    if cfg.method == "distill":
        from compression.distillation import distillation_loss
        frozen = clone_model(teacher).to(device).eval()

        def loss_fn(student: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                soft = frozen(x)
            return distillation_loss(student(x), soft, y, temperature=cfg.temperature, alpha=cfg.alpha)
    kwargs = {"loss_fn": loss_fn} if loss_fn is not None else {}
    return fit(model, dataset, cfg.train_config(), device=device, progress=progress,
               should_stop=should_stop, **kwargs), matched


# ---------------------------------------------------------------------------------------------
# the whole run: convert a zoo model, measure, recover, measure again

def _result(name: str, model: nn.Module, original: nn.Module, dataset: Dataset, device: torch.device,
            limit: int | None, config: dict[str, Any], **extra: Any) -> "Result":
    from compression.metrics import Result, baseline_metrics, measure

    base = baseline_metrics(name, dataset, device, limit=limit)  # the same test images
    metrics = measure(model, dataset, device=device, artifact=state_dict_bytes(model), limit=limit)
    return Result(model=name, dataset=dataset.name, method="architecture", config=config,
                  device=device.type, metrics=metrics, baseline=base,
                  extra={"layers": layer_table(original, model, dataset.input_shape, device),
                         "param_ratio": metrics.params / base.params,
                         "mac_ratio": metrics.macs / base.macs, **extra})


def converted_result(name: str, cfg: ArchitectureConfig, *, dataset: Dataset,
                     device: torch.device | str = "cpu", limit: int | None = None,
                     model: nn.Module | None = None) -> tuple[nn.Module, "Result"]:
    """Convert the zoo model `name` (or `model`, the caller's copy of it, never modified) and
    measure it before any training: (converted model, Result)."""
    from compression.models import load_pretrained

    device = torch.device(device)
    original = model if model is not None else load_pretrained(name, device)
    converted = convert(original, cfg).to(device)
    config = {**cfg.to_dict(), "recover": None, "recover_epochs": 0}
    return converted, _result(name, converted, original, dataset, device, limit, config, stage="converted")


def recovered_result(name: str, converted: nn.Module, cfg: ArchitectureConfig, recovery: RecoveryConfig, *,
                     original: nn.Module, dataset: Dataset, device: torch.device | str = "cpu",
                     limit: int | None = None, progress: ProgressFn | None = None,
                     should_stop: StopFn | None = None) -> "Result | None":
    """Recover a converted model and measure it; None when stopped before a stage was complete.
    A run stopped later is measured as it stands (`stopped: true`, the epochs done in its config)."""
    device = torch.device(device)
    start = time.perf_counter()
    trained, matched = recover(converted, dataset, recovery, teacher=original, device=device,
                               progress=progress, should_stop=should_stop)
    matched_all = recovery.match_steps > 0 and len(matched) == len(_new_layers(converted))
    if not trained.history and not matched_all:
        return None  # stopped before any stage was complete
    config = {**cfg.to_dict(), "recover": recovery.method, "recover_epochs": len(trained.history),
              **{f"recover_{k}": v for k, v in asdict(recovery).items() if k not in ("method", "epochs")}}
    return _result(name, trained.model, original, dataset, device, limit, config, stage="recovered",
                   history=trained.history, matched=matched, stopped=trained.stopped,
                   train_seconds=round(time.perf_counter() - start, 1))


def architecture_results(name: str, cfg: ArchitectureConfig, recovery: RecoveryConfig | None = None, *,
                         dataset: Dataset, device: torch.device | str = "cpu", limit: int | None = None,
                         progress: ProgressFn | None = None,
                         should_stop: StopFn | None = None) -> Iterator["Result"]:
    """The converted model's Result (before any training), then with `recovery` the recovered one."""
    from compression.models import load_pretrained

    original = load_pretrained(name, device)
    converted, result = converted_result(name, cfg, dataset=dataset, device=device, limit=limit, model=original)
    yield result
    if recovery is not None:
        recovered = recovered_result(name, converted, cfg, recovery, original=original, dataset=dataset,
                                     device=device, limit=limit, progress=progress, should_stop=should_stop)
        if recovered is not None:
            yield recovered


# ---------------------------------------------------------------------------------------------
# the zoo's ds_cnn: the cnn design built from depthwise-separable blocks

@register_model
def ds_cnn(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: float = 1.0,
           head_rank: int | None = None, separable_stem: bool = True) -> nn.Module:
    """The zoo cnn rebuilt from depthwise-separable blocks (MobileNet style), optionally with a
    rank-K hidden layer. Its state_dict keys are those of `convert(cnn, ...)` with the same
    choices, so "designed small" and "converted" are the same network, trained differently."""
    c1, c2, c3 = _scaled(16, width), _scaled(32, width), _scaled(64, width)
    hidden = _scaled(128, width)
    side = image_size // 8

    def block(cin: int, cout: int, separable: bool = True) -> list[nn.Module]:
        conv = (SeparableConv2d(cin, cout, 3, padding=1) if separable
                else nn.Conv2d(cin, cout, 3, padding=1, bias=False))
        return [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]

    flat = c3 * side * side
    fc1 = (LowRankLinear(flat, hidden, head_rank) if head_rank is not None and low_rank_saves(hidden, flat, head_rank)
           else nn.Linear(flat, hidden))
    return nn.Sequential(
        *block(in_channels, c1, separable_stem),  # (B, 16, 14, 14)
        *block(c1, c2),                           # (B, 32, 7, 7)
        *block(c2, c3),                           # (B, 64, 3, 3)
        nn.Flatten(),
        fc1, nn.ReLU(inplace=True), nn.Dropout(0.2),
        nn.Linear(hidden, num_classes),
    )

