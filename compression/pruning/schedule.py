"""Prune -> fine-tune -> repeat: the ratio ramped over the steps (`ratio_schedule`, a pure
function), the dispatch on the method (`prune`) and the loop that fine-tunes after each step."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterable

import torch
import torch.nn as nn

from compression.data import Dataset
from compression.models import clone_model
from compression.pruning.batchnorm import recalibrate_bn
from compression.pruning.config import BN_IMAGES, FinetuneConfig, PruneConfig
from compression.pruning.structured import channel_counts, prune_channels
from compression.pruning.unstructured import apply_masks, prune_weights, weight_masks
from compression.teacher import frozen_teacher_loss
from compression.training import ProgressFn, StopFn, accuracy_on, cross_entropy_loss, fit

def ratio_schedule(ratio: float, steps: int) -> list[float]:
    """Linear ramp to `ratio` over `steps` pruning steps: 0.9, 3 -> [0.3, 0.6, 0.9]."""
    return [ratio * k / steps for k in range(1, steps + 1)]


def prune(model: nn.Module, cfg: PruneConfig, *, input_shape: tuple[int, ...],
          calibration: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
          original: dict[str, int] | None = None) -> nn.Module:
    """Dispatch on cfg.method; returns a new model."""
    if cfg.method == "structured":
        return prune_channels(model, cfg.ratio, input_shape=input_shape, scope=cfg.scope,
                              importance=cfg.importance, calibration=calibration, original=original)
    return prune_weights(model, cfg.ratio, scope=cfg.scope)


@dataclass
class PruneRun:
    model: nn.Module
    history: list[dict] = field(default_factory=list)  # progress entries, oldest first
    stopped: bool = False
    steps_done: int = 0
    ratio_reached: float = 0.0


@contextlib.contextmanager
def _seeded(seed: int):
    with torch.random.fork_rng(devices=[]):  # dropout draws do not disturb the caller's RNG
        torch.manual_seed(seed)
        yield


def monitor_split(ft: FinetuneConfig) -> tuple[str, int]:
    """Where the live accuracy is measured: held-out val images when fine-tuning on train, else
    the first test images (never trained on; the final number uses all test images). `ft.split`
    is resolved ("auto": FinetuneConfig.for_dataset)."""
    return ("val" if ft.split == "train" else "test"), ft.monitor_images



def prune_finetune(model: nn.Module, dataset: Dataset, cfg: PruneConfig, ft: FinetuneConfig = FinetuneConfig(), *,
                   device: torch.device | str = "cpu", progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None) -> PruneRun:
    """Prune to cfg.ratio in ft.steps steps (linear ramp), fine-tuning ft.epochs after each.

    Unstructured masks are re-applied after every optimizer step, so pruned weights stay zero.
    Structured with fine-tuning and ft.recalibrate_bn: after each pruning step the BatchNorm running
    statistics are re-estimated on BN_IMAGES images of the fine-tuning split (compression.pruning.batchnorm).
    ft.split "auto" is resolved for `dataset` (FinetuneConfig.for_dataset). Stop keeps what was
    done: the model as pruned (and fine-tuned) so far, with the ratio reached.
    """
    device = torch.device(device)
    ft = ft.for_dataset(dataset)
    current = clone_model(model).to(device).eval()
    original = channel_counts(current)
    split, limit = monitor_split(ft)
    monitor = lambda m: accuracy_on(m, dataset, split, device, limit=limit)  # noqa: E731
    run = PruneRun(model=current)
    ratios = ratio_schedule(cfg.ratio, ft.steps)
    units, done = ft.steps * (1 + ft.epochs), 0
    # with distill > 0 the unpruned model teaches (Hinton et al. 2015, T = 4)
    loss_fn = (frozen_teacher_loss(model, device, temperature=4.0, alpha=ft.distill) if ft.distill > 0
               else cross_entropy_loss)

    def report(entry: dict) -> None:
        entry.update({"step": done, "steps": units, "monitor": f"{split}[:{limit}]"})
        run.history.append(entry)
        if progress is not None:
            progress(dict(entry))

    stop = should_stop or (lambda: False)
    with _seeded(ft.seed):
        for k, r in enumerate(ratios, start=1):
            if stop():
                run.stopped = True
                break
            calibration = (list(dataset.batches(ft.split, 64, device=device, limit=256))
                           if cfg.method == "structured" and cfg.importance == "taylor" else None)
            current = prune(current, PruneConfig(cfg.method, r, cfg.scope, cfg.importance),
                            input_shape=dataset.input_shape, calibration=calibration, original=original)
            if cfg.method == "structured" and ft.epochs and ft.recalibrate_bn:
                recalibrate_bn(current, dataset, dataset.split(ft.split).head(ft.subset), BN_IMAGES, device=device, seed=ft.seed)
            run.model, run.steps_done, run.ratio_reached = current, k, r
            done += 1
            report({"phase": "pruned", "prune_step": k, "prune_steps": ft.steps, "ratio": r,
                    "epoch": 0, "accuracy": monitor(current) if ft.epochs else None})  # no FT: no live view
            if ft.epochs == 0:
                continue
            masks = weight_masks(current) if cfg.method == "unstructured" else None

            def epoch_done(entry: dict, k=k, r=r) -> None:
                nonlocal done
                done += 1
                report({"phase": "fine-tuned", "prune_step": k, "prune_steps": ft.steps, "ratio": r,
                        "epoch": entry["epoch"], "epochs": ft.epochs, "loss": entry["loss"],
                        "accuracy": entry["val_accuracy"], "partial": entry["partial"]})

            trained = fit(current, dataset, ft.train_config(), device=device, progress=epoch_done,
                          should_stop=stop, evaluate=monitor, loss_fn=loss_fn,
                          after_step=(lambda m: apply_masks(m, masks)) if masks else None)
            current = run.model = trained.model.eval()
            if trained.stopped:
                run.stopped = True
                break
    return run
