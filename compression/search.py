"""Multi-objective search over the registry's knobs (Optuna): the Pareto front of accuracy against
one cost (stored bytes, MACs or measured latency), optionally under a hard budget on that cost.

A trial is a pruning, quantization or prune-then-quantize configuration drawn from the knobs'
ranges (`suggest`), or a Deep Compression pipeline (Han et al. 2016: unstructured pruning ->
fine-tuning -> weight clustering, Huffman or not -> centroid fine-tuning) over its own knobs, run as a sweep job (compression.sweep: in-process or on a Dask cluster),
measured like any run and stored. Today's budget grid is enqueued as the first trials, so the
search is never worse than the grid at the same number of trials. The study lives in Optuna's RDB
storage (SQLite under the app's data folder), so an interrupted search continues where it stopped.
TPE by default; NSGA-II as an option. The budget is a constraint (Optuna's trial constraints): a
trial over budget is measured and kept but ranked after every one that fits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from compression import CompressionError
from compression.pareto import COSTS, pareto_frontier

OBJECTIVES = ("size_bytes", "macs", "latency_ms")
SAMPLERS = ("tpe", "nsga2")
SEARCH_METHODS = ("prune", "quantize", "deep-compression")
FAMILIES = ("prune", "quantize", "prune+quantize", "deep-compression")
MAX_TRIALS = 10_000


@dataclass(frozen=True)
class SearchConfig:
    objective: str = "size_bytes"          # the cost minimized beside accuracy
    budget: float | None = None            # hard limit on that cost (a constraint), or None
    methods: tuple[str, ...] = ("prune", "quantize")  # both: prune -> quantize too; or deep-compression
    trials: int = 24                       # complete trials the study should have
    sampler: str = "tpe"
    seed: int = 0
    finetune_epochs: int = 0               # after pruning (0: one-shot)
    subset: int | None = None              # fine-tune on the first N training images
    grid_first: bool = True                # enqueue the budget grid as the first trials

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise CompressionError(f"objective {self.objective!r} unknown; choose one of {', '.join(OBJECTIVES)}")
        if self.budget is not None and (isinstance(self.budget, bool) or not isinstance(self.budget, (int, float))
                                        or not self.budget > 0):
            raise CompressionError(f"budget {self.budget!r} out of range: a number > 0 ({COSTS[self.objective][1]})")
        if isinstance(self.methods, str) or not isinstance(self.methods, (list, tuple)):
            raise CompressionError(f"search methods {self.methods!r} must be a list of {', '.join(SEARCH_METHODS)}")
        bad = [m for m in self.methods if m not in SEARCH_METHODS]
        if bad or not self.methods:
            raise CompressionError(f"search method {(bad or [self.methods])[0]!r} not allowed; choose from "
                                   f"{', '.join(SEARCH_METHODS)}")
        object.__setattr__(self, "methods", tuple(dict.fromkeys(self.methods)))
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or not 1 <= self.trials <= MAX_TRIALS:
            raise CompressionError(f"trials {self.trials!r} out of range: an integer in [1, {MAX_TRIALS}]")
        if self.sampler not in SAMPLERS:
            raise CompressionError(f"sampler {self.sampler!r} unknown; choose one of {', '.join(SAMPLERS)}")
        if isinstance(self.finetune_epochs, bool) or not isinstance(self.finetune_epochs, int) \
                or not 0 <= self.finetune_epochs <= 10:
            raise CompressionError(f"fine-tuning epochs {self.finetune_epochs!r} out of range: an integer in [0, 10]")

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(f for f in FAMILIES if set(f.split("+")) <= set(self.methods))


# ---------------------------------------------------------------------------------------------
# the search space: knobs -> a pipeline spec

# Deep Compression's knobs (prefixed dc_ in the study): pruning ratio and cycles, fine-tuning epochs,
# cluster bits, Huffman coding, centroid fine-tuning epochs
DC_RANGES = {"ratio": (0.85, 0.97), "steps": (1, 3), "epochs": (1, 4), "bits": (3, 6), "centroid_epochs": (0, 2)}
# first trials: on mlp 0.92 in 3 cycles + 3 epochs, 4 bits measured 43.3x at -0.75 points by hand (2026-12-02)
DC_GRID = ((0.92, 3, 3, 4, True, 1), (0.9, 1, 2, 5, True, 0), (0.93, 2, 3, 3, True, 1), (0.95, 1, 3, 4, False, 1))


def deep_compression_spec(ratio: float, steps: int, epochs: int, bits: int, huffman: bool, centroid_epochs: int) -> str:
    """prune (global magnitude; over several cycles with 1 fine-tuning epoch after each) -> finetune
    -> cluster (+ Huffman) with the zeros kept exact -> centroid fine-tuning, as a pipeline spec."""
    return (f"prune:unstructured:{ratio:.4g}:scope=global" + (f":steps={steps}:epochs=1" if steps > 1 else "")
            + f",finetune:{epochs},quantize:{'cluster-huffman' if huffman else 'cluster'}:{bits}"
            + (f":centroid_epochs={centroid_epochs}" if centroid_epochs else ""))


def _suggest_deep_compression(trial: Any) -> str:
    r = DC_RANGES
    return deep_compression_spec(trial.suggest_float("dc_ratio", *r["ratio"]), trial.suggest_int("dc_steps", *r["steps"]),
                                 trial.suggest_int("dc_epochs", *r["epochs"]), trial.suggest_int("dc_bits", *r["bits"]),
                                 trial.suggest_categorical("dc_huffman", [True, False]),
                                 trial.suggest_int("dc_centroid_epochs", *r["centroid_epochs"]))


def suggest(trial: Any, cfg: SearchConfig) -> str:
    """Draw one configuration (define-by-run: a knob exists only where its family was drawn)."""
    family = trial.suggest_categorical("family", list(cfg.families))
    if family == "deep-compression":
        return _suggest_deep_compression(trial)
    steps = []
    if "prune" in family:
        method = trial.suggest_categorical("prune_method", ["unstructured", "structured"])
        ratio = trial.suggest_float("ratio", 0.05, 0.95)
        scope = trial.suggest_categorical("scope", ["layer", "global"])
        steps.append(f"prune:{method}:{ratio:.4g}:scope={scope}"
                     + (f":epochs={cfg.finetune_epochs}" if cfg.finetune_epochs else ""))
    if "quantize" in family:
        method = trial.suggest_categorical("quant_method", ["uniform", "cluster-huffman"])
        bits = trial.suggest_int("bits", 2, 8)
        steps.append(f"quantize:{method}:{bits}")
    return ",".join(steps)


def grid_params(spec: str) -> dict[str, Any]:
    """The search-space point of a grid spec (so the grid can be enqueued as trials)."""
    from compression.pipeline import parse_steps, step_kind
    steps = parse_steps(spec)
    if [step_kind(s) for s in steps] == ["prune", "finetune", "quantize"]:
        prune, ft, quant = steps
        return {"family": "deep-compression", "dc_ratio": float(prune.ratio), "dc_steps": prune.steps,
                "dc_epochs": ft.epochs, "dc_bits": quant.bits, "dc_huffman": quant.method == "cluster-huffman",
                "dc_centroid_epochs": quant.centroid_epochs}
    params: dict[str, Any] = {}
    for step in steps:
        if step_kind(step) == "prune":
            params.update(prune_method=step.method, ratio=float(step.ratio), scope=step.scope)
        else:
            params.update(quant_method=step.method, bits=int(step.bits))
    params["family"] = "+".join(k for k in ("prune", "quantize") if ("ratio" if k == "prune" else "bits") in params)
    return params


def grid(cfg: SearchConfig) -> list[str]:
    from compression.budget import BudgetConfig, candidates
    methods = tuple(m for m in cfg.methods if m != "deep-compression")
    specs = candidates(BudgetConfig(metric=cfg.objective, methods=methods, finetune_epochs=cfg.finetune_epochs,
                                    subset=cfg.subset)) if methods else []
    return specs + ([deep_compression_spec(*point) for point in DC_GRID] if "deep-compression" in cfg.methods else [])


# ---------------------------------------------------------------------------------------------
# the study

def storage_url() -> str:
    """Where studies are kept: the run store's PostgreSQL database when COMPRESSION_STORE names one
    (Optuna's RDB storage beside the runs, its tables created once under the store's migration
    lock), else search.sqlite in the data folder."""
    from compression.store.optuna import study_storage_url
    return study_storage_url()


def _sampler(cfg: SearchConfig):
    import warnings

    import optuna
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if cfg.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=cfg.seed, population_size=8)
        return optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=8, multivariate=True, group=True)


def open_study(name: str, cfg: SearchConfig, *, storage: str | None = None):
    """Create the study, or load it to continue (its own settings are kept in its attributes)."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage or storage_url(), load_if_exists=True,
                                directions=["maximize", "minimize"], sampler=_sampler(cfg))
    if not study.trials:
        study.set_user_attr("objective", cfg.objective)
        study.set_user_attr("budget", cfg.budget)
        if cfg.grid_first:
            for spec in grid(cfg):
                study.enqueue_trial(grid_params(spec), user_attrs={"grid": spec})
    elif study.user_attrs.get("objective") not in (None, cfg.objective):
        raise CompressionError(f"study {name!r} minimizes {study.user_attrs['objective']}, not {cfg.objective}; "
                               "give another --study name")
    _fail_interrupted(study)
    return study


