"""Measured pruning runs: one Result per run for the run store (`run_prune`, `sweep`), with the
artifact the user downloads and the per-layer table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
import torch.nn as nn

from compression.data import Dataset
from compression.metrics import Metrics, Result
from compression.models import state_dict_bytes
from compression.pruning.config import PRUNABLE, FinetuneConfig, PruneConfig, config_dict
from compression.pruning.sparse_format import sparse_bytes
from compression.training import ProgressFn, StopFn

def artifact_bytes(model: nn.Module, method: str) -> bytes:
    """What the user downloads: the sparse container (unstructured) or the smaller dense
    state_dict, in the same torch.save format as the baseline's (structured)."""
    return sparse_bytes(model) if method == "unstructured" else state_dict_bytes(model)


def layer_table(before: nn.Module, after: nn.Module) -> list[dict]:
    """Per conv/linear layer: weights and channels before/after, nonzero weights after."""
    old = dict(before.named_modules())
    rows = []
    for name, m in after.named_modules():
        if not isinstance(m, PRUNABLE) or name not in old:
            continue
        o = old[name]
        conv = isinstance(m, nn.modules.conv._ConvNd)
        rows.append({
            "layer": name, "kind": "conv" if conv else "linear",
            "shape_before": list(o.weight.shape), "shape_after": list(m.weight.shape),
            "channels_before": o.weight.shape[0], "channels_after": m.weight.shape[0],
            "weights_before": o.weight.numel(), "weights_after": m.weight.numel(),
            "nonzero_after": int(torch.count_nonzero(m.weight.detach())),
        })
    for r in rows:
        r["kept_weights"] = r["nonzero_after"] / r["weights_before"] if r["weights_before"] else 1.0
        r["kept_channels"] = r["channels_after"] / r["channels_before"] if r["channels_before"] else 1.0
    return rows


@dataclass
class PruneOutcome:
    result: Result
    model: nn.Module         # the pruned (and fine-tuned) model, on `device`
    artifact: bytes          # what size_bytes measured: sparse container or dense state_dict
    history: list[dict]



def _runtime_option(runtime: str | None) -> dict:
    """The run option that says where latency is timed (none: the process default)."""
    from compression.runtimes import check_runtime
    return {"runtime": check_runtime(runtime)} if runtime else {}


def describe_gain(method: str) -> str:
    """In words: is the gain real?"""
    if method == "structured":
        return ("Real gain: channels were removed, so this is a smaller dense network; its size, "
                "MACs and latency were measured on it.")
    return ("Size is real, speed is simulated: the zeros are stored in a sparse format (bitmask or "
            "relative indices + nonzero values), so the file is smaller, but the model still runs "
            "dense kernels that multiply every zero, so latency does not improve.")


def run_prune(name: str, dataset: Dataset, cfg: PruneConfig, ft: FinetuneConfig = FinetuneConfig(), *,
              device: torch.device | str = "cpu", limit: int | None = None,
              model: nn.Module | None = None, baseline: Metrics | None = None,
              progress: ProgressFn | None = None, should_stop: StopFn | None = None,
              runtime: str | None = None) -> PruneOutcome:
    """Prune (and fine-tune) model reference `name` through the method registry's one path
    (compression.methods.compress), then measure it: one Result for the run store, its artifact
    the container file. `model` may be the reference's model already loaded (it is not modified);
    `runtime` where latency is timed (compression.runtimes; None: the process default)."""
    from compression.methods import compress
    from compression.pruning.method import PruneStep
    ft = ft.for_dataset(dataset)  # "auto" stored as the split it means
    step = PruneStep(cfg.method, cfg.ratio, cfg.scope, ft.steps, ft.epochs, ft.lr, ft.split, cfg.importance,
                     distill=ft.distill, augment=ft.augment, recalibrate_bn=ft.recalibrate_bn)
    run = compress(name, dataset, "prune", step, device=device, limit=limit, progress=progress,
                   should_stop=should_stop, model=model, baseline=baseline, seed=ft.seed, subset=ft.subset,
                   monitor_images=ft.monitor_images, options=_runtime_option(runtime))
    run.result.config.clear()
    run.result.config.update(config_dict(cfg, ft))  # the Pruning page's settings, as stored before
    return PruneOutcome(result=run.result, model=run.model, artifact=run.artifact, history=run.compressed.history)


