"""The method registry: one contract for every compression method, and one path that runs it.

A family registers each method once:

    register_method("prune", PruneStep, apply_prune, positional=("method", "ratio"), knobs={...})

where `apply(model, config, context) -> Compressed` returns the new model and what its file holds
(the model it was given is never modified). `run_method(reference, dataset, method, config)`
resolves the model reference, measures the baseline and the result, builds the `Result`, writes
the artifact (compression.artifact's container) and stores the run: for every family alike. Pages,
CLI commands, pipeline steps and sweep/search points all call it.

A method's knobs are its config dataclass's fields (type, default) plus what the registration says
of them (choices, range, help); `knob_schema(name)` lists them and `parse_spec("prune:structured:
0.5:epochs=2")` builds a config from text, so every knob a page has is reachable from the CLI and
from a pipeline step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn

from compression import CompressionError
from compression.knobs import make_config, parse_spec, spec_of

ProgressFn = Callable[[dict], None]
StopFn = Callable[[], bool]


@dataclass
class Compressed:
    """What a method's `apply` returns."""
    model: nn.Module                     # the new model, as it is measured
    payload: bytes | None = None         # the file's payload; None: the dense state_dict of `model`
    kind: str = "dense"                  # payload kind: dense | sparse | quantized (compression.artifact)
    simulated: bool = False              # the stored or executed model does not realize the gain
    simulated_metrics: tuple[str, ...] | None = None  # which of size_bytes, macs, latency_ms are simulated
    #                                      when `simulated` (None: all three); [] once finish realizes them
    history: list[dict] = field(default_factory=list)   # training curve entries (JSON-able)
    extra: dict[str, Any] = field(default_factory=dict)  # per-layer tables, words about the gain, ...
    macs: float | None = None            # measured elsewhere (early exit: the mean over the test set)
    architecture: dict[str, Any] | None = None  # rebuild recipe when it is not the reference's
    stopped: bool = False                # Stop was pressed: the partial model is still a result
    finish: Callable[[Any], tuple[Any, dict]] | None = None  # (metrics) -> (metrics, extra): e.g. the
    #                                      int8 kernel's measured latency replacing the simulated one
    state: dict[str, Any] = field(default_factory=dict)  # carried to the next pipeline step
    handle: Any = None                   # the family's own object (e.g. a QuantizedModel), for callers
    metrics: Any = None                  # measured by the method itself (early exit: from its exit table);
    #                                      size_bytes is still set from the artifact written
    baseline: Any = None                 # the method's own baseline (early exit: the same model run to the end)
    baseline_model: nn.Module | None = None  # the model `baseline` describes, timed beside the result
    #                                      (width: the full-width network); None: the reference's own
    predictions: Any = None              # per-image predictions on the test images (set when measured)
    config: dict[str, Any] = field(default_factory=dict)  # stored config entries the config alone cannot
    #                                      say (a new student's teachers: the model it was given first)


@dataclass
class Context:
    """Everything `apply` may use besides the model and the config."""
    resolved: Any                        # compression.refs.Resolved: reference, dataset, original model
    device: torch.device
    limit: int | None = None             # test images for accuracy
    progress: ProgressFn = lambda entry: None
    should_stop: StopFn = lambda: False
    state: dict[str, Any] = field(default_factory=dict)  # from the previous pipeline step ({} standalone)
    seed: int = 0                        # training seed (fine-tuning shuffles, dropout)
    subset: int | None = None            # train on the first N images of the split (tests, demos)
    monitor_images: int = 2000           # validation images for the live accuracy after each epoch
    options: dict[str, Any] = field(default_factory=dict)  # run options that are not knobs (kernel=False)

    @property
    def dataset(self):
        return self.resolved.dataset

    @property
    def original(self) -> nn.Module:
        """The reference's own model (untouched): the teacher of a distillation step."""
        return self.resolved.model


@dataclass(frozen=True)
class Method:
    name: str
    config_type: type
    apply: Callable[[nn.Module, Any, Context], Compressed]
    help: str = ""
    positional: tuple[str, ...] = ()     # spec fields given without key: prune:<method>:<ratio>
    knobs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # choices/min/max/help per field
    refuses: Callable[[nn.Module], str | None] | None = None  # why a model cannot take this method
    units: Callable[[Any], int] = lambda config: 1              # progress units (epochs, cycles)
    family: str = ""                     # the Result's `method` (prune, quantize, ...); default: name
    spec: Callable[[Any], str] | None = None                    # config -> text (default: generic)


_REGISTRY: dict[str, Method] = {}
_BUILTINS = ("compression.pruning.method", "compression.distillation.method", "compression.quantization.method",
             "compression.architecture.method", "compression.dynamic.method", "compression.finetune")


