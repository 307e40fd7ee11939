"""Training and fine-tuning: one loop, used by the zoo and by every family's recovery step.

`fit` copies the model it is given and trains the copy; progress goes to a callback after each
epoch and `should_stop` is polled between batches, so a Stop button keeps what was done.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from compression import CompressionError
from compression.data import Dataset, Split
from compression.cancel import checkpoint
from compression.device import eval_batch_size, inference_layout
from compression.models import clone_model

ProgressFn = Callable[[dict], None]
StopFn = Callable[[], bool]

# Ticks: what a long call is doing right now (its phase, and how far along), for a live view's
# elapsed/remaining time. They are not progress entries (those are results: one per epoch, drawn
# on charts and printed by the CLI); a caller that wants ticks installs a sink for its thread.
_ticks = threading.local()
_spans = itertools.count()


@contextlib.contextmanager
def tick_sink(fn: Callable[[dict], None]):
    """Send this thread's ticks to fn({"span", "phase", "done", "total"}) inside the block."""
    previous = getattr(_ticks, "fn", None)
    _ticks.fn = fn
    try:
        yield
    finally:
        _ticks.fn = previous


def tick(span: int, phase: str, done: float | None = None, total: float | None = None) -> None:
    """Report the current phase of span `span` (one call's work, e.g. one fit: from new_span())."""
    fn = getattr(_ticks, "fn", None)
    if fn is not None:
        fn({"span": span, "phase": phase, "done": done, "total": total})


def new_span() -> int:
    return next(_spans)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10           # passes over the training images
    lr: float = 1e-3           # peak learning rate
    batch_size: int = 128
    weight_decay: float = 0.0
    optimizer: str = "adam"    # adam | sgd (momentum 0.9)
    schedule: str = "cosine"   # cosine | constant
    augment: bool = False      # random shifts of up to 2 px and horizontal flips
    seed: int = 0              # data order and augmentation
    split: str = "train"       # train | val: which images to learn from
    subset: int | None = None  # use only the first `subset` images of that split
    eval_split: str = "val"    # accuracy reported after each epoch

    def __post_init__(self):
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise CompressionError(f"epochs must be a non-negative integer, got {self.epochs!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr <= 10):
            raise CompressionError(f"learning rate must be in (0, 10], got {self.lr!r}")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 65536:
            raise CompressionError(f"batch size must be in [1, 65536], got {self.batch_size!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise CompressionError(f"optimizer must be adam or sgd, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "constant"):
            raise CompressionError(f"schedule must be cosine or constant, got {self.schedule!r}")
        if self.split not in ("train", "val") or self.eval_split not in ("train", "val", "test"):
            raise CompressionError(f"bad split {self.split!r}/{self.eval_split!r}")
        if self.subset is not None and (not isinstance(self.subset, int) or self.subset < 1):
            raise CompressionError(f"subset must be a positive number of images, got {self.subset!r}")


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)  # one entry per finished epoch
    stopped: bool = False                               # True when should_stop ended it early
    seconds: float = 0.0


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to 2 px per image, on raw (B, C, H, W)
    images before normalization, so the uncovered border is filled with black (0) background."""
    b = x.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip.view(b, 1, 1, 1).to(x.device), x.flip(3), x)
    padded = F.pad(x, (2, 2, 2, 2))
    shifts = torch.randint(0, 5, (b, 2), generator=generator)
    out = torch.empty_like(x)
    h, w = x.shape[2:]
    for dy in range(5):
        for dx in range(5):
            sel = ((shifts[:, 0] == dy) & (shifts[:, 1] == dx)).nonzero().flatten().to(x.device)
            if sel.numel():
                out[sel] = padded[sel, :, dy:dy + h, dx:dx + w]
    return out


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def fit(model: nn.Module, dataset: Dataset, cfg: TrainConfig, *, device: torch.device | str = "cpu",
        loss_fn: LossFn = cross_entropy_loss, progress: ProgressFn | None = None,
        should_stop: StopFn | None = None, after_step: Callable[[nn.Module], None] | None = None,
        evaluate: Callable[[nn.Module], float] | None = None) -> TrainResult:
    """Train a copy of `model`; the caller's model is untouched.

    loss_fn(model, x, y, idx) gets the batch's indices into the split, so a distillation loss can
    look up cached teacher logits. after_step(model) runs after each optimizer step (e.g. to
    re-apply pruning masks). evaluate(model) replaces the default accuracy on cfg.eval_split.
    """
    device = torch.device(device)
    model = clone_model(model).to(device)
    data: Split = dataset.split(cfg.split).head(cfg.subset)
    steps_per_epoch = max(1, math.ceil(len(data) / cfg.batch_size))
    opt = _optimizer(model, cfg)
    total = cfg.epochs * steps_per_epoch
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total))
             if cfg.schedule == "cosine" else None)
    gen = torch.Generator().manual_seed(cfg.seed)
    result = TrainResult(model=model)
    start = time.perf_counter()
    evaluate = evaluate or (lambda m: accuracy_on(m, dataset, cfg.eval_split, device))
    span, last_tick = new_span(), 0.0
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(data), generator=gen)
        loss_sum, seen = 0.0, 0
        for step in range(steps_per_epoch):
            if should_stop is not None and should_stop():
                result.stopped = True
                break
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            raw = data.images[idx]
            if cfg.augment:
                raw = augment_batch(raw, gen)
            x = dataset.normalize(raw, device)
            y = data.labels[idx].to(device)
            loss = loss_fn(model, x, y, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if after_step is not None:
                after_step(model)
            loss_sum += float(loss.detach()) * len(idx)
            seen += len(idx)
            if time.perf_counter() - last_tick > 0.5:
                last_tick = time.perf_counter()
                tick(span, f"training epoch {epoch + 1} of {cfg.epochs}", epoch * steps_per_epoch + step + 1, total)
        if result.stopped and seen == 0:
            break
        tick(span, f"evaluating epoch {epoch + 1} of {cfg.epochs}", (epoch + 1) * steps_per_epoch, total)
        entry = {"epoch": epoch + 1, "epochs": cfg.epochs, "loss": loss_sum / max(1, seen),
                 "val_accuracy": evaluate(model), "partial": result.stopped,
                 "seconds": time.perf_counter() - start}
        result.history.append(entry)
        if progress is not None:
            progress(entry)
        if result.stopped:
            break
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


@torch.inference_mode()
def predict(model: nn.Module, dataset: Dataset, split: str = "test", *, device: torch.device | str = "cpu",
            limit: int | None = None, batch_size: int | None = None) -> torch.Tensor:
    """Logits for the split, (N, num_classes), on the CPU. Puts the model in eval mode (and runs a
    channels_last copy of a conv model on the CPU: `inference_layout`)."""
    model.eval()
    batch_size = batch_size or eval_batch_size(device, dataset.input_shape)
    runner, prepare = inference_layout(model, device)
    outs = []
    for x, _ in dataset.batches(split, batch_size, device=device, limit=limit):
        checkpoint()  # a background job yields to a user here (compression.cancel)
        outs.append(runner(prepare(x)).float().cpu())
    return torch.cat(outs)


def accuracy_on(model: nn.Module, dataset: Dataset, split: str = "test", device: torch.device | str = "cpu",
                limit: int | None = None) -> float:
    was_training = model.training
    logits = predict(model, dataset, split, device=device, limit=limit)
    model.train(was_training)
    labels = dataset.split(split).head(limit).labels
    return float((logits.argmax(1) == labels).float().mean())


def config_dict(cfg) -> dict:
    return asdict(cfg)
