"""Training steps as registered methods: `finetune:<epochs>` and `distill:<epochs>:T=..:alpha=..`.

Both train the model they are given (a copy) on labelled images; `distill` adds a frozen teacher's
softened outputs to the loss (Hinton et al. 2015): by default the reference's own, unchanged model
(self-distillation after pruning or conversion), or any model reference (`teacher=cnn`) that takes
the same images and classes. Zeros left by unstructured pruning stay zero (masks re-applied after
every optimizer step), so a step after a sparse prune keeps its sparse file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from compression import CompressionError
from compression.methods import Compressed, Context, register_method
from compression.training import TrainConfig, accuracy_on, cross_entropy_loss, fit

SPLITS = ("train", "val")


def _check(value, what: str, lo: float, hi: float, *, integer: bool = False, lo_open: bool = False) -> None:
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool) and (value > lo if lo_open else value >= lo) \
        and value <= hi
    if not ok:
        raise CompressionError(f"{what} must be {'an integer' if integer else 'a number'} in "
                               f"{'(' if lo_open else '['}{lo:g}, {hi:g}], got {value!r}")


def _split(value) -> None:
    if value not in SPLITS:
        raise CompressionError(f"fine-tuning split must be one of {', '.join(SPLITS)}, got {value!r}")


@dataclass(frozen=True)
class FinetuneStep:
    epochs: int = 1
    lr: float = 1e-3
    split: str = "train"
    kind = "finetune"

    def __post_init__(self):
        _check(self.epochs, "fine-tuning epochs", 1, 100, integer=True)
        _check(self.lr, "fine-tuning learning rate", 0, 1, lo_open=True)
        _split(self.split)

    def spec(self) -> str:
        return f"finetune:{self.epochs}{_opt(self, ('lr', 'split'))}"


@dataclass(frozen=True)
class DistillStep:
    epochs: int = 1
    T: float = 4.0                 # temperature of the softened outputs
    alpha: float = 0.7             # weight of the teacher's soft labels (1 - alpha: hard labels)
    lr: float = 1e-3
    split: str = "train"
    teacher: str | None = None     # a model reference; None: the reference's own unchanged model
    kind = "distill"

    def __post_init__(self):
        _check(self.epochs, "distillation epochs", 1, 100, integer=True)
        _check(self.T, "temperature T", 0, 100, lo_open=True)
        _check(self.alpha, "alpha", 0, 1, lo_open=True)
        _check(self.lr, "distillation learning rate", 0, 1, lo_open=True)
        _split(self.split)
        if self.teacher is not None:
            from compression.refs import parse
            try:
                parse(self.teacher)  # an unknown teacher is named here, before any work
            except CompressionError as exc:  # named as given: parse strips spaces and line ends
                raise CompressionError(f"teacher {self.teacher!r}: {exc}") from None

    def spec(self) -> str:
        return f"distill:{self.epochs}:T={self.T:g}:alpha={self.alpha:g}{_opt(self, ('lr', 'split', 'teacher'))}"


def _opt(step, keys: tuple[str, ...]) -> str:
    defaults = type(step)()
    return "".join(f":{k}={getattr(step, k):g}" if isinstance(getattr(step, k), float) else f":{k}={getattr(step, k)}"
                   for k in keys if getattr(step, k) != getattr(defaults, k))


def train(model: nn.Module, step, ctx: Context, loss_fn=None) -> Compressed:
    """Train a copy of `model` for the step's epochs; unstructured zeros kept; payload as before."""
    from compression.models import clone_model
    from compression.pruning import apply_masks, sparse_bytes, weight_masks
    sparse = ctx.state.get("sparse", False)
    model = clone_model(model).to(ctx.device)
    masks = weight_masks(model) if sparse else None
    cfg = TrainConfig(epochs=step.epochs, lr=step.lr, batch_size=128, optimizer="adam", schedule="cosine",
                      seed=ctx.seed, split=step.split, subset=ctx.subset)
    monitor = lambda m: accuracy_on(m, ctx.dataset, "val" if step.split == "train" else "test", ctx.device,  # noqa: E731
                                    limit=ctx.monitor_images)
    run = fit(model, ctx.dataset, cfg, device=ctx.device, progress=ctx.progress, should_stop=ctx.should_stop,
              loss_fn=loss_fn or cross_entropy_loss, evaluate=monitor,
              after_step=(lambda m: apply_masks(m, masks)) if masks else None)
    trained = run.model.eval()
    gain = ("Size is real (sparse file: nonzero values + relative indices or bitmask); speed is simulated: "
            "dense kernels still multiply the zeros." if sparse else
            "Real gain: a dense network; size, MACs and latency measured on it.")
    return Compressed(trained, payload=sparse_bytes(trained) if sparse else None, kind="sparse" if sparse else "dense",
                      simulated=sparse, simulated_metrics=("latency_ms",), history=run.history, extra={"gain": gain}, stopped=run.stopped,
                      state={"sparse": sparse})


def apply_finetune(model: nn.Module, step: FinetuneStep, ctx: Context) -> Compressed:
    return train(model, step, ctx)


def apply_distill(model: nn.Module, step: DistillStep, ctx: Context) -> Compressed:
    from compression.teacher import frozen_teacher_loss
    teacher = ctx.original
    if step.teacher is not None:
        from compression.refs import resolve
        teacher = resolve(step.teacher, ctx.dataset, device=ctx.device).model
    return train(model, step, ctx, frozen_teacher_loss(teacher, ctx.device, temperature=step.T, alpha=step.alpha))


TRAIN_KNOBS = {"epochs": {"min": 1, "max": 100}, "lr": {"min": 0.0, "max": 1.0, "min_open": True},
               "split": {"choices": list(SPLITS), "help": "images to train on"}}

register_method("finetune", FinetuneStep, apply_finetune, positional=("epochs",), spec=FinetuneStep.spec,
                units=lambda s: s.epochs, knobs=TRAIN_KNOBS,
                help="train the model further on labelled images (Adam, cosine decay); pruned zeros stay zero")
register_method("distill", DistillStep, apply_distill, positional=("epochs",), spec=DistillStep.spec,
                units=lambda s: s.epochs,
                knobs={**TRAIN_KNOBS, "T": {"min": 0.0, "max": 100.0, "min_open": True, "help": "temperature"},
                       "alpha": {"min": 0.0, "max": 1.0, "min_open": True, "help": "weight of the soft labels"},
                       "teacher": {"help": "model reference of the teacher (default: the original model)"}},
                help="train the model on a teacher's softened outputs (Hinton et al. 2015) and the labels")