def register_method(name: str, config_type: type, apply: Callable[[nn.Module, Any, Context], Compressed], *,
                    help: str = "", positional: tuple[str, ...] = (), knobs: Mapping[str, Mapping] | None = None,
                    refuses: Callable[[nn.Module], str | None] | None = None,
                    units: Callable[[Any], int] | None = None, family: str | None = None,
                    spec: Callable[[Any], str] | None = None) -> Method:
    """Add a method; its config must be a dataclass (frozen, validated in __post_init__)."""
    if not dataclasses.is_dataclass(config_type):
        raise CompressionError(f"method {name!r}: config {config_type!r} is not a dataclass")
    fields_ = {f.name for f in dataclasses.fields(config_type)}
    unknown = [k for k in (*positional, *(knobs or {})) if k not in fields_]
    if unknown:
        raise CompressionError(f"method {name!r}: {', '.join(unknown)} not fields of {config_type.__name__}")
    method = Method(name, config_type, apply, help, tuple(positional), dict(knobs or {}), refuses,
                    units or (lambda config: 1), family or name, spec)
    _REGISTRY[name] = method
    return method


def _load_builtins() -> None:
    import importlib
    for module in _BUILTINS:
        importlib.import_module(module)


def method_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_method(name: str) -> Method:
    _load_builtins()
    if name not in _REGISTRY:
        raise CompressionError(f"unknown method {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def config_dict(config: Any) -> dict[str, Any]:
    to_dict = getattr(config, "to_dict", None)
    return to_dict() if callable(to_dict) else dataclasses.asdict(config)


# ---------------------------------------------------------------------------------------------
# one path: resolve, apply, measure, write, store

def check_applicable(method: Method, model: nn.Module, reference: str) -> None:
    problem = method.refuses(model) if method.refuses else None
    if problem:
        raise CompressionError(f"{method.name} cannot be applied to {reference}: {problem}")


def measure_compressed(out: Compressed, ctx: Context, architecture: dict[str, Any], baseline: Any = None, *,
                       logits: torch.Tensor | None = None):
    """(metrics, artifact bytes, extra) of a method's output, measured on the bytes written. Latency
    is timed at batch 1 interleaved with the baseline's model on the run's runtime (ctx.options
    "runtime", else compression.runtimes.default_runtime()); extra gets LATENCY_KEYS. `baseline`
    (its Metrics) gives the MACs the re-time rule compares with (compression.timing.implausible).
    `logits`: its test logits, when the caller has computed them already (compression.progressive)."""
    from compression.artifact import write_artifact
    from compression.metrics import measure
    from compression.models import state_dict_bytes
    payload = out.payload if out.payload is not None else state_dict_bytes(out.model)
    artifact = write_artifact(payload, out.kind, out.architecture or architecture)
    if out.metrics is not None:
        metrics = dataclasses.replace(out.metrics, size_bytes=len(artifact))
    else:
        kept: list = []
        metrics = measure(out.model, ctx.dataset, device=ctx.device, artifact=artifact, simulated=out.simulated,
                          limit=ctx.limit, macs=out.macs, predictions=kept, latency=False,  # timed below
                          logits=logits)
        out.predictions = kept[0]
    extra: dict[str, Any] = {}
    if out.finish is not None:
        metrics, extra = out.finish(metrics)
    metrics, timed = _time_latency(out, ctx, metrics, extra, baseline)
    extra.update(timed)
    extra["simulated_metrics"] = simulated_list(out, metrics)
    return metrics, artifact, extra


LATENCY_KEYS = ("runtime", "runtime_fallback", "latency_spread_ms", "baseline_latency_ms",
                "baseline_latency_spread_ms", "latency_retimed", "latency_other_cores", "latency_busy")


def _time_latency(out: Compressed, ctx: Context, metrics, extra: dict, baseline: Any) -> tuple[Any, dict]:
    """(metrics with the interleaved latency, the LATENCY_KEYS entries): see compression.runtimes.time_result."""
    from compression.runtimes import check_runtime, default_runtime, time_result
    runtime = check_runtime(ctx.options.get("runtime") or default_runtime())
    if out.metrics is not None:  # the method timed itself against its baseline (early exit, image by image)
        timed = {k: out.extra[k] for k in LATENCY_KEYS if k in out.extra}
        timed["runtime"] = "eager"
        if runtime != "eager":
            timed["runtime_fallback"] = ("this method times itself (early exit decides in Python between blocks "
                                         "where each image leaves): timed in PyTorch eager")
        return metrics, timed
    runner = extra.pop("_latency_runner", None)
    timed = time_result(out.model, out.baseline_model or ctx.original, ctx.dataset.input_shape, ctx.device,
                        runtime=runtime, result_macs=metrics.macs, kernel=runner,
                        baseline_macs=getattr(out.baseline or baseline, "macs", None))
    metrics = dataclasses.replace(metrics, latency_ms=timed.pop("latency_ms"))
    if isinstance(extra.get("kernel"), dict) and extra["kernel"].get("latency_ms") is not None:
        extra["kernel"]["latency_ms"] = metrics.latency_ms  # the kernel's batch-1 latency, timed side by side
    return metrics, timed


def with_timed_baseline(base, timed: Mapping[str, Any]):
    """The baseline Metrics a result is stored with: its latency is the baseline timed beside the
    result on the result's runtime (`baseline_latency_ms`), never the shared baseline timing (one
    number per model, possibly taken while the machine was busy), so that every view that reads
    the stored pair gives the ratio the card gave."""
    if base is None or timed.get("baseline_latency_ms") is None:
        return base
    return dataclasses.replace(base, latency_ms=float(timed["baseline_latency_ms"]))


def simulated_list(out: Compressed, metrics) -> list[str]:
    """The measured result's simulated_metrics (compression.honesty): none when the metrics say
    nothing is simulated (e.g. an int8 kernel's latency replaced the simulated one), else what the
    method listed, or all three when it did not say."""
    from compression.honesty import SIMULATABLE
    if not metrics.simulated:
        return []
    listed = SIMULATABLE if out.simulated_metrics is None else out.simulated_metrics
    return [k for k in SIMULATABLE if k in listed]


def artifact_dir() -> Path:
    """Where run artifacts are written: $COMPRESSION_ARTIFACTS (a folder every app server of a team
    mounts, beside a shared PostgreSQL store), else artifacts/ in the data folder."""
    import os

    from compression.paths import home_dir
    shared = os.environ.get("COMPRESSION_ARTIFACTS", "").strip()
    return Path(shared).expanduser() if shared else home_dir() / "artifacts"


def apply_method(method: Method, model: nn.Module, config: Any, ctx: Context) -> Compressed:
    """`method.apply` under a fixed seed (dropout, shuffles), the caller's RNG untouched."""
    check_applicable(method, model, ctx.resolved.name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(getattr(config, "seed", 0) or 0)
        return method.apply(model, config, ctx)


@dataclass
class Run:
    """One method applied and measured (not stored yet)."""
    result: Any                          # compression.metrics.Result
    model: nn.Module
    artifact: bytes                      # the container file: size_bytes == len(artifact)
    compressed: Compressed


def _config_for(m: Method, method: str, config: Any) -> Any:
    if config is None or isinstance(config, Mapping):
        return make_config(method, config or {})
    if isinstance(config, str):
        return parse_spec(f"{method}:{config}" if config else method)[1]
    if not isinstance(config, m.config_type):
        raise CompressionError(f"{method}: config must be a {m.config_type.__name__}, got {type(config).__name__}")
    return config


def compress(reference: Any, dataset: Any, method: str, config: Any = None, *,
             device: torch.device | str | None = None, limit: int | None = None,
             progress: ProgressFn | None = None, should_stop: StopFn | None = None,
             model: nn.Module | None = None, baseline: Any = None, seed: int = 0, subset: int | None = None,
             monitor_images: int = 2000, options: Mapping[str, Any] | None = None) -> Run:
    """Resolve, apply, measure: the Result with its model and artifact bytes, nothing stored.

    `reference` is text (any kind) or a resolved reference; `model` the reference's model already
    loaded (a cached one: it is not modified); `config` the method's config, a dict of knob values,
    a spec's tail ("structured:0.5:epochs=2") or None for the defaults."""
    from compression.device import get_device
    device = torch.device(device) if device is not None else get_device()
    applied = apply_to(reference, dataset, method, config, device=device, limit=limit, progress=progress,
                       should_stop=should_stop, model=model, seed=seed, subset=subset,
                       monitor_images=monitor_images, options=options)
    return finish_run(applied, baseline=baseline)


@dataclass
class Applied:
    """A method applied, not measured yet (compress's first half; compression.progressive measures
    a first share of the test images from it before finish_run measures the rest)."""
    method: Method
    config: Any
    ctx: Context
    out: Compressed


def apply_to(reference: Any, dataset: Any, method: str, config: Any = None, *, device: torch.device,
             limit: int | None = None, progress: ProgressFn | None = None, should_stop: StopFn | None = None,
             model: nn.Module | None = None, seed: int = 0, subset: int | None = None, monitor_images: int = 2000,
             options: Mapping[str, Any] | None = None) -> Applied:
    """Resolve the reference and apply the method (see `compress` for the arguments)."""
    from compression.refs import Resolved, resolve, with_model
    resolved = reference if isinstance(reference, Resolved) else resolve(reference, dataset, device=device)
    if model is not None and model is not resolved.model:
        resolved = with_model(resolved, model)
    m = get_method(method)
    config = _config_for(m, method, config)
    ctx = Context(resolved, device, limit, progress or (lambda entry: None), should_stop or (lambda: False),
                  seed=seed, subset=subset, monitor_images=monitor_images, options=dict(options or {}))
    return Applied(m, config, ctx, apply_method(m, resolved.model, config, ctx))


def finish_run(applied: Applied, *, baseline: Any = None, logits: torch.Tensor | None = None) -> Run:
    """Measure what `apply_to` made, write its artifact, build the Result (compress's second half).
    `logits`: the test images' logits when the caller already has them (compression.measure)."""
    from compression.metrics import Result
    from compression.refs import baseline as baseline_of
    m, config, ctx, out = applied.method, applied.config, applied.ctx, applied.out
    resolved, device, limit = ctx.resolved, ctx.device, ctx.limit
    base = out.baseline or baseline or baseline_of(resolved, device, limit=limit)
    metrics, artifact, finish_extra = measure_compressed(out, ctx, resolved.architecture, base, logits=logits)
    if out.metrics is not None and out.baseline is not None and out.baseline.size_bytes == out.metrics.size_bytes:
        base = dataclasses.replace(base, size_bytes=metrics.size_bytes)  # the same file, run another way
    base = with_timed_baseline(base, finish_extra)
    extra = {**out.extra, **finish_extra, "spec": spec_of(m.name, config), "stopped": out.stopped,
             "classes": resolved.dataset.num_classes,  # chance level = 1 / classes (compression.honesty)
             "compression_ratio": round(base.size_bytes / metrics.size_bytes, 3),
             "model_source": resolved.provenance,
             "history": [{k: v for k, v in h.items() if isinstance(v, (int, float, str, bool)) or v is None}
                         for h in out.history]}
    result = Result(model=resolved.name, dataset=resolved.dataset.name, method=m.family,
                    config={**config_dict(config), **out.config}, device=device.type, metrics=metrics, baseline=base, extra=extra,
                    predictions=out.predictions)
    return Run(result, out.model, artifact, out)


def run_method(reference: Any, dataset: Any, method: str, config: Any = None, *,
               device: torch.device | str | None = None, limit: int | None = None,
               progress: ProgressFn | None = None, should_stop: StopFn | None = None,
               store: Any = True, parent_id: int | None = None, out_dir: Path | None = None,
               group: str | None = None, name: str | None = None, tags: Any = None, starred: bool = False,
               **kwargs):
    """Run one method on one model reference and return its measured `Result`, stored (unless
    store=False; `store` may be a RunStore) with its artifact file. The one path every page,
    command, pipeline step and sweep point takes; see `compress` for the arguments.

    The Result's extra holds `run_id` and `artifact` (the file's path) when stored; `group` is the
    group id (compression.run_labels.new_group_id) of the sweep or search it belongs to; `name`, `tags`
    and `starred` what the user keeps about it (see save_run)."""
    run = compress(reference, dataset, method, config, device=device, limit=limit, progress=progress,
                   should_stop=should_stop, **kwargs)
    if store:
        save_run(run.result, run.artifact, store=store, parent_id=parent_id, out_dir=out_dir, group=group,
                 name=name, tags=tags, starred=starred)
    return run.result


def save_run(result, artifact: bytes, *, store: Any = True, parent_id: int | None = None,
             out_dir: Path | None = None, group: str | None = None, name: str | None = None,
             tags: Any = None, starred: bool = False) -> int:
    """Write the artifact under the data folder and add the run; returns its id (also put in
    result.extra["run_id"], the file's path in result.extra["artifact"]). `group`: the group id of
    the sweep / search / pipeline that made it (compression.run_labels.new_group_id); `name`, `tags`,
    `starred`: what the user keeps about it (checked as RunStore.update checks them)."""
    import uuid
    from compression.run_labels import check_name, check_tags
    from compression.store import RunStore
    if name is not None:
        check_name(name)  # refused before anything is written
    if tags:
        check_tags(tags)
    store = RunStore() if store is True else store
    if parent_id is None:  # a run continued from a stored one (run:<id>) is its child
        parent_id = (result.extra.get("model_source") or {}).get("parent_id")
    folder = Path(out_dir) if out_dir is not None else artifact_dir() / result.method
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in result.model)[:48]
    path = folder / f"{safe}-{uuid.uuid4().hex[:10]}.cxp"
    path.write_bytes(artifact)
    result.extra["artifact"] = str(path)
    try:
        run_id = store.add(result, parent_id=parent_id, artifact_path=str(path), group=group, name=name,
                           tags=tags, starred=starred)
    except Exception:
        path.unlink(missing_ok=True)  # a store that refused the run leaves no orphan file behind
        result.extra.pop("artifact", None)
        raise
    result.extra["run_id"] = run_id
    return run_id