def _fail_interrupted(study) -> None:
    """Trials left running by a process that was stopped: mark them failed; a grid point goes back
    to the queue (a drawn point is simply drawn again)."""
    import optuna
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        _requeue(study, t)


def _requeue(study, trial) -> None:
    """Enqueue again the grid point `trial` held, if any: Optuna does not rerun a failed enqueued
    trial, so without this an interrupted grid point would never be measured."""
    spec = trial.user_attrs.get("grid")
    if spec:
        study.enqueue_trial(grid_params(spec), user_attrs={"grid": spec})


@dataclass
class SearchOutcome:
    config: SearchConfig
    study: str
    trials: list[dict] = field(default_factory=list)    # this session's measured trials, as rows
    refused: list[tuple[str, str]] = field(default_factory=list)
    stopped: bool = False


def _row(point, number: int, spec: str, cfg: SearchConfig) -> dict[str, Any]:
    d = point.result.result.to_dict()
    cost = float(d[cfg.objective])
    return {**d, "trial": number, "spec": spec, "label": spec.replace(",", " -> "), "cost": cost,
            "fits": cfg.budget is None or cost <= cfg.budget, "seconds": round(point.seconds, 2),
            "run_id": point.result.result.extra.get("run_id")}


def iter_search(model: str, dataset: str | None, cfg: SearchConfig, *, study: str | None = None,
                device: str = "cpu", limit: int | None = None, store: Any = True, executor: Any = None,
                outcome: SearchOutcome | None = None, progress: Callable[[dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None, storage: str | None = None,
                runtime: str | None = None) -> Iterator[dict]:
    """Run trials until the study has `cfg.trials` complete ones (or Stop), yielding each measured
    trial as a row (stored as a run, grouped under the study). Trials run in batches as wide as the
    executor's parallelism, each told to the study as it finishes. `runtime`: where each trial's
    latency is timed (compression.runtimes; None: the process default)."""
    import optuna
    from compression.run_labels import new_group_id
    from compression.runtimes import check_runtime
    from compression.sweep import Job, default_executor, run_jobs

    on = {"runtime": check_runtime(runtime)} if runtime else {}
    name = study or f"{model}-{cfg.objective}-{time.strftime('%Y%m%d-%H%M%S')}"
    st = open_study(name, cfg, storage=storage)
    executor = executor or default_executor()
    width = max(1, getattr(executor, "max_pending", 1) // 2) if not hasattr(executor, "client") \
        else max(1, executor.workers())
    outcome = outcome if outcome is not None else SearchOutcome(cfg, name)
    outcome.study = name
    group = new_group_id("search", name)  # every trial of the study, this session's and a continued one's
    stop = should_stop or (lambda: False)

    def complete() -> int:
        return len(st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))

    while complete() < cfg.trials and not stop():
        batch = []
        for _ in range(min(width, cfg.trials - complete())):
            trial = st.ask()
            spec = trial.user_attrs.get("grid") or suggest(trial, cfg)
            batch.append((trial, spec))
        jobs = [Job(model, dataset, spec, device=device, limit=limit, subset=cfg.subset, seed=cfg.seed,
                    kernel=cfg.objective == "latency_ms", group=f"search {name}", pipeline=True, **on)
                for _, spec in batch]
        told = set()
        for point in run_jobs(jobs, executor=executor, store=store, should_stop=stop, group=group):
            trial, spec = batch[point.index]
            told.add(point.index)
            if not point.ok:
                st.tell(trial, state=optuna.trial.TrialState.FAIL)
                outcome.refused.append((spec, point.error))
                continue
            row = _row(point, trial.number, spec, cfg)
            if cfg.budget is not None:  # feasible when <= 0: the samplers rank over-budget trials last
                trial.set_constraint("budget", row["cost"] - cfg.budget)
                trial.set_user_attr("over_budget", row["cost"] - cfg.budget)
            trial.set_user_attr("spec", spec)
            trial.set_user_attr("run_id", row["run_id"])
            st.tell(trial, [row["accuracy"], row["cost"]])
            outcome.trials.append(row)
            if progress is not None:
                progress({"step": complete(), "steps": cfg.trials, "running": len(batch) - len(told),
                          "accuracy": row["accuracy"], "cost": row["cost"]})
            yield row
        for i, (trial, _) in enumerate(batch):
            if i not in told:  # stopped before it ran: back to the queue of a later session
                st.tell(trial, state=optuna.trial.TrialState.FAIL)
                _requeue(st, trial)
    outcome.stopped = stop() and complete() < cfg.trials


def search(model: str, dataset: str | None, cfg: SearchConfig, **kwargs) -> SearchOutcome:
    outcome = SearchOutcome(cfg, kwargs.get("study") or "")
    for _ in iter_search(model, dataset, cfg, outcome=outcome, **kwargs):
        pass
    return outcome


# ---------------------------------------------------------------------------------------------
# what it found

def study_rows(name: str, *, storage: str | None = None) -> list[dict[str, Any]]:
    """Every complete trial of a stored study: its spec, accuracy, cost, run id."""
    import optuna
    st = optuna.load_study(study_name=name, storage=storage or storage_url())
    return [{"trial": t.number, "spec": t.user_attrs.get("spec"), "accuracy": t.values[0], "cost": t.values[1],
             "run_id": t.user_attrs.get("run_id"), "grid": bool(t.user_attrs.get("grid")),
             "over_budget": t.user_attrs.get("over_budget"), "params": dict(t.params)}
            for t in st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]


def front(rows: list[dict], *, cost: str = "cost") -> list[dict]:
    """The trials on the accuracy-vs-cost front, cheapest first."""
    keyed = [{**r, "size_bytes": r[cost]} for r in rows]
    return pareto_frontier(keyed, cost="size_bytes")


def best(rows: list[dict], budget: float | None) -> tuple[dict | None, bool]:
    """(the most accurate trial that fits, True), or (the best near miss: the one closest to the
    budget, False) when none fits; (None, False) without trials."""
    if not rows:
        return None, False
    fits = [r for r in rows if budget is None or r["cost"] <= budget]
    if fits:
        return max(fits, key=lambda r: (r["accuracy"], -r["cost"])), True
    return min(rows, key=lambda r: (r["cost"], -r["accuracy"])), False


def hypervolume(rows: list[dict], *, ref_cost: float, ref_accuracy: float = 0.0) -> float:
    """Area dominated by the front (accuracy up, cost down) within the reference box: the larger,
    the better the front (one number to compare searches)."""
    pts = sorted((r["cost"], r["accuracy"]) for r in front(rows) if r["cost"] <= ref_cost)
    best_acc, area = ref_accuracy, 0.0
    for i, (c, a) in enumerate(pts):  # cheapest first: up to the next point, the best so far holds
        nxt = pts[i + 1][0] if i + 1 < len(pts) else ref_cost
        best_acc = max(best_acc, a)
        area += (nxt - c) * (best_acc - ref_accuracy)
    return area


def summary(outcome: SearchOutcome, *, storage: str | None = None) -> dict[str, Any]:
    cfg = outcome.config
    rows = study_rows(outcome.study, storage=storage)
    chosen, fits = best(rows, cfg.budget)
    out = {"study": outcome.study, "objective": cfg.objective, "budget": cfg.budget, "trials": len(rows),
           "this_session": len(outcome.trials), "refused": [{"spec": s, "error": e} for s, e in outcome.refused],
           "stopped": outcome.stopped, "front": [{k: r[k] for k in ("trial", "spec", "accuracy", "cost", "run_id")}
                                                 for r in front(rows)]}
    if chosen is not None:
        out["chosen"] = {k: chosen[k] for k in ("trial", "spec", "accuracy", "cost", "run_id")}
        out["chosen_fits"] = fits
        if not fits:
            out["reason"] = f"no trial fits {cfg.objective} <= {cfg.budget:g}; the chosen one is the best near miss"
    return out
