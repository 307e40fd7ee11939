"""Slimmable networks (dynamic width, Yu et al. 2018): one set of weights run at 0.25-1.0 of its
channels, with a separate BatchNorm per width ("switchable BN"); each width measured as the plain
network it becomes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from compression import CompressionError
from compression.data import Dataset
from compression.metrics import Metrics, Result, measure
from compression.model_kinds import SlimmableModel
from compression.models import _scaled
from compression.training import ProgressFn, StopFn, TrainConfig, TrainResult, fit

SLIM_WIDTHS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class WidthConfig:
    width: float = 1.0   # share of every hidden layer's channels; one of the model's widths

    def __post_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not 0 < self.width <= 1:
            raise CompressionError(f"width must be in (0, 1], got {self.width!r}")


class SlimmableCNN(SlimmableModel):
    """The zoo's cnn with shared weights at several widths: width w uses the first round(c * w)
    channels of every hidden layer and BatchNorm statistics of its own (switchable BN)."""

    def __init__(self, *, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
                 widths: Sequence[float] = SLIM_WIDTHS):
        super().__init__()
        self.widths = tuple(sorted(float(w) for w in widths))
        self.width = self.widths[-1]   # the width forward() runs at; a trainer's copy changes it
        self.image_size, self.num_classes = image_size, num_classes
        chans = (16, 32, 64)
        self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=1, bias=False)
                                   for cin, cout in zip((in_channels,) + chans[:2], chans))
        self.bns = nn.ModuleList(nn.ModuleList(nn.BatchNorm2d(_scaled(c, w)) for w in self.widths) for c in chans)
        side = image_size // 8
        self.fc1 = nn.Linear(chans[-1] * side * side, 128)
        self.fc2 = nn.Linear(128, num_classes)
        self.dropout = nn.Dropout(0.2)

    def channels(self, width: float) -> tuple[int, int, int, int]:
        """(c1, c2, c3, hidden) at `width`: the same rounding as cnn(width=...)."""
        self.check_width(width)
        return tuple(_scaled(c, width) for c in (16, 32, 64, 128))  # type: ignore[return-value]

    def check_width(self, width: float) -> None:
        if width not in self.widths:
            raise CompressionError(f"width {width} is not one this model was trained for; choose one of "
                                   f"{', '.join(str(w) for w in self.widths)}")

    def forward(self, x: torch.Tensor, width: float | None = None) -> torch.Tensor:
        w = self.width if width is None else width
        *chans, hidden = self.channels(w)
        i = self.widths.index(w)
        cin = x.shape[1]
        for conv, bns, cout in zip(self.convs, self.bns, chans):
            x = F.conv2d(x, conv.weight[:cout, :cin], padding=1)
            x = F.max_pool2d(F.relu(bns[i](x)), 2)      # (B, cout, H/2, W/2)
            cin = cout
        x = x.flatten(1)                                # channel-major: the first cin*9 features
        x = self.dropout(F.relu(F.linear(x, self.fc1.weight[:hidden, :x.shape[1]], self.fc1.bias[:hidden])))
        return F.linear(x, self.fc2.weight[:, :hidden], self.fc2.bias)



def require_slimmable(model: nn.Module, name: str = "model") -> SlimmableCNN:
    if not isinstance(model, SlimmableCNN):
        raise CompressionError(f"{name!r} is not slimmable; choose a slimmable model such as cnn_slim")
    return model



@torch.no_grad()
def slim_to_static(model: SlimmableCNN, width: float) -> nn.Module:
    """A plain cnn(width=width) holding this width's slice of the weights and its own BatchNorm:
    the model one would deploy at that width. The slimmable model is not changed."""
    from compression.models import cnn
    model = require_slimmable(model)
    c1, c2, c3, hidden = model.channels(width)
    i = model.widths.index(width)
    static = cnn(num_classes=model.num_classes, in_channels=model.convs[0].in_channels,
                 image_size=model.image_size, width=width)
    convs = [m for m in static if isinstance(m, nn.Conv2d)]
    bns = [m for m in static if isinstance(m, nn.BatchNorm2d)]
    fcs = [m for m in static if isinstance(m, nn.Linear)]
    cin = model.convs[0].in_channels
    for conv, bn, src, src_bns, cout in zip(convs, bns, model.convs, model.bns, (c1, c2, c3)):
        conv.weight.copy_(src.weight[:cout, :cin])
        bn.load_state_dict(src_bns[i].state_dict())
        cin = cout
    fcs[0].weight.copy_(model.fc1.weight[:hidden, :fcs[0].in_features])
    fcs[0].bias.copy_(model.fc1.bias[:hidden])
    fcs[1].weight.copy_(model.fc2.weight[:, :hidden])
    fcs[1].bias.copy_(model.fc2.bias)
    return static.to(model.fc1.weight.device).eval()


def train_slimmable(model: nn.Module, dataset: Dataset, cfg: TrainConfig, *, device: torch.device | str = "cpu",
                    progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> TrainResult:
    """Every step trains every width (Yu et al. 2018): cross-entropy at full width, and the smaller
    widths learn the full width's softened predictions (in-place distillation, Yu & Huang 2019)."""
    widths = require_slimmable(model).widths

    def loss_fn(m: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        full = m(x, widths[-1])
        target = full.detach().softmax(-1)
        loss = F.cross_entropy(full, y)
        for w in widths[:-1]:
            loss = loss + F.cross_entropy(m(x, w), target)
        return loss
    return fit(model, dataset, cfg, device=device, loss_fn=loss_fn, progress=progress, should_stop=should_stop)


def width_result(model: nn.Module, dataset: Dataset, cfg: WidthConfig, *, name: str,
                 device: torch.device | str = "cpu", limit: int | None = None,
                 baseline: Metrics | None = None) -> Result:
    """The slimmable model at one width, measured as the plain model it becomes (its bytes, MACs
    counted on it, batch-1 latency); baseline = the same weights at full width."""
    model = require_slimmable(model, name)
    model.check_width(cfg.width)
    device = torch.device(device)
    from compression.methods import with_timed_baseline
    from compression.runtimes import time_result
    static = slim_to_static(model, cfg.width).to(device)
    full = slim_to_static(model, model.widths[-1]).to(device)
    metrics = measure(static, dataset, device=device, limit=limit, latency=False)
    if baseline is None:
        baseline = measure(full, dataset, device=device, limit=limit, latency=False)
    # both widths timed interleaved (batch 1, eager): the ratio every view shows is this pair's
    timed = time_result(static, full, dataset.input_shape, device, runtime="eager", result_macs=metrics.macs,
                        baseline_macs=baseline.macs)
    metrics = dataclasses.replace(metrics, latency_ms=timed.pop("latency_ms"))
    baseline = with_timed_baseline(baseline, timed)
    extra = {"width": cfg.width, "channels": list(model.channels(cfg.width)),
             "macs_ratio": round(metrics.macs / baseline.macs, 6),
             "latency_ratio": round(metrics.latency_ms / baseline.latency_ms, 6), **timed}
    return Result(model=name, dataset=dataset.name, method="width", config={"width": cfg.width},
                  device=device.type, metrics=metrics, baseline=baseline, extra=extra)


def width_results(model: nn.Module, dataset: Dataset, *, name: str, device: torch.device | str = "cpu",
                  limit: int | None = None) -> list[Result]:
    """Every width of a slimmable model, measured side by side (baseline measured once)."""
    model = require_slimmable(model, name)
    full = measure(slim_to_static(model, model.widths[-1]).to(device), dataset, device=device, limit=limit)
    return [width_result(model, dataset, WidthConfig(w), name=name, device=device, limit=limit, baseline=full)
            for w in model.widths]
