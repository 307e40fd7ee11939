"""The cached exit table and the vectorized threshold sweep: every exit's verdict on every image is
computed once (`exit_table`); accuracy, mean MACs and exit shares for any thresholds are then
tensor arithmetic (`sweep`, `sweep_shared`), and `choose_thresholds` searches them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from compression import CompressionError
from compression.data import Dataset
from compression.device import eval_batch_size
from compression.dynamic.exit_rule import CRITERIA, exit_costs, exit_score, leaves
from compression.dynamic.exits import MultiExitNet, _in_eval_mode, require_multi_exit
from compression.metrics import count_macs

@dataclass(frozen=True)
class ExitTable:
    """Every exit's verdict on every image of a split, computed once per model."""
    preds: torch.Tensor        # (E, N) int64 predicted class at each exit
    correct: torch.Tensor      # (E, N) bool
    confidence: torch.Tensor   # (E, N) max softmax
    entropy: torch.Tensor      # (E, N) entropy / log C
    costs: tuple[int, ...]     # MACs of leaving at exit k (layers run + heads)
    full_macs: int             # the full network: every stage, the final classifier only
    split: str = "test"

    @property
    def num_exits(self) -> int:
        return int(self.preds.shape[0])

    @property
    def n(self) -> int:
        return int(self.preds.shape[1])

    def scores(self, criterion: str) -> torch.Tensor:
        return self.confidence if criterion == "confidence" else self.entropy


@_in_eval_mode
@torch.inference_mode()
def exit_table(model: MultiExitNet, dataset: Dataset, *, split: str = "test", device: torch.device | str = "cpu",
               limit: int | None = None, batch_size: int | None = None) -> ExitTable:
    """One pass over the split with every exit evaluated (in eval mode; the model is not changed)."""
    model = require_multi_exit(model)
    batch_size = batch_size or eval_batch_size(device, dataset.input_shape)
    outs: list[list[torch.Tensor]] = [[] for _ in range(model.num_exits)]
    for x, _ in dataset.batches(split, batch_size, device=device, limit=limit):
        for k, logits in enumerate(model.forward_all(x)):
            outs[k].append(logits.float().cpu())
    logits = torch.stack([torch.cat(o) for o in outs])                   # (E, N, C)
    labels = dataset.split(split).head(limit).labels
    preds = logits.argmax(-1)
    flat = logits.reshape(-1, logits.shape[-1])
    shape = logits.shape[:2]
    return ExitTable(preds=preds, correct=preds == labels, split=split,
                     confidence=exit_score(flat, "confidence").reshape(shape),
                     entropy=exit_score(flat, "entropy").reshape(shape),
                     costs=tuple(exit_costs(model, dataset.input_shape, device)),
                     full_macs=count_macs(model, dataset.input_shape, device))


@dataclass(frozen=True)
class Sweep:
    """Outcome of T threshold settings on an ExitTable (all tensors on the CPU)."""
    thresholds: torch.Tensor     # (T, E-1)
    accuracy: torch.Tensor       # (T,)
    macs: torch.Tensor           # (T,) mean MACs per image
    shares: torch.Tensor         # (T, E) share of images leaving at each exit
    exit_accuracy: torch.Tensor  # (T, E) accuracy of the images that left there (nan if none)
    exit_index: torch.Tensor | None = None  # (T, N) where each image left (`sweep` only)


def _check(criterion: str) -> None:
    if criterion not in CRITERIA:
        raise CompressionError(f"exit criterion must be confidence or entropy, got {criterion!r}")


def _outcome(table: ExitTable, taus: torch.Tensor, counts: torch.Tensor, right: torch.Tensor,
             exit_index: torch.Tensor | None = None) -> Sweep:
    """(T, E) images leaving at each exit and how many of them are right -> Sweep."""
    costs = torch.tensor(table.costs, dtype=torch.float64)
    return Sweep(thresholds=taus, accuracy=right.sum(1) / table.n, macs=counts @ costs / table.n,
                 shares=counts / table.n, exit_accuracy=right / counts.where(counts > 0, torch.nan),
                 exit_index=exit_index)


