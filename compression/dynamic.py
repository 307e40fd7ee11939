"""Dynamic computation: one model, computation chosen at run time.

Dynamic depth (BranchyNet, Teerapittayanon et al. 2016): extra classifiers ("exits") after early
stages let a confident image leave early; the later stages are not run for it. Dynamic width
(slimmable networks, Yu et al. 2018): one set of weights runs at 0.25-1.0 of its channels, with a
separate BatchNorm per width ("switchable BN").

The threshold sweep is cheap: every exit's logits over a split are computed once (`exit_table`),
and accuracy, mean MACs and exit shares for any thresholds are then tensor arithmetic (`sweep`).
`early_exit_forward` is the real thing (samples that left are dropped from the batch), and the
tests check that both agree image for image.
"""

from __future__ import annotations

import math
import statistics
import time
import contextlib
import functools
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from compression import CompressionError
from compression.data import Dataset
from compression.device import eval_batch_size, synchronize
from compression.distillation import distillation_loss
from compression.metrics import Metrics, Result, count_macs, count_nonzero, count_params, measure
from compression.models import _scaled, conv_bn_relu, register_model, state_dict_bytes
from compression.training import ProgressFn, StopFn, TrainConfig, TrainResult, fit

CRITERIA = ("confidence", "entropy")


# ---------------------------------------------------------------------------------------------
# multi-exit models

class MultiExitNet(nn.Module):
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


@register_model
def lenet5_exits(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, exit_pool: int = 2,
                 exit_hidden: int = 0, exit_loss_weights: Sequence[float] = (1.0, 1.0),
                 distill: Sequence[float] = (0.0, 1.0)) -> nn.Module:
    """LeNet-5 (the zoo's lenet5 layers) with one early exit on the max-pooled first-block
    features (zoo card: 294-32-10 head). The full path is exactly lenet5 (416,520 MACs). No exit
    after the second block: it would save at most 14 % of the MACs for the images leaving there,
    and at batch 1 its head costs more time than the three small linear layers it skips."""
    s1 = image_size // 2                  # after conv1 (padding 2) and pool
    s2 = (s1 - 4) // 2                    # after conv2 (no padding) and pool
    stages = [
        nn.Sequential(nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)),  # (B, 6, 14, 14)
        nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),                        # (B, 16, 5, 5)
                      nn.Flatten(), nn.Linear(16 * s2 * s2, 120), nn.ReLU(),
                      nn.Linear(120, 84), nn.ReLU()),                                         # (B, 84)
    ]
    exits = [ExitHead(6, s1, num_classes, exit_pool, exit_hidden), nn.Linear(84, num_classes)]
    return MultiExitNet(stages, exits, exit_loss_weights, distill)


@register_model
def cnn_exits(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, exit_hidden: int = 0,
              exit_loss_weights: Sequence[float] = (1.0, 1.0, 1.0), distill: Sequence[float] = (0.0, 1.0)) -> nn.Module:
    """The zoo's cnn (16-32-64 conv blocks, 128 hidden) with an exit on the max-pooled features of
    the first and of the second block: 3 exits. The full path is exactly cnn (1,994,240 MACs)."""
    s1, s2, s3 = image_size // 2, image_size // 4, image_size // 8
    stages = [
        nn.Sequential(*conv_bn_relu(in_channels, 16), nn.MaxPool2d(2)),  # (B, 16, 14, 14)
        nn.Sequential(*conv_bn_relu(16, 32), nn.MaxPool2d(2)),           # (B, 32, 7, 7)
        nn.Sequential(*conv_bn_relu(32, 64), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(64 * s3 * s3, 128), nn.ReLU(inplace=True), nn.Dropout(0.2)),  # (B, 128)
    ]
    exits = [ExitHead(16, s1, num_classes, 2, exit_hidden), ExitHead(32, s2, num_classes, 2, exit_hidden),
             nn.Linear(128, num_classes)]
    return MultiExitNet(stages, exits, exit_loss_weights, distill)


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


# ---------------------------------------------------------------------------------------------
# exit rule

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


# ---------------------------------------------------------------------------------------------
# real early-exit inference

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


# ---------------------------------------------------------------------------------------------
# the cached table and the vectorized sweep

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
    batch_size = batch_size or eval_batch_size(device)
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


# ---------------------------------------------------------------------------------------------
# measured speed