def staged_prune(name: str, dataset: Dataset, cfg: PruneConfig, ft: FinetuneConfig = FinetuneConfig(), *,
                 device: torch.device | str = "cpu", model: nn.Module | None = None, first: int | None = None,
                 cancelled=lambda: False, runtime: str | None = None):
    """`run_prune` in stages (compression.progressive.staged_compress): a Stage "subset" (a Partial:
    accuracy on the preview's test images: compression.preview_subset) as soon as it is pruned, then the Stage "full" (a PruneOutcome,
    what run_prune returns), each config the page's settings."""
    from compression.progressive import Stage, staged_compress
    from compression.pruning.method import PruneStep
    ft = ft.for_dataset(dataset)
    step = PruneStep(cfg.method, cfg.ratio, cfg.scope, ft.steps, ft.epochs, ft.lr, ft.split, cfg.importance,
                     distill=ft.distill, augment=ft.augment, recalibrate_bn=ft.recalibrate_bn)
    settings = config_dict(cfg, ft)
    for stage in staged_compress(name, dataset, "prune", step, device=device, model=model, cancelled=cancelled,
                                 first=first, seed=ft.seed, subset=ft.subset,
                                 monitor_images=ft.monitor_images, options=_runtime_option(runtime)):
        if not stage.final:
            stage.value.config = dict(settings)
            yield stage
            continue
        run = stage.value
        run.result.config.clear()
        run.result.config.update(settings)
        yield Stage(stage.name, PruneOutcome(result=run.result, model=run.model, artifact=run.artifact,
                                             history=run.compressed.history), final=True)


def sweep(name: str, dataset: Dataset, cfg: PruneConfig, ratios: Iterable[float],
          ft: FinetuneConfig = FinetuneConfig(), *, device: torch.device | str = "cpu", limit: int | None = None,
          model: nn.Module | None = None, progress: ProgressFn | None = None,
          should_stop: StopFn | None = None, store=False, executor=None,
          runtime: str | None = None) -> Iterator[PruneOutcome]:
    """One measured outcome per ratio (each from the unpruned model), as they finish.

    Every ratio is a sweep job (compression.sweep) on `executor` (default: the configured one:
    in-process, or a Dask cluster): it resolves `name` itself (`model`, the reference's model
    already loaded, is not needed). In-process, `progress` gets each job's epochs and `should_stop`
    ends the running job too (its partial result is kept); on a cluster Stop acts between ratios.
    With `store` (True or a RunStore) each result is stored once, here, with its artifact file, its
    config as run_prune stores it. The outcome's model is rebuilt from that artifact. `runtime`: where
    each job times latency (None: the process default, as a Job copies it)."""
    from compression import CompressionError
    from compression.artifact import load_artifact
    from compression.pruning.method import PruneStep
    from compression.runtimes import check_runtime
    from compression.sweep import Job, run_jobs
    ratios = list(ratios)
    for r in ratios:
        PruneConfig(cfg.method, r, cfg.scope, cfg.importance)  # refuse a bad ratio before any work
    ft = ft.for_dataset(dataset)
    fixed = FinetuneConfig(epochs=ft.epochs, steps=ft.steps, lr=ft.lr, split=ft.split, subset=ft.subset,
                           augment=ft.augment, distill=ft.distill, seed=ft.seed, recalibrate_bn=ft.recalibrate_bn)
    if ft != fixed:  # what a job does not carry: the page never sets it
        raise CompressionError(f"a pruning sweep fine-tunes with batch {fixed.batch_size} and monitors "
                               f"{fixed.monitor_images} images; got {ft.batch_size} and {ft.monitor_images}")
    device = torch.device(device)
    steps = [PruneStep(cfg.method, r, cfg.scope, ft.steps, ft.epochs, ft.lr, ft.split, cfg.importance,
                       distill=ft.distill, augment=ft.augment, recalibrate_bn=ft.recalibrate_bn) for r in ratios]
    on = {"runtime": check_runtime(runtime)} if runtime else {}
    jobs = [Job(name, dataset.name, step.spec(), device=device.type, limit=limit, subset=ft.subset, seed=ft.seed, **on)
            for step in steps]

    def as_page_stores(point) -> None:
        point.result.result.config.clear()
        point.result.result.config.update(config_dict(PruneConfig(cfg.method, ratios[point.index], cfg.scope,
                                                                  cfg.importance), ft))

    for point in run_jobs(jobs, executor=executor, store=store, should_stop=should_stop, job_progress=progress,
                          job_should_stop=should_stop, prepare=as_page_stores):
        if not point.ok:
            raise CompressionError(point.error)
        result, artifact = point.result.result, point.result.artifact
        yield PruneOutcome(result=result, model=load_artifact(artifact).to(device), artifact=artifact,
                           history=list(result.extra.get("history", [])))