def sweep(table: ExitTable, criterion: str, thresholds: torch.Tensor | Sequence) -> Sweep:
    """Any thresholds, (T, E-1) (or (T,) shared by every early exit), image by image: where each
    image leaves, as early_exit_forward decides it (same float64 scores, same comparisons)."""
    _check(criterion)
    e, last = table.num_exits, table.num_exits - 1
    taus = torch.as_tensor(thresholds, dtype=torch.float64)
    if taus.dim() == 1:
        taus = taus[:, None].expand(-1, last)
    scores = table.scores(criterion)
    exit_index = torch.full((len(taus), table.n), last, dtype=torch.uint8)   # (T, N)
    right = table.correct[last].expand(len(taus), -1)
    for k in reversed(range(last)):              # the earliest exit that says "leave" wins
        go = leaves(scores[k], criterion, taus[:, k:k + 1])                  # (T, N)
        exit_index = exit_index.masked_fill(go, k)
        right = torch.where(go, table.correct[k], right)
    at = [exit_index == k for k in range(e)]
    counts = torch.stack([a.sum(1) for a in at], 1).double()                 # (T, E)
    hits = torch.stack([(a & right).sum(1) for a in at], 1).double()
    return _outcome(table, taus, counts, hits, exit_index.long())


def sweep_shared(table: ExitTable, criterion: str, thresholds: torch.Tensor | Sequence) -> Sweep:
    """The same numbers as `sweep` for T thresholds each shared by every early exit, without
    touching T x N tensors: an image gets past exit k iff every earlier exit declined, i.e. iff
    the best earlier score does not pass T. Sorting those once turns each count into a binary
    search, so 200 thresholds cost microseconds after one O(N log N) pass."""
    _check(criterion)
    e = table.num_exits
    taus = torch.as_tensor(thresholds, dtype=torch.float64)
    # leaving means g > t: confidence > T, or -entropy > -T (entropy < T)
    g, t = (table.confidence, taus) if criterion == "confidence" else (-table.entropy, -taus)
    best = torch.cat([torch.full_like(g[:1], -math.inf), g[:-1].cummax(0).values])  # (E, N) best before k
    correct = table.correct.double()

    def weighted_count(before: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum of weights over images with before <= t, for every t: (T,)"""
        order = before.argsort()
        cum = torch.cat([torch.zeros(1, dtype=torch.float64), weights[order].cumsum(0)])
        return cum[torch.searchsorted(before[order], t, right=True)]

    ones = torch.ones(table.n, dtype=torch.float64)
    reach = torch.stack([weighted_count(best[k], ones) for k in range(e)] + [torch.zeros_like(t)], 1)  # (T, E+1)
    hits = torch.stack([weighted_count(best[k], correct[k]) -
                        (weighted_count(best[k + 1], correct[k]) if k + 1 < e else 0) for k in range(e)], 1)
    return _outcome(table, taus[:, None].expand(-1, e - 1), reach[:, :-1] - reach[:, 1:], hits)


def curve_thresholds(table: ExitTable, criterion: str, n: int = 200) -> torch.Tensor:
    """n thresholds spread evenly over the first exit's scores (quantiles), plus the two ends,
    so the curve's points spread along the MACs axis instead of bunching near confidence 1."""
    q = torch.quantile(table.scores(criterion)[0], torch.linspace(0, 1, n - 2, dtype=torch.float64))
    return torch.cat([torch.tensor([0.0, 1.0], dtype=torch.float64), q]).clamp(0, 1).unique()


def choose_thresholds(table: ExitTable, criterion: str, *, max_drop: float = 0.01, grid: int = 41,
                      shared: bool = False) -> tuple[float, ...]:
    """Per-exit thresholds (or one `shared` by every exit) with the fewest mean MACs whose accuracy
    stays within `max_drop` of the full network's (the last exit's), searched over a grid of
    quantiles of each exit's scores. Choose them on the validation split, report the test split."""
    shared = shared or table.num_exits == 2
    never = torch.tensor([1.0 if criterion == "confidence" else 0.0], dtype=torch.float64)
    levels = torch.linspace(0, 1, grid, dtype=torch.float64)
    cands = [torch.cat([torch.quantile(table.scores(criterion)[k], levels), never])
             for k in range(1 if shared else table.num_exits - 1)]
    combos = torch.cartesian_prod(*cands) if len(cands) > 1 else cands[0][:, None]
    result = sweep_shared(table, criterion, combos[:, 0]) if shared else sweep(table, criterion, combos)
    full = float(table.correct[-1].float().mean())
    ok = result.accuracy >= full - max_drop - 1e-9
    macs = result.macs.where(ok, torch.inf)
    best = int(macs.argmin())
    return tuple(round(float(t), 6) for t in result.thresholds[best])