@_in_eval_mode
@torch.inference_mode()
def early_exit_latency(model: MultiExitNet, dataset: Dataset, cfg: EarlyExitConfig, *,
                       device: torch.device | str = "cpu", images: int = 300, warmup: int = 20,
                       shares: Sequence[float] | None = None, exit_index: torch.Tensor | None = None,
                       per_exit: int = 20) -> dict:
    """Batch-1 wall time on real test images, early exit against the full network, interleaved
    image by image so both see the same machine load. Milliseconds.

    An image's time depends on where it leaves, so the early-exit latency is the expected time
    per image: sum over exits of (share of test images leaving there) x (median time of the timed
    images that left there). Medians keep a busy machine's stalls out of the number; the plain
    mean and median over the timed images are returned beside it. `exit_index` (where each test
    image leaves, from the sweep) lets rare exits get at least `per_exit` timed images."""
    device = torch.device(device)
    chosen = list(range(min(images, len(dataset.test))))
    if exit_index is not None:
        for k in range(model.num_exits):
            have = sum(int(exit_index[i]) == k for i in chosen)
            extra = [i for i in (exit_index == k).nonzero().flatten().tolist() if i >= len(chosen)]
            chosen += extra[:max(0, per_exit - have)]
    xs = [dataset.normalize(dataset.test.images[i:i + 1], device) for i in chosen]
    taus = cfg.per_exit(model.num_exits)
    for x in xs[:warmup]:
        _run_one(model, x, cfg.criterion, taus)
        model(x)
    synchronize(device)
    early, full, where = [], [], []
    for i, x in enumerate(xs):
        for kind in (("early", "full") if i % 2 == 0 else ("full", "early")):
            start = time.perf_counter()
            if kind == "early":
                _, k = _run_one(model, x, cfg.criterion, taus)
            else:
                model(x)
            synchronize(device)
            (early if kind == "early" else full).append((time.perf_counter() - start) * 1000.0)
        where.append(int(k))
    per_exit_ms = [statistics.median([t for t, w in zip(early, where) if w == k]) if k in where else None
                   for k in range(model.num_exits)]
    if shares is None:
        shares = [where.count(k) / len(where) for k in range(model.num_exits)]
    expected = sum(s * (per_exit_ms[k] or 0.0) for k, s in enumerate(shares) if s > 0)
    return {"early_ms": expected, "full_ms": statistics.median(full), "per_exit_ms": per_exit_ms,
            "early_mean_ms": statistics.fmean(early), "early_median_ms": statistics.median(early),
            "full_mean_ms": statistics.fmean(full), "images": len(xs)}


@_in_eval_mode
@torch.inference_mode()
def early_exit_throughput(model: MultiExitNet, dataset: Dataset, cfg: EarlyExitConfig, *,
                          device: torch.device | str = "cpu", batch_size: int = 256, batches: int = 8) -> dict:
    """Images per second on real test batches: early exit (images that left are dropped from the
    batch) against the full network, alternating on the same batches; median batch time each."""
    device = torch.device(device)
    xs = [x for x, _ in dataset.batches("test", batch_size, device=device, limit=batch_size * batches)]
    taus = cfg.per_exit(model.num_exits)
    _run_batch(model, xs[0], cfg.criterion, taus)
    model(xs[0])
    times: dict[str, list[float]] = {"early": [], "full": []}
    for x in xs:
        for kind in ("early", "full"):
            synchronize(device)
            start = time.perf_counter()
            _run_batch(model, x, cfg.criterion, taus) if kind == "early" else model(x)
            synchronize(device)
            times[kind].append((time.perf_counter() - start) / x.shape[0])
    return {"early_images_per_s": 1.0 / statistics.median(times["early"]),
            "full_images_per_s": 1.0 / statistics.median(times["full"]), "batch_size": batch_size}


# ---------------------------------------------------------------------------------------------
# results

def _rounded(values: torch.Tensor) -> list[float | None]:
    return [None if math.isnan(v) else round(v, 6) for v in values.tolist()]


