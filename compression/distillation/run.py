"""Runs with results: the hard-label baseline, then one distilled student per setting, each a sweep
job of the registered `student` method (compression.distillation.method) on the sweep executor
(in-process, or the workers of a Dask cluster), measured and yielded in that order."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from compression import CompressionError
from compression.data import Dataset
from compression.distillation.config import DistillConfig, StudentSpec
from compression.distillation.method import DISTILLED, HARD_LABELS, StudentConfig, run_label, spec
from compression.distillation.student import build_student
from compression.metrics import Result
from compression.contract import model_view
from compression.refs import Resolved, resolve
from compression.training import ProgressFn, StopFn

__all__ = ["DISTILLED", "HARD_LABELS", "Outcome", "distill", "run_label", "stored_run_id", "sweep_configs"]


@dataclass
class Outcome:
    result: Result
    model: nn.Module         # the trained student (CPU/`device`), for downloads
    role: str                # HARD_LABELS | DISTILLED
    cached: bool = False     # the hard-label run came from the cache (stored before, not retrained)
    artifact: bytes = b""    # the student's file (the artifact container): size_bytes == len(artifact)


def sweep_configs(cfg: DistillConfig, *, temperatures: Sequence[float] | None = None,
                  alphas: Sequence[float] | None = None) -> list[DistillConfig]:
    """One config per swept temperature or alpha (the other knobs as in cfg); cfg alone without a sweep."""
    if temperatures and alphas:
        raise CompressionError("sweep either temperatures or alphas, not both")
    if temperatures:
        return [replace(cfg, temperature=float(t)) for t in temperatures]
    if alphas:
        return [replace(cfg, alpha=float(a)) for a in alphas]
    return [cfg]


def distill(teachers: Sequence[str], student: StudentSpec, dataset: Dataset, cfg: DistillConfig, *,
            temperatures: Sequence[float] | None = None, alphas: Sequence[float] | None = None,
            baseline: bool = True, device: torch.device | str = "cpu", limit: int | None = None,
            progress: ProgressFn | None = None, should_stop: StopFn | None = None,
            store=None, executor=None, runtime: str | None = None) -> Iterator[Outcome]:
    """Train the student on hard labels alone (the honest baseline), then with the teacher(s) for
    each setting; yield each measured student in that order. Stop ends after the running student,
    which is yielded with what it learned so far.

    teachers: model references, zoo names, torchvision:<arch> or entry:<name> (more than one: an
    ensemble, the mean of their softened distributions).
    Every student starts from the same seeded init and sees the same data order. Each is one
    compression.sweep Job of the `student` method on `executor` (default: the configured one). In
    process, `progress` gets every epoch and `should_stop` ends the running student too; a cluster's
    workers train on the dataset loaded by name, their epochs reported when each student is done.
    With `store` (a RunStore) each student is stored here, once, with its artifact file; a cached
    hard-label student already stored under the same settings is not stored again. `runtime`: where
    each student's latency is timed (compression.runtimes; None: the process default).
    """
    from compression.run_labels import new_group_id
    from compression.sweep import InProcessExecutor, Job, default_executor, run_job
    if not teachers:
        raise CompressionError("name at least one teacher")
    device = torch.device(device)
    # unknown references and a dataset the teacher cannot take fail here, in one line
    resolved = [resolve(name, dataset, device=device) for name in teachers]
    configs = sweep_configs(cfg, temperatures=temperatures, alphas=alphas)
    build_student(student, input_shape=resolved[0].dataset.input_shape, num_classes=dataset.num_classes,
                  seed=cfg.seed, teacher=teachers[0], dataset=dataset)  # a student that cannot be built is named before any training
    # alpha = 0 is the hard-label baseline itself: trained once, first
    with_baseline = baseline or any(c.alpha == 0 for c in configs)
    plan = [StudentConfig.of(student, c, teachers[1:])
            for c in ([cfg.hard_label_baseline()] if with_baseline else []) + [c for c in configs if c.alpha > 0]]
    executor = executor or default_executor()
    here = isinstance(executor, InProcessExecutor)
    if not here:
        _check_loadable_by_name(dataset)
    total, done = cfg.epochs * len(plan), [0]

    def report(entry: dict) -> None:
        done[0] += 1
        if progress is not None:
            progress({**entry, "step": done[0], "steps": total})

    from compression.runtimes import check_runtime
    on = {"runtime": check_runtime(runtime)} if runtime else {}
    jobs = [Job(teachers[0], dataset.name, spec(c), device=device.type, limit=limit, seed=c.seed, **on) for c in plan]
    if here:  # the dataset as given (it may be a slice of the named one) and the teacher already loaded
        teacher = resolved[0] if resolved[0].dataset is dataset else \
            replace(resolved[0], dataset=model_view(dataset, resolved[0].contract), _baseline={})
        fn = functools.partial(_run_here, teacher=teacher, progress=report, should_stop=should_stop)
    else:
        fn = run_job
    pending: dict[int, object] = {}  # finished jobs by plan index, yielded in plan order
    next_index, hard_accuracy = 0, None
    group = new_group_id("sweep") if store is not None and len(plan) > 1 else None  # the students of one sweep
    for point in executor.map(fn, jobs, should_stop=should_stop):
        if not point.ok:
            raise CompressionError(point.error)
        pending[point.index] = point.result
        if not here:  # a worker's epochs, reported now that its student is done
            _replay(point.result.result, plan[point.index].distill_config(), report)
        while next_index in pending:  # the hard-label twin first, so each distilled student's gain is known
            outcome, hard_accuracy = _finish(pending.pop(next_index), teachers, device, store, hard_accuracy, group)
            next_index += 1
            yield outcome
    for index in sorted(pending):
        yield _finish(pending.pop(index), teachers, device, store, hard_accuracy, group)[0]


def _finish(out, teachers: Sequence[str], device: torch.device, store, hard_accuracy: float | None,
            group: str | None = None):
    """(the Outcome of a finished job, stored unless a cached twin is stored already; the hard-label accuracy)."""
    from compression.artifact import load_artifact
    from compression.methods import save_run
    result = out.result
    if len(teachers) > 1:
        result = dataclasses.replace(result, model="+".join(teachers))  # an ensemble, as always stored
    role, extra = result.extra["role"], result.extra
    if role == HARD_LABELS and not extra["stopped"]:
        hard_accuracy = result.metrics.accuracy
    elif role == DISTILLED and hard_accuracy is not None:
        extra["gain_vs_hard_labels"] = result.metrics.accuracy - hard_accuracy
    if store is not None:
        known = stored_run_id(store, result) if extra["cached"] else None
        if known is None:
            save_run(result, out.artifact, store=store, group=group)
        else:  # trained and stored by an earlier run with the same settings
            extra["run_id"] = known
    extra["worker_pid"] = out.worker_pid  # not stored: which process trained it
    model = load_artifact(out.artifact).to(device)
    return Outcome(result, model, role, extra["cached"], out.artifact), hard_accuracy


def _run_here(job, *, teacher: Resolved, progress: ProgressFn, should_stop: StopFn | None):
    """A sweep job run in this process on the resolved teacher and the caller's dataset."""
    from compression.knobs import parse_spec
    from compression.methods import compress
    from compression.sweep import JobResult
    run = compress(teacher, None, "student", parse_spec(job.spec)[1], device=job.device, limit=job.limit,
                   seed=job.seed, progress=progress, should_stop=should_stop, options={"runtime": job.runtime})
    return JobResult(job, run.result, run.artifact, os.getpid())


