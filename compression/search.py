"""Multi-objective search over the registry's knobs (Optuna): the Pareto front of accuracy against
one cost (stored bytes, MACs or measured latency), optionally under a hard budget on that cost.

A trial is a configuration of compression.search_space (pruning, quantization, prune -> quantize,
or a Deep Compression pipeline), run as a sweep job (compression.sweep: in-process or on a Dask
cluster), measured like any run and stored. What needs no evaluation comes first: each proposed
configuration's stored bytes, parameters and MACs are predicted from the compressed model
(compression.costs), and one over a hard budget on bytes or MACs is recorded as infeasible
(Optuna's trial constraints, state pruned) without being run; the trial count counts evaluated
trials. A new study's first trials are the budget solver's candidates predicted to fit,
best-predicted first (compression.budget.solve); then TPE (default) or NSGA-II, with the budget as
a constraint. The sampler "grid" runs the solver's candidates and nothing else: the `budget`
command. The study lives in Optuna's RDB storage (study_storage: SQLite under the app's data
folder), so an interrupted search continues where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from compression import CompressionError
from compression.pareto import COSTS, pareto_frontier
from compression.search_space import DC_GRID, DC_RANGES, deep_compression_spec, grid_params, suggest  # noqa: F401
from compression.search_trials import add_skipped, over_budget, predicted_attrs, skip, skip_row, skip_words

OBJECTIVES = ("size_bytes", "macs", "latency_ms")
SAMPLERS = ("tpe", "nsga2", "grid")
SEARCH_METHODS = ("prune", "quantize", "deep-compression")
FAMILIES = ("prune", "quantize", "prune+quantize", "deep-compression")
MAX_TRIALS = 10_000
SOLVER_SEEDS = 8        # the budget solver's candidates enqueued first (TPE's start-up trials)
MAX_SKIPPED = 200       # configurations predicted over the budget in one session before it gives up


@dataclass(frozen=True)
class SearchConfig:
    objective: str = "size_bytes"          # the cost minimized beside accuracy
    budget: float | None = None            # hard limit on that cost (a constraint), or None
    methods: tuple[str, ...] = ("prune", "quantize")  # both: prune -> quantize too; or deep-compression
    trials: int = 24                       # evaluated trials the study should have (skipped ones not counted)
    sampler: str = "tpe"
    seed: int = 0
    finetune_epochs: int = 0               # after pruning (0: one-shot)
    subset: int | None = None              # fine-tune on the first N training images
    grid_first: bool = True                # the budget solver's candidates as the first trials

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


def grid(cfg: SearchConfig) -> list[str]:
    """The budget grid's points and Deep Compression's (as written in compression.budget)."""
    from compression.budget import grid_specs
    return [s for part in grid_specs(cfg) for s in part]


# ---------------------------------------------------------------------------------------------
# the study

def storage_url() -> str:
    """Where studies are kept: the run store's PostgreSQL database when COMPRESSION_STORE names one
    (Optuna's RDB storage beside the runs, its tables created once under the store's migration
    lock), else search.sqlite in the data folder."""
    from compression.store.optuna import study_storage_url
    return study_storage_url()


def study_storage(storage: str | None = None) -> Any:
    """The one place a study's storage is chosen: `storage` (an Optuna RDB URL), ":memory:" (this
    process only: the budget command's grid, never continued), or the app's (storage_url())."""
    if storage == ":memory:":
        import optuna
        return optuna.storages.InMemoryStorage()
    return storage or storage_url()


def _sampler(cfg: SearchConfig):
    import warnings

    import optuna
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if cfg.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=cfg.seed, population_size=8)
        if cfg.sampler == "grid":  # every trial is enqueued (the solver's candidates): never asked to draw
            return optuna.samplers.RandomSampler(seed=cfg.seed)
        return optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=8, multivariate=True, group=True)


def open_study(name: str, cfg: SearchConfig, *, storage: str | None = None,
               seeds: Callable[[], Any] | None = None):
    """Create the study, or load it to continue (its own settings are kept in its attributes). A
    new study gets `seeds()` (a compression.budget.Solution) as its first trials when cfg.grid_first:
    the candidates predicted to fit, best-predicted first (all of them for the grid sampler, else
    the first SOLVER_SEEDS), and the grid's points predicted over the budget recorded as skipped."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=study_storage(storage), load_if_exists=True,
                                directions=["maximize", "minimize"], sampler=_sampler(cfg))
    if not study.trials:
        study.set_user_attr("objective", cfg.objective)
        study.set_user_attr("budget", cfg.budget)
        solution = seeds() if cfg.grid_first and seeds is not None else None
        if solution is not None:
            for c in solution.fits if cfg.sampler == "grid" else solution.fits[:SOLVER_SEEDS]:
                study.enqueue_trial(c.params, user_attrs={"grid": c.spec})
            for c in solution.over:
                add_skipped(study, cfg, c.spec, c.predicted)
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