def early_exit_result(model: MultiExitNet, dataset: Dataset, cfg: EarlyExitConfig, *, name: str,
                      device: torch.device | str = "cpu", table: ExitTable | None = None,
                      latency_images: int = 300, throughput_batches: int = 8) -> Result:
    """The early-exit model at cfg's thresholds, measured: accuracy and mean MACs from the table,
    latency and throughput timed for real; baseline = the same model run to the end."""
    model = require_multi_exit(model, name)
    device = torch.device(device)
    taus = cfg.per_exit(model.num_exits)
    table = table if table is not None else exit_table(model, dataset, device=device)
    point = sweep(table, cfg.criterion, [taus])
    lat = early_exit_latency(model, dataset, cfg, device=device, images=latency_images,
                             shares=point.shares[0].tolist(), exit_index=point.exit_index[0])
    thr = early_exit_throughput(model, dataset, cfg, device=device, batches=throughput_batches)
    artifact = len(state_dict_bytes(model))
    params, nonzero = count_params(model), count_nonzero(model)
    metrics = Metrics(accuracy=float(point.accuracy[0]), accuracy_n=table.n, params=params, nonzero_params=nonzero,
                      size_bytes=artifact, macs=float(point.macs[0]), latency_ms=lat["early_ms"], simulated=False)
    baseline = Metrics(accuracy=float(table.correct[-1].float().mean()), accuracy_n=table.n, params=params,
                       nonzero_params=nonzero, size_bytes=artifact, macs=float(table.full_macs),
                       latency_ms=lat["full_ms"], simulated=False)
    extra = {
        "criterion": cfg.criterion, "threshold": taus[0] if len(set(taus)) == 1 else list(taus),
        "thresholds": list(taus), "exit_shares": _rounded(point.shares[0]),
        "exit_accuracy": _rounded(point.exit_accuracy[0]), "exit_costs": list(table.costs),
        "macs_ratio": round(metrics.macs / table.full_macs, 6),
        "exit_latency_ms": lat["per_exit_ms"], "full_latency_ms": lat["full_ms"],
        "latency_speedup": lat["full_ms"] / lat["early_ms"], "latency_images": lat["images"],
        "latency_mean_ms": lat["early_mean_ms"], "latency_median_ms": lat["early_median_ms"],
        "full_latency_mean_ms": lat["full_mean_ms"],
        "throughput": thr["early_images_per_s"], "full_throughput": thr["full_images_per_s"],
        "throughput_batch": thr["batch_size"],
    }
    return Result(model=name, dataset=dataset.name, method="early-exit",
                  config={"criterion": cfg.criterion, "thresholds": list(taus)}, device=device.type,
                  metrics=metrics, baseline=baseline, extra=extra)


# ---------------------------------------------------------------------------------------------
# slimmable network (dynamic width)

SLIM_WIDTHS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class WidthConfig:
    width: float = 1.0   # share of every hidden layer's channels; one of the model's widths

    def __post_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not 0 < self.width <= 1:
            raise CompressionError(f"width must be in (0, 1], got {self.width!r}")


class SlimmableCNN(nn.Module):
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


@register_model
def cnn_slim(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
             widths: Sequence[float] = SLIM_WIDTHS) -> nn.Module:
    """Slimmable cnn: one set of weights run at 0.25, 0.5, 0.75 or 1.0 of its channels."""
    return SlimmableCNN(num_classes=num_classes, in_channels=in_channels, image_size=image_size, widths=widths)


def require_slimmable(model: nn.Module, name: str = "model") -> SlimmableCNN:
    if not isinstance(model, SlimmableCNN):
        raise CompressionError(f"{name!r} is not slimmable; choose a slimmable model such as cnn_slim")
    return model


def refuse_slimmable(model: nn.Module, what: str) -> None:
    """Methods that rebuild or trace layers cannot work on shared-width weights: say so, naming
    the way out, instead of returning an unchanged model labelled as compressed."""
    if isinstance(model, SlimmableCNN):
        raise CompressionError(f"{what} does not support slimmable models: every width slices the same "
                               "weights, so their layers cannot be rebuilt one by one; convert one width to a "
                               "static network first (compression.dynamic.slim_to_static)")


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
    static = slim_to_static(model, cfg.width).to(device)
    metrics = measure(static, dataset, device=device, limit=limit)
    if baseline is None:
        baseline = measure(slim_to_static(model, model.widths[-1]).to(device), dataset, device=device, limit=limit)
    extra = {"width": cfg.width, "channels": list(model.channels(cfg.width)),
             "macs_ratio": round(metrics.macs / baseline.macs, 6),
             "latency_ratio": round(metrics.latency_ms / baseline.latency_ms, 6)}
    return Result(model=name, dataset=dataset.name, method="width", config={"width": cfg.width},
                  device=device.type, metrics=metrics, baseline=baseline, extra=extra)


def width_results(model: nn.Module, dataset: Dataset, *, name: str, device: torch.device | str = "cpu",
                  limit: int | None = None) -> list[Result]:
    """Every width of a slimmable model, measured side by side (baseline measured once)."""
    model = require_slimmable(model, name)
    full = measure(slim_to_static(model, model.widths[-1]).to(device), dataset, device=device, limit=limit)
    return [width_result(model, dataset, WidthConfig(w), name=name, device=device, limit=limit, baseline=full)
            for w in model.widths]
