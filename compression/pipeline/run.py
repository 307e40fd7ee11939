"""Running a pipeline: each step is a registered method applied to the previous step's model,
measured and kept as a real artifact (compression.artifact's container: the header names the
model reference and its builder, then the payload: dense state_dict, sparse container or packed
quantized file). `load_artifact(bytes)` rebuilds a runnable model from the file alone."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn as nn

from compression import CompressionError
from compression.data import Dataset
from compression.honesty import merge_simulated
from compression.methods import LATENCY_KEYS, Context, check_applicable, measure_compressed, with_timed_baseline
from compression.metrics import Metrics, Result
from compression.pipeline.spec import Step, check_composition, method_of, spec_of, step_kind, step_spec
from compression.training import ProgressFn, StopFn


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CompressionError(f"{what} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


@dataclass(frozen=True)
class PipelineConfig:
    steps: tuple[Step, ...]
    seed: int = 0
    subset: int | None = None      # train on the first N images of each step's split (tests, demos)
    monitor_images: int = 2000     # validation images for the live accuracy after each epoch

    def __post_init__(self):
        if isinstance(self.steps, (str, bytes)) or not isinstance(self.steps, (list, tuple)):
            raise CompressionError(f"pipeline steps {self.steps!r} must be a list of step configs")
        object.__setattr__(self, "steps", tuple(self.steps))
        for s in self.steps:
            method_of(s)  # refuses anything that is not a registered method's config
        check_composition(self.steps)
        _int(self.seed, "seed", 0, 2 ** 31 - 1)
        if self.subset is not None:
            _int(self.subset, "training subset", 1, 10 ** 7)
        _int(self.monitor_images, "monitor images", 1, 10 ** 6)

    @property
    def spec(self) -> str:
        return spec_of(self.steps)


@dataclass
class StepOutcome:
    index: int                      # 1-based
    step: Step
    result: Result
    model: nn.Module
    artifact: bytes                 # size_bytes == len(artifact)
    history: list[dict] = field(default_factory=list)


def _resolved(name: Any, dataset: Dataset, device: torch.device, model: nn.Module | None):
    from compression.refs import Resolved, resolve, with_model
    resolved = name if isinstance(name, Resolved) else resolve(name, dataset, device=device)
    if model is not None and model is not resolved.model:
        resolved = with_model(resolved, model)
    return resolved


def run_pipeline(name: Any, dataset: Dataset, cfg: PipelineConfig, *, device: torch.device | str = "cpu",
                 limit: int | None = None, model: nn.Module | None = None,
                 progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                 runtime: str | None = None) -> Iterator[StepOutcome]:
    """Apply the steps to model reference `name` in order, yielding one measured StepOutcome per
    finished step. Stop ends it after the finished steps (a step interrupted midway is dropped).

    progress gets {"step", "steps"} over the whole pipeline's units (pruning cycles, epochs, the
    quantization, and one unit per step for measuring its result: evaluation, timing, the int8
    kernel), plus "stage" (1-based step index), "stages", "stage_step", "stage_steps" and
    "seconds_left": the time the steps done so far say is left (their mean duration for each step
    not finished), None before the first step is done or once the current step outlasts that mean."""
    from compression.refs import baseline as baseline_of
    device = torch.device(device)
    resolved = _resolved(name, dataset, device, model)
    check_composition(cfg.steps, resolved.model)
    baseline = baseline_of(resolved, device, limit=limit)
    stop = should_stop or (lambda: False)
    work = [method_of(s).units(s) for s in cfg.steps]  # units of applying each step
    units = [w + 1 for w in work]                        # + measuring its result
    total, before = sum(units), 0
    done_s: list[float] = []                             # how long each finished step took
    clock = {"step": time.perf_counter()}

    def left(i: int) -> float | None:
        if not done_s:
            return None
        mean = sum(done_s) / len(done_s)
        current = mean - (time.perf_counter() - clock["step"])
        return None if current < 0 else round(current + mean * (len(cfg.steps) - i), 1)

    def emit(i: int, k: float, extra: dict) -> None:
        if progress is not None:
            progress({**extra, "step": before + k, "steps": total, "stage": i, "stages": len(cfg.steps),
                      "stage_label": step_spec(cfg.steps[i - 1]), "stage_step": k, "stage_steps": units[i - 1],
                      "seconds_left": left(i)})
    current, state = resolved.model, {}
    architecture = resolved.architecture  # a step that changes the layers (architecture:...) gives its own
    simulated_so_far: list[str] = []
    for i, step in enumerate(cfg.steps, start=1):
        if stop():
            return
        seen = {"n": 0}
        clock["step"] = time.perf_counter()

        def report(entry: dict, i=i) -> None:
            seen["n"] += 1
            share = _share(entry)  # the step's own count (epoch k of n, cycle k of n), else entries seen
            k = round(work[i - 1] * share, 3) if share is not None else min(seen["n"], work[i - 1])
            emit(i, min(k, work[i - 1]), {k_: v for k_, v in entry.items() if k_ not in ("step", "steps")})
        ctx = Context(resolved, device, limit, report, stop, state=state, seed=cfg.seed, subset=cfg.subset,
                      monitor_images=cfg.monitor_images, options={"runtime": runtime} if runtime else {})
        run_step = dataclasses.replace(step, seed=cfg.seed) if cfg.seed and hasattr(step, "seed") else step
        check_applicable(method_of(step), current, resolved.name)  # the method's own refusal, in one line
        with torch.random.fork_rng(devices=[]):  # dropout draws seeded per step; the caller's RNG untouched
            torch.manual_seed(cfg.seed + i)
            out = method_of(step).apply(current, run_step, ctx)
        if out.stopped:
            return
        emit(i, work[i - 1], {"phase": f"measuring step {i} of {len(cfg.steps)}: accuracy, size, latency"})
        architecture = out.architecture or architecture  # later steps' files rebuild the changed layers
        metrics, artifact, finish_extra = measure_compressed(out, ctx, architecture, baseline)
        done_s.append(time.perf_counter() - clock["step"])
        before += units[i - 1]
        clock["step"] = time.perf_counter()  # the next step starts now
        if progress is not None:
            progress({"phase": f"step {i} of {len(cfg.steps)} done", "step": before, "steps": total, "stage": i,
                      "stages": len(cfg.steps), "stage_label": step_spec(step), "stage_step": units[i - 1],
                      "stage_steps": units[i - 1], "seconds_left": left(i + 1) if i < len(cfg.steps) else 0.0})
        simulated_so_far = merge_simulated(simulated_so_far, finish_extra["simulated_metrics"])
        finish_extra["simulated_metrics"] = simulated_so_far  # a pipeline's list: the union of its steps'
        yield _outcome(i, step, out, metrics, artifact, finish_extra, cfg, resolved, device, baseline)
        current, state = out.model, out.state


def _outcome(i, step, out, metrics: Metrics, artifact: bytes, finish_extra: dict, cfg: PipelineConfig,
             resolved, device: torch.device, baseline: Metrics) -> StepOutcome:
    from compression.pruning import sparsity
    extra = {
        "pipeline": cfg.spec, "step": i, "steps": len(cfg.steps), "step_spec": step_spec(step),
        "final": i == len(cfg.steps), "artifact_format": out.kind, "sparsity": round(sparsity(out.model), 6),
        "classes": resolved.dataset.num_classes,
        "compression_ratio": round(baseline.size_bytes / metrics.size_bytes, 3),
        "gain": finish_extra.get("gain", out.extra.get("gain", "")),
        "simulated_metrics": finish_extra["simulated_metrics"], "model_source": resolved.provenance,
        **{k: finish_extra[k] for k in LATENCY_KEYS if k in finish_extra},  # runtime, spreads, the baseline re-timed
        "history": [{k: v for k, v in h.items() if isinstance(v, (int, float, str, bool)) or v is None}
                    for h in out.history],
    }
    if out.kind == "quantized":
        extra["coverage"] = out.extra.get("coverage")
        extra["kernel"] = finish_extra.get("kernel")
    config = {"pipeline": cfg.spec, "step": i, "steps": len(cfg.steps), "step_spec": step_spec(step),
              "step_kind": step_kind(step), **{f"step_{k}": v for k, v in _fields(step).items()},
              "seed": cfg.seed, "subset": cfg.subset}
    result = Result(model=resolved.name, dataset=resolved.dataset.name, method="pipeline", config=config,
                    device=device.type, metrics=metrics, baseline=with_timed_baseline(baseline, finish_extra),
                    extra=extra, predictions=out.predictions)
    return StepOutcome(index=i, step=step, result=result, model=out.model, artifact=artifact, history=out.history)


def _share(entry: dict) -> float | None:
    """The share of a step done that one of its progress entries says (its own units k of n, else
    epoch k of n), or None."""
    for num, den in (("step", "steps"), ("epoch", "epochs"), ("done", "total")):
        if isinstance(entry.get(den), (int, float)) and entry[den] and isinstance(entry.get(num), (int, float)):
            return max(0.0, min(1.0, float(entry[num]) / float(entry[den])))
    return None


def _fields(step: Step) -> dict[str, Any]:
    to_dict = getattr(step, "to_dict", None)
    return to_dict() if callable(to_dict) else dataclasses.asdict(step)


def artifact_dir() -> Path:
    from compression.paths import home_dir
    return home_dir() / "artifacts" / "pipelines"


def run_and_store(name: Any, dataset: Dataset, cfg: PipelineConfig, store, *, device: torch.device | str = "cpu",
                  limit: int | None = None, model: nn.Module | None = None, progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None, out_dir: Path | None = None,
                  runtime: str | None = None) -> Iterator[tuple[StepOutcome, int]]:
    """run_pipeline, storing each step as a run whose parent is the previous step's run and whose
    artifact is written under the data folder, all with one group id "pipeline:<id>" (the <id> is
    in the artifact files' names too). Yields (outcome, run id). `runtime`: where each step's latency
    is timed (None: the process default)."""
    import uuid

    from compression.run_labels import new_group_id
    out_dir = Path(out_dir) if out_dir is not None else artifact_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    tag, parent = uuid.uuid4().hex[:8], None
    group = new_group_id("pipeline", tag)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(getattr(name, "name", name)).split("?")[0])[:48]
    for outcome in run_pipeline(name, dataset, cfg, device=device, limit=limit, model=model,
                                progress=progress, should_stop=should_stop, runtime=runtime):
        path = out_dir / f"{safe}-{tag}-step{outcome.index}.cxp"
        path.write_bytes(outcome.artifact)
        outcome.result.extra["artifact"] = str(path)
        if parent is None:  # a pipeline on run:<id> continues that run
            parent = outcome.result.extra.get("model_source", {}).get("parent_id")
        parent = store.add(outcome.result, parent_id=parent, artifact_path=str(path), group=group)
        outcome.result.extra["run_id"] = parent
        yield outcome, parent