def cost_model(model: str, dataset: str | None, device: str, cfg: SearchConfig):
    """The predictor of a study's configurations (compression.costs), on the model as resolved here."""
    from compression.costs import CostModel
    from compression.refs import resolve
    return CostModel(resolve(model, dataset, device=device), device, seed=cfg.seed, subset=cfg.subset)


@dataclass
class SearchOutcome:
    config: SearchConfig
    study: str
    trials: list[dict] = field(default_factory=list)    # this session's measured trials, as rows
    refused: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)   # predicted over the budget: not evaluated
    stopped: bool = False
    reason: str | None = None                           # why it ended before cfg.trials, if not Stop
    solver: dict[str, Any] = field(default_factory=dict)  # what the budget solver proposed


def _row(point, number: int, spec: str, cfg: SearchConfig, predicted: Any) -> dict[str, Any]:
    d = point.result.result.to_dict()
    cost = float(d[cfg.objective])
    return {**d, "trial": number, "spec": spec, "label": spec.replace(",", " -> "), "cost": cost,
            "fits": cfg.budget is None or cost <= cfg.budget, "seconds": round(point.seconds, 2),
            "run_id": point.result.result.extra.get("run_id"), "artifact": point.result.result.extra.get("artifact"),
            "predicted": predicted_attrs(predicted) if predicted is not None else None}


def _solve(costs: Any, cfg: SearchConfig, outcome: SearchOutcome):
    from compression.budget import solve
    solution = solve(costs, cfg)
    outcome.solver = {"candidates": len(solution.fits), "seeds": len(solution.fits) if cfg.sampler == "grid"
                      else min(SOLVER_SEEDS, len(solution.fits)), "over": len(solution.over),
                      "complete": solution.complete, "seconds": solution.seconds}
    if cfg.budget is not None and not solution.fits and solution.complete and solution.cheapest is not None:
        c = solution.cheapest
        outcome.reason = (f"nothing in the search space is predicted to fit {cfg.objective} <= {cfg.budget:g}: the "
                          f"cheapest configuration, {c.spec}, is predicted at {c.cost(cfg.objective):,.0f}")
    return solution


