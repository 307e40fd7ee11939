"""The whole run: convert a zoo model, measure, recover, measure again: one Result per stage."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Iterator

import torch
import torch.nn as nn

from compression.architecture.conversion import ArchitectureConfig, convert, layer_table
from compression.architecture.recovery import RecoveryConfig, _new_layers, recover
from compression.data import Dataset
from compression.training import ProgressFn, StopFn

if TYPE_CHECKING:
    from compression.metrics import Result

def _result(name: str, model: nn.Module, original: nn.Module, dataset: Dataset, device: torch.device,
            limit: int | None, config: dict[str, Any], runtime: str | None = None, **extra: Any) -> "Result":
    """Measured through the registry's one path (methods.measure_compressed): the artifact is the
    container whose header rebuilds the converted network; any model reference."""
    from compression.architecture.method import structure
    from compression.methods import Compressed, Context, measure_compressed, with_timed_baseline
    from compression.metrics import Result
    from compression.refs import baseline, resolve

    resolved = resolve(name, dataset, device=device)
    architecture = {"name": resolved.name, "builder": "compression.architecture.method:converted",
                    "kwargs": {"base": resolved.architecture, **structure(model)}}
    out = Compressed(model, architecture=architecture)
    options = {"runtime": runtime} if runtime else {}  # where latency is timed (None: the process default)
    metrics, artifact, timed = measure_compressed(out, Context(resolved, device, limit, options=options),
                                                  resolved.architecture)
    base = with_timed_baseline(baseline(resolved, device, limit=limit), timed)  # the same test images
    return Result(model=resolved.name, dataset=dataset.name, method="architecture", config=config,
                  device=device.type, metrics=metrics, baseline=base,
                  extra={"layers": layer_table(original, model, dataset.input_shape, device),
                         "param_ratio": metrics.params / base.params,
                         "mac_ratio": metrics.macs / base.macs, "model_source": resolved.provenance, **timed,
                         **extra}, predictions=out.predictions,
                  artifact=artifact)


def converted_result(name: str, cfg: ArchitectureConfig, *, dataset: Dataset,
                     device: torch.device | str = "cpu", limit: int | None = None,
                     model: nn.Module | None = None, runtime: str | None = None,
                     converted: nn.Module | None = None) -> tuple[nn.Module, "Result"]:
    """Convert the zoo model `name` (or `model`, the caller's copy of it, never modified) and
    measure it before any training: (converted model, Result); latency timed on `runtime`
    (compression.runtimes; None: the process default). `converted`: convert(model, cfg) already
    made by the caller (a staged page shows it first), measured instead of converting again."""
    from compression.refs import resolve

    device = torch.device(device)
    original = model if model is not None else resolve(name, dataset, device=device).model
    converted = (converted if converted is not None else convert(original, cfg)).to(device)
    config = {**cfg.to_dict(), "recover": None, "recover_epochs": 0}
    return converted, _result(name, converted, original, dataset, device, limit, config, runtime,
                              stage="converted")


def recovered_result(name: str, converted: nn.Module, cfg: ArchitectureConfig, recovery: RecoveryConfig, *,
                     original: nn.Module, dataset: Dataset, device: torch.device | str = "cpu",
                     limit: int | None = None, progress: ProgressFn | None = None,
                     should_stop: StopFn | None = None, runtime: str | None = None) -> "Result | None":
    """Recover a converted model and measure it; None when stopped before a stage was complete.
    A run stopped later is measured as it stands (`stopped: true`, the epochs done in its config)."""
    device = torch.device(device)
    start = time.perf_counter()
    trained, matched = recover(converted, dataset, recovery, teacher=original, device=device,
                               progress=progress, should_stop=should_stop)
    matched_all = recovery.match_steps > 0 and len(matched) == len(_new_layers(converted))
    if not trained.history and not matched_all:
        return None  # stopped before any stage was complete
    config = {**cfg.to_dict(), "recover": recovery.method, "recover_epochs": len(trained.history),
              **{f"recover_{k}": v for k, v in asdict(recovery).items() if k not in ("method", "epochs")}}
    return _result(name, trained.model, original, dataset, device, limit, config, runtime, stage="recovered",
                   history=trained.history, matched=matched, stopped=trained.stopped,
                   train_seconds=round(time.perf_counter() - start, 1))


def architecture_results(name: str, cfg: ArchitectureConfig, recovery: RecoveryConfig | None = None, *,
                         dataset: Dataset, device: torch.device | str = "cpu", limit: int | None = None,
                         progress: ProgressFn | None = None,
                         should_stop: StopFn | None = None) -> Iterator["Result"]:
    """The converted model's Result (before any training), then with `recovery` the recovered one."""
    from compression.refs import resolve

    original = resolve(name, dataset, device=device).model
    converted, result = converted_result(name, cfg, dataset=dataset, device=device, limit=limit, model=original)
    yield result
    if recovery is not None:
        recovered = recovered_result(name, converted, cfg, recovery, original=original, dataset=dataset,
                                     device=device, limit=limit, progress=progress, should_stop=should_stop)
        if recovered is not None:
            yield recovered
