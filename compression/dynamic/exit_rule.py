"""When an image leaves (EarlyExitConfig: a confidence or entropy threshold), and real early-exit
inference: images that left are dropped from the batch, so the later stages run on the rest only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from compression import CompressionError
from compression.dynamic.exits import MultiExitNet, _evaluating

CRITERIA = ("confidence", "entropy")


@dataclass(frozen=True)
class EarlyExitConfig:
    """When an image leaves: confidence (max softmax) above the threshold, or normalized entropy
    (entropy / log C, in [0, 1]) below it. One threshold for every early exit, or one per exit.

    Strict comparisons on purpose: softmax saturates to exactly 1.0 in floating point, so
    `>= 1.0` would still let images out; with `>`, confidence 1.0 (entropy 0.0) means "never leave
    early", and confidence 0.0 (entropy 1.0) sends every image out at the first exit (entropy 1.0
    keeps only a perfectly uniform output).
    """
    criterion: str = "confidence"               # confidence | entropy
    thresholds: tuple[float, ...] = (0.9,)      # one for all early exits, or one per early exit

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise CompressionError(f"exit criterion must be confidence or entropy, got {self.criterion!r}")
        values = self.thresholds
        if isinstance(values, (int, float)):
            values = (values,)
        if not isinstance(values, (list, tuple)):
            raise CompressionError(f"exit thresholds must be numbers in [0, 1], got {values!r}")
        values = tuple(values)
        if not values:
            raise CompressionError(f"exit thresholds: need at least one value in [0, 1], got {self.thresholds!r}")
        for t in values:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0 or math.isnan(t):
                raise CompressionError(f"exit threshold must be in [0, 1], got {t!r}")
        object.__setattr__(self, "thresholds", tuple(float(t) for t in values))

    def per_exit(self, num_exits: int) -> tuple[float, ...]:
        """The threshold of each early exit (num_exits - 1 values)."""
        n = num_exits - 1
        if len(self.thresholds) == 1:
            return self.thresholds * n
        if len(self.thresholds) != n:
            raise CompressionError(f"{len(self.thresholds)} thresholds given for {n} early exits; give 1 or {n}"
                                  if n > 1 else f"{len(self.thresholds)} thresholds given for 1 early exit; give 1")
        return self.thresholds


def exit_score(logits: torch.Tensor, criterion: str) -> torch.Tensor:
    """(B, C) logits -> (B,) float64 score: max softmax, or entropy / log C. The same float64
    arithmetic as `_one_leaves`, which decides a single image without tensor ops."""
    z = logits.double()
    z = z - z.amax(-1, keepdim=True)
    e = z.exp()
    s = e.sum(-1)
    if criterion == "confidence":
        return 1.0 / s                                               # max softmax = e^0 / s
    return (s.log() - (e * z).sum(-1) / s) / math.log(logits.shape[-1])  # -sum p log p, p = e / s


def _one_leaves(logits: torch.Tensor, criterion: str, threshold: float) -> bool:
    """exit_score + leaves for one image in plain Python floats: one small copy instead of five
    tensor ops, which at batch 1 is most of an exit's cost."""
    v = logits[0].tolist()
    top = max(v)
    z = [a - top for a in v]
    e = [math.exp(a) for a in z]
    s = sum(e)
    if criterion == "confidence":
        return 1.0 / s > threshold
    return (math.log(s) - sum(p * a for p, a in zip(e, z)) / s) / math.log(len(v)) < threshold


def leaves(score: torch.Tensor, criterion: str, threshold: float | torch.Tensor) -> torch.Tensor:
    return score > threshold if criterion == "confidence" else score < threshold


@torch.inference_mode()
def early_exit_forward(model: MultiExitNet, x: torch.Tensor, cfg: EarlyExitConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Run images until they leave: (logits (B, C), exit index (B,)). Images that left are dropped
    from the batch, so the later stages run on the rest only (at batch 1: not at all)."""
    taus = cfg.per_exit(model.num_exits)
    if x.shape[0] == 1:
        logits, k = _run_one(model, x, cfg.criterion, taus)
        return logits, torch.tensor([k])
    return _run_batch(model, x, cfg.criterion, taus)


def _run_one(model: MultiExitNet, x: torch.Tensor, criterion: str, taus: Sequence[float]) -> tuple[torch.Tensor, int]:
    """One image: one decision per exit, no index bookkeeping (call under inference_mode)."""
    k = 0
    for stage, head, tau in zip(model.stages, model.exits, taus):  # zip, not indexing: ~3 us less per exit
        x = stage(x)
        logits = head(x)
        if _one_leaves(logits, criterion, tau):
            return logits, k
        k += 1
    return model.exits[k](model.stages[k](x)), k


def _run_batch(model: MultiExitNet, x: torch.Tensor, criterion: str,
               taus: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    n, last = x.shape[0], len(taus)
    alive = torch.arange(n, device=x.device)            # rows of the original batch still running
    exit_index = torch.full((n,), last, dtype=torch.long, device=x.device)
    out: torch.Tensor | None = None
    for k in range(last):
        x = model.stages[k](x)
        logits = model.exits[k](x)
        if out is None:
            out = logits.new_empty(n, logits.shape[1])
        go = leaves(exit_score(logits, criterion), criterion, taus[k])
        out[alive[go]] = logits[go]
        exit_index[alive[go]] = k
        x, alive = x[~go], alive[~go]
        if not alive.numel():
            return out, exit_index.cpu()
    out[alive] = model.exits[last](model.stages[last](x))
    return out, exit_index.cpu()


@torch.inference_mode()
def exit_costs(model: MultiExitNet, input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> list[int]:
    """MACs an image costs when it leaves at exit k: the stages run plus every head evaluated,
    counted by torch's FLOP counter on that path (FLOPs / 2)."""
    costs = []
    x = torch.zeros(1, *input_shape, device=device)
    with _evaluating(model):
        for k in range(model.num_exits):
            counter = FlopCounterMode(display=False)
            with counter:
                model.forward_to(x, k)
            costs.append(counter.get_total_flops() // 2)
    return costs