def iter_search(model: str, dataset: str | None, cfg: SearchConfig, *, study: str | None = None,
                device: str = "cpu", limit: int | None = None, store: Any = True, executor: Any = None,
                outcome: SearchOutcome | None = None, progress: Callable[[dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None, storage: str | None = None,
                runtime: str | None = None, kernel: Callable[[str], bool] | None = None) -> Iterator[dict]:
    """Run trials until the study has `cfg.trials` evaluated ones (or Stop), yielding each measured
    trial as a row (stored as a run, grouped under the study). Each proposed configuration's costs
    are predicted first (compression.costs); one over a hard budget on stored bytes or MACs is
    recorded as not evaluated (outcome.skipped) and another is asked for. Trials run in batches as
    wide as the executor's parallelism, each told to the study as it finishes. `runtime`: where each
    trial's latency is timed (None: the process default); `kernel(spec)`: measure the int8 kernel
    (default: when the objective is latency)."""
    import optuna
    from compression.run_labels import new_group_id
    from compression.runtimes import check_runtime
    from compression.sweep import Job, default_executor, run_jobs

    on = {"runtime": check_runtime(runtime)} if runtime else {}
    kernel = kernel or (lambda spec: cfg.objective == "latency_ms")
    name = study or f"{model}-{cfg.objective}-{time.strftime('%Y%m%d-%H%M%S')}"
    outcome = outcome if outcome is not None else SearchOutcome(cfg, name)
    outcome.study = name
    costs = cost_model(model, dataset, device, cfg)
    st = open_study(name, cfg, storage=storage, seeds=lambda: _solve(costs, cfg, outcome))
    if outcome.solver:  # a new study: the grid's points the solver predicted over the budget
        outcome.skipped = _skipped_of(st)
    executor = executor or default_executor()
    width = max(1, getattr(executor, "max_pending", 1) // 2) if not hasattr(executor, "client") \
        else max(1, executor.workers())
    group = new_group_id("search", name)  # every trial of the study, this session's and a continued one's
    stop = should_stop or (lambda: False)
    states = optuna.trial.TrialState

    def complete() -> int:
        return len(st.get_trials(deepcopy=False, states=(states.COMPLETE,)))

    def queued() -> int:
        return len(st.get_trials(deepcopy=False, states=(states.WAITING,)))

    def target() -> int:  # the grid sampler ends with its queue
        return cfg.trials if cfg.sampler != "grid" else min(cfg.trials, complete() + queued())

    while complete() < target() and not stop() and outcome.reason is None:
        batch, want = [], min(width, target() - complete())
        while len(batch) < want and not stop():
            if cfg.sampler == "grid" and not queued():
                break
            trial = st.ask()
            spec = suggest(trial, cfg)  # an enqueued point: its fixed knobs, recorded for the sampler
            predicted = costs.predict(spec)
            trial.set_user_attr("spec", spec)
            if predicted is not None:
                trial.set_user_attr("predicted", predicted_attrs(predicted))
            over = over_budget(predicted, cfg)
            if over is None:
                batch.append((trial, spec, predicted))
                continue
            skip(st, trial, over)
            outcome.skipped.append(skip_row(trial.number, spec, predicted, over, cfg))
            if len(outcome.skipped) >= MAX_SKIPPED:
                outcome.reason = (f"{MAX_SKIPPED} configurations proposed in this session were predicted over "
                                  f"{cfg.objective} <= {cfg.budget:g}; the budget leaves the sampler little room")
                break
        if not batch:
            break
        jobs = [Job(model, dataset, spec, device=device, limit=limit, subset=cfg.subset, seed=cfg.seed,
                    kernel=kernel(spec), group=f"search {name}", pipeline=True, **on)
                for _, spec, _ in batch]
        told = set()
        for point in run_jobs(jobs, executor=executor, store=store, should_stop=stop, group=group):
            trial, spec, predicted = batch[point.index]
            told.add(point.index)
            if not point.ok:
                st.tell(trial, state=states.FAIL)
                outcome.refused.append((spec, point.error))
                continue
            row = _row(point, trial.number, spec, cfg, predicted)
            if cfg.budget is not None:  # feasible when <= 0: the samplers rank over-budget trials last
                trial.set_constraint("budget", row["cost"] - cfg.budget)
                trial.set_user_attr("over_budget", row["cost"] - cfg.budget)
            trial.set_user_attr("run_id", row["run_id"])
            st.tell(trial, [row["accuracy"], row["cost"]])
            outcome.trials.append(row)
            if progress is not None:
                progress({"step": complete(), "steps": target(), "running": len(batch) - len(told),
                          "accuracy": row["accuracy"], "cost": row["cost"], "skipped": len(outcome.skipped)})
            yield row
        for i, (trial, _, _) in enumerate(batch):
            if i not in told:  # stopped before it ran: back to the queue of a later session
                st.tell(trial, state=states.FAIL)
                _requeue(st, trial)
    outcome.stopped = stop() and complete() < target()


def search(model: str, dataset: str | None, cfg: SearchConfig, **kwargs) -> SearchOutcome:
    outcome = SearchOutcome(cfg, kwargs.get("study") or "")
    for _ in iter_search(model, dataset, cfg, outcome=outcome, **kwargs):
        pass
    return outcome


# ---------------------------------------------------------------------------------------------
# what it found

def _load(name: str, storage: str | None):
    import optuna
    return optuna.load_study(study_name=name, storage=study_storage(storage))


def study_rows(name: str, *, storage: str | None = None) -> list[dict[str, Any]]:
    """Every evaluated trial of a stored study: its spec, accuracy, cost, run id, and the costs
    predicted before it ran."""
    import optuna
    return [{"trial": t.number, "spec": t.user_attrs.get("spec"), "accuracy": t.values[0], "cost": t.values[1],
             "run_id": t.user_attrs.get("run_id"), "grid": bool(t.user_attrs.get("grid")),
             "over_budget": t.user_attrs.get("over_budget"), "predicted": t.user_attrs.get("predicted"),
             "params": dict(t.params)}
            for t in _load(name, storage).get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]


def skipped_rows(name: str, *, storage: str | None = None) -> list[dict[str, Any]]:
    """Every trial of a stored study predicted over its budget and so not evaluated."""
    return _skipped_of(_load(name, storage))


def _skipped_of(st) -> list[dict[str, Any]]:
    import optuna
    objective = st.user_attrs.get("objective", "size_bytes")
    return [{"trial": t.number, "spec": t.user_attrs.get("spec"), "label": (t.user_attrs.get("spec") or "").replace(",", " -> "),
             "predicted_cost": (t.user_attrs.get("predicted") or {}).get(objective),
             "over": t.user_attrs.get("over_budget"), "why": skip_words(t.user_attrs.get("over_budget") or 0, objective),
             "predicted": t.user_attrs.get("predicted")}
            for t in st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
            if t.user_attrs.get("skipped")]


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
    skipped = skipped_rows(outcome.study, storage=storage)
    chosen, fits = best(rows, cfg.budget)
    out = {"study": outcome.study, "objective": cfg.objective, "budget": cfg.budget, "trials": len(rows),
           "this_session": len(outcome.trials), "refused": [{"spec": s, "error": e} for s, e in outcome.refused],
           "skipped": [{k: r[k] for k in ("trial", "spec", "predicted_cost", "over", "why")} for r in skipped],
           "solver": outcome.solver, "stopped": outcome.stopped, "front": [{k: r[k] for k in ("trial", "spec", "accuracy", "cost", "run_id")}
                                                 for r in front(rows)]}
    if chosen is not None:
        out["chosen"] = {k: chosen[k] for k in ("trial", "spec", "accuracy", "cost", "run_id")}
        out["chosen_fits"] = fits
        if not fits:
            out["reason"] = f"no trial fits {cfg.objective} <= {cfg.budget:g}; the chosen one is the best near miss"
    if outcome.reason:
        out["reason"] = outcome.reason
    return out