def _replay(result: Result, cfg: DistillConfig, report: ProgressFn) -> None:
    for entry in result.extra.get("history", []):
        report({**entry, "run": run_label(cfg), "role": result.extra["role"], "temperature": cfg.temperature,
                "alpha": cfg.alpha, **({"cached": True} if result.extra.get("cached") else {})})


def _check_loadable_by_name(dataset: Dataset) -> None:
    """A cluster's workers load the dataset by its name: refuse one that was changed here."""
    from compression.data import load_dataset
    from compression.distillation.teacher_cache import dataset_fingerprint
    named = load_dataset(dataset.name)
    if named is not dataset and ((len(named.val), len(named.test)) != (len(dataset.val), len(dataset.test))
                                 or dataset_fingerprint(named) != dataset_fingerprint(dataset)):
        raise CompressionError(f"dataset {dataset.name!r} was changed in this process ({len(dataset.train):,} "
                               f"training images); a cluster's workers load it by name: run in-process")


def stored_run_id(store, result: Result) -> int | None:
    """The id of a stored run with the same model, dataset, device and config (a cached
    hard-label student is stored once, even when the user hid it), else None. `store`: a
    compression.store.RunStore."""
    config = json.loads(json.dumps(result.config, sort_keys=True, default=str))
    for row in store.runs(model=result.model, dataset=result.dataset, method=result.method, include_hidden=True):
        runtime = (row.get("extra") or {}).get("runtime", "eager")  # its latency timed on the same runtime
        if row["config"] == config and row["device"] == result.device and runtime == result.extra.get("runtime", "eager"):
            return int(row["id"])
    return None
