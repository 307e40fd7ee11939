"""Multi-exit networks (BranchyNet): stages with an exit classifier after each, and their joint
training with self-distillation."""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from compression import CompressionError
from compression.data import Dataset
from compression.model_kinds import MultiExitModel
from compression.teacher import distillation_loss
from compression.training import ProgressFn, StopFn, TrainConfig, TrainResult, fit

class MultiExitNet(MultiExitModel):
    """stages[k] followed by exits[k]; exits[-1] is the network's own classifier.

    forward() is the full network (every stage, only the final classifier), so the model works
    wherever a plain classifier does (evaluation, the zoo card's MACs, the home page).
    `exit_loss_weights` and `distill` (alpha, temperature) are how `train_exits` trains it.
    """

    def __init__(self, stages: Sequence[nn.Module], exits: Sequence[nn.Module],
                 exit_loss_weights: Sequence[float] | None = None, distill: Sequence[float] = (0.0, 1.0)):
        super().__init__()
        if len(stages) != len(exits) or len(stages) < 2:
            raise CompressionError(f"a multi-exit model needs as many exits as stages (>= 2), got "
                                   f"{len(stages)} stages and {len(exits)} exits")
        self.stages = nn.ModuleList(stages)
        self.exits = nn.ModuleList(exits)
        self.exit_loss_weights = tuple(exit_loss_weights or [1.0] * len(exits))
        self.distill = tuple(distill)

    @property
    def num_exits(self) -> int:
        return len(self.exits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.exits[-1](x)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every exit's logits, [(B, classes)] * num_exits: joint training and the cached sweep."""
        outs = []
        for stage, head in zip(self.stages, self.exits):
            x = stage(x)
            outs.append(head(x))
        return outs

    def forward_to(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """What an image that leaves at exit k runs: stages 0..k and exit heads 0..k (each earlier
        head had to be evaluated to decide not to leave there)."""
        for stage, head in zip(self.stages[:k + 1], self.exits[:k + 1]):
            x = stage(x)
            out = head(x)
        return out


class ExitHead(nn.Module):
    """A cheap exit classifier: max-pool by `pool` (1: none), flatten, one linear layer (or two,
    with `hidden` ReLU units between). Plain functions in one module rather than a Sequential,
    since at batch 1 on a CPU each module call costs about as much as a small layer's arithmetic."""

    def __init__(self, channels: int, side: int, num_classes: int, pool: int = 1, hidden: int = 0):
        super().__init__()
        self.pool = pool
        features = channels * (side // pool) ** 2
        self.hidden = nn.Linear(features, hidden) if hidden else None
        self.linear = nn.Linear(hidden or features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        if self.pool > 1:
            x = F.max_pool2d(x, self.pool)
        x = x.flatten(1)
        if self.hidden is not None:
            x = F.relu(F.linear(x, self.hidden.weight, self.hidden.bias))
        return F.linear(x, self.linear.weight, self.linear.bias)


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the duration, then the caller's mode back (models given to us stay as they were)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _in_eval_mode(fn):
    """Decorator: run fn(model, ...) with the model in eval mode, then restore its mode."""
    @functools.wraps(fn)
    def wrapper(model, *args, **kwargs):
        with _evaluating(model):
            return fn(model, *args, **kwargs)
    return wrapper


def require_multi_exit(model: nn.Module, name: str = "model") -> MultiExitNet:
    if not isinstance(model, MultiExitNet):
        raise CompressionError(f"{name!r} has no early exits; "
                               "choose a multi-exit model such as lenet5_exits or cnn_exits")
    return model


def train_exits(model: nn.Module, dataset: Dataset, cfg: TrainConfig, *, device: torch.device | str = "cpu",
                progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> TrainResult:
    """Joint training (BranchyNet): the weighted sum of every exit's loss, one backward. With
    `distill` alpha > 0, each early exit also learns the final exit's softened predictions
    (self-distillation), so a confident early exit tends to agree with the full network."""
    model = require_multi_exit(model)
    weights, (alpha, temperature) = model.exit_loss_weights, model.distill

    def loss_fn(m: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        *early, final = m.forward_all(x)
        loss = weights[-1] * F.cross_entropy(final, y)
        teacher = final.detach()
        for w, out in zip(weights, early):
            loss = loss + w * distillation_loss(out, teacher, y, temperature=temperature, alpha=alpha)
        return loss
    return fit(model, dataset, cfg, device=device, loss_fn=loss_fn, progress=progress, should_stop=should_stop)
