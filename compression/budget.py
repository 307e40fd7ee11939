"""The budget solver, and the `budget` command as the search engine with the grid sampler.

`solve(costs, ...)` proposes the configurations to evaluate first. For a hard budget on a cost
that needs no evaluation (stored bytes, MACs: compression.costs predicts them from the compressed
model), every family of the grid (a pruning kind, a quantization, or one followed by the other)
is bisected over its pruning ratio for the least pruning whose predicted cost fits; those points
and the grid's own points that fit are the candidates, best-predicted first (the untrained
configuration's accuracy on validation images: a ranking, never reported as a result). The
grid's points predicted over the budget are listed, never evaluated. Without a budget, a ladder of
budgets (the model's cost halved, then halved again, ...) gives one candidate per rung: a spread
of seeds along the front (the grid sampler without a budget: the grid itself). Latency cannot be
predicted: the grid, in its order.

`iter_search` / `search` / `summary` keep the `budget` command's contract (its rows and summary
keys) and run compression.search's engine with sampler "grid": the solver's candidates that fit,
each a stored run, and nothing drawn after them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from compression import CompressionError
from compression.pareto import COSTS

BUDGET_METRICS = ("size_bytes", "macs", "latency_ms")
SEARCH_METHODS = ("prune", "quantize")

# the grid: one-shot (or briefly fine-tuned) points that span each method's range
PRUNE_GRID = ("prune:structured:0.25:scope=layer", "prune:structured:0.5:scope=layer",
              "prune:structured:0.75:scope=layer", "prune:unstructured:0.5", "prune:unstructured:0.7",
              "prune:unstructured:0.8", "prune:unstructured:0.9", "prune:unstructured:0.95")
QUANT_GRID = ("quantize:uniform:8", "quantize:uniform:6", "quantize:uniform:4", "quantize:uniform:3",
              "quantize:uniform:2", "quantize:cluster-huffman:5", "quantize:cluster-huffman:4",
              "quantize:cluster-huffman:3")
BOTH_GRID = ("prune:structured:0.5:scope=layer,quantize:uniform:8", "prune:structured:0.75:scope=layer,quantize:uniform:4",
             "prune:unstructured:0.7,quantize:cluster-huffman:5", "prune:unstructured:0.9,quantize:cluster-huffman:5",
             "prune:unstructured:0.9,quantize:cluster-huffman:4", "prune:unstructured:0.95,quantize:cluster-huffman:4")
# the ratios the solver bisects a family over (its cost never rises with the ratio)
RATIOS = (0.25, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
LADDER = 8                  # rungs without a budget: the model's cost / 2, / 4, ... / 256
MAX_PREDICTIONS = 200       # predictions per solve (a count, not a time: the same seeds on any machine)


@dataclass(frozen=True)
class BudgetConfig:
    metric: str = "size_bytes"          # size_bytes | macs | latency_ms
    limit: float = 100_000              # the budget, in the metric's unit (bytes, MACs, ms)
    methods: tuple[str, ...] = SEARCH_METHODS
    finetune_epochs: int = 0            # epochs of fine-tuning after pruning (0: one-shot, fastest)
    subset: int | None = None           # fine-tune on the first N training images only

    def __post_init__(self):
        if not isinstance(self.metric, str) or self.metric not in BUDGET_METRICS:
            raise CompressionError(f"budget metric {self.metric!r} unknown; choose one of {', '.join(BUDGET_METRICS)}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, (int, float)) or not self.limit > 0:
            raise CompressionError(f"budget {self.limit!r} out of range: expected a number > 0 ({COSTS[self.metric][1]})")
        if isinstance(self.methods, str) or not isinstance(self.methods, (list, tuple)):
            raise CompressionError(f"search methods {self.methods!r} must be a list of {', '.join(SEARCH_METHODS)}")
        bad = [m for m in self.methods if not isinstance(m, str) or m not in SEARCH_METHODS]
        methods = tuple(dict.fromkeys(m for m in self.methods if not bad))
        if bad:
            raise CompressionError(f"search method {bad[0]!r} not allowed; choose from {', '.join(SEARCH_METHODS)}")
        if not methods:
            raise CompressionError(f"search methods {self.methods!r}: choose at least one of {', '.join(SEARCH_METHODS)}")
        object.__setattr__(self, "methods", methods)
        if isinstance(self.finetune_epochs, bool) or not isinstance(self.finetune_epochs, int) \
                or not 0 <= self.finetune_epochs <= 10:
            raise CompressionError(f"fine-tuning epochs {self.finetune_epochs!r} out of range: an integer in [0, 10]")
        if self.subset is not None and (not isinstance(self.subset, int) or self.subset < 1):
            raise CompressionError(f"training subset {self.subset!r} must be a positive number of images")


def candidates(cfg: BudgetConfig) -> list[str]:
    """The grid's pipelines, as specs."""
    specs = []
    if "prune" in cfg.methods:
        specs += PRUNE_GRID
    if "quantize" in cfg.methods:
        specs += QUANT_GRID
    if {"prune", "quantize"} <= set(cfg.methods):
        specs += BOTH_GRID
    if cfg.finetune_epochs:
        specs = [",".join(f"{s}:epochs={cfg.finetune_epochs}" if s.startswith("prune") else s for s in spec.split(","))
                 for spec in specs]
    return specs


# ---------------------------------------------------------------------------------------------
# the solver

@dataclass(frozen=True)
class Candidate:
    spec: str                    # as the sampler writes it (compression.search_space)
    params: dict                 # its point in the search space
    predicted: Any               # compression.costs.Predicted, or None (latency)
    accuracy: float | None       # the ranking: untrained, on validation images (not a result)
    grid: bool = False           # one of the grid's own points

    def cost(self, objective: str) -> float | None:
        return self.predicted.cost(objective) if self.predicted is not None else None


@dataclass
class Solution:
    fits: list[Candidate] = field(default_factory=list)   # to evaluate, best-predicted first
    over: list[Candidate] = field(default_factory=list)   # the grid's points predicted over the budget
    cheapest: Candidate | None = None                     # the least predicted cost the solver saw
    complete: bool = True                                 # False: MAX_PREDICTIONS cut it short
    seconds: float = 0.0


def _families(methods: tuple[str, ...]) -> list[tuple[dict, dict]]:
    """(prune kind, quantization) pairs from the grid's own points; {} for "none"."""
    from compression.pipeline import parse_step
    prunes = list({(s.method, s.scope): {"prune_method": s.method, "scope": s.scope}
                   for s in map(parse_step, PRUNE_GRID)}.values())
    quants = list({(s.method, s.bits): {"quant_method": s.method, "bits": int(s.bits)}
                   for s in map(parse_step, QUANT_GRID)}.values())
    out: list[tuple[dict, dict]] = []
    if "prune" in methods:
        out += [(p, {}) for p in prunes]
    if "quantize" in methods:
        out += [({}, q) for q in quants]
    if {"prune", "quantize"} <= set(methods):
        out += [(p, q) for p in prunes for q in quants]
    return out


def _params(prune: dict, quant: dict, ratio: float | None) -> dict:
    family = "+".join(k for k, part in (("prune", prune), ("quantize", quant)) if part)
    return {"family": family, **({**prune, "ratio": ratio} if prune else {}), **quant}


class _Solver:
    def __init__(self, costs: Any, cfg: Any, objective: str, predictions: int):
        self.costs, self.cfg, self.objective, self.left = costs, cfg, objective, predictions
        self.seen: dict[str, Candidate] = {}
        self.complete = True

    def point(self, params: dict, *, grid: bool = False) -> Candidate | None:
        from compression.search_space import spec_of_params
        spec = spec_of_params(params, self.cfg)
        if spec not in self.seen:
            if self.left <= 0:
                self.complete = False
                return None
            self.left -= 1
            self.seen[spec] = Candidate(spec, params, self.costs.predict(spec), None, grid)
        elif grid and not self.seen[spec].grid:
            self.seen[spec] = dataclasses.replace(self.seen[spec], grid=True)
        return self.seen[spec]

    def fits(self, c: Candidate, budget: float) -> bool:
        cost = c.cost(self.objective)
        return cost is None or cost <= budget  # a cost that cannot be predicted is measured

    def ranked(self, c: Candidate) -> Candidate:
        if c.accuracy is None:
            c = self.seen[c.spec] = dataclasses.replace(c, accuracy=self.costs.accuracy(c.spec))
        return c

    def boundary(self, prune: dict, quant: dict, budget: float) -> Candidate | None:
        """The family's point with the least pruning whose predicted cost fits (bisection)."""
        if not prune:
            c = self.point(_params(prune, quant, None))
            return c if c is not None and self.fits(c, budget) else None
        lo, hi, best = 0, len(RATIOS) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            c = self.point(_params(prune, quant, RATIOS[mid]))
            if c is None:
                return best
            if self.fits(c, budget):
                best, hi = c, mid - 1
            else:
                lo = mid + 1
        return best

    def within(self, budget: float, families, grid_specs) -> list[Candidate]:
        from compression.search_space import grid_params
        found = {c.spec: c for c in (self.boundary(p, q, budget) for p, q in families) if c is not None}
        for spec in grid_specs:
            c = self.point(grid_params(spec), grid=True)
            if c is not None and self.fits(c, budget):
                found.setdefault(c.spec, c)
        ranked = [self.ranked(c) for c in found.values()]
        return sorted(ranked, key=lambda c: (-c.accuracy, c.cost(self.objective) or 0.0))


def grid_specs(cfg: Any) -> tuple[list[str], list[str]]:
    """(the grid's pruning / quantization points, Deep Compression's own) for a SearchConfig."""
    from compression.search_space import DC_GRID, deep_compression_spec
    methods = tuple(m for m in cfg.methods if m != "deep-compression")
    grid = candidates(BudgetConfig(methods=methods, finetune_epochs=cfg.finetune_epochs)) if methods else []
    return grid, [deep_compression_spec(*p) for p in DC_GRID] if "deep-compression" in cfg.methods else []


def solve(costs: Any, cfg: Any, *, predictions: int = MAX_PREDICTIONS) -> Solution:
    """The candidates to evaluate first for a compression.search.SearchConfig `cfg` (objective,
    budget, methods, fine-tuning epochs), from predicted costs (`costs`: a compression.costs.CostModel)."""
    from compression.search_space import grid_params, spec_of_params
    start = time.perf_counter()
    objective = cfg.objective
    methods = tuple(m for m in cfg.methods if m != "deep-compression")
    grid_specs_, dc_specs = grid_specs(cfg)
    if objective == "latency_ms":  # nothing to predict: the grid, in its order
        return Solution([Candidate(spec_of_params(grid_params(s), cfg), grid_params(s), None, None, True)
                         for s in grid_specs_ + dc_specs], seconds=round(time.perf_counter() - start, 2))
    solver = _Solver(costs, cfg, objective, predictions)
    families = _families(methods)
    if cfg.budget is None and cfg.sampler == "grid":  # the grid itself, every point in its order
        fits = [c for c in (solver.point(grid_params(s), grid=True) for s in grid_specs_ + dc_specs) if c is not None]
    elif cfg.budget is not None:
        fits = solver.within(cfg.budget, families, grid_specs_ + dc_specs)
    else:
        base = costs.base().cost(objective)
        fits = []
        for k in range(1, LADDER + 1):
            rung = solver.within(base / 2 ** k, families, [])
            if rung and rung[0].spec not in {c.spec for c in fits}:
                fits.append(rung[0])
        dc = [solver.point(grid_params(s), grid=True) for s in dc_specs]  # Deep Compression's own grid
        fits += [solver.ranked(c) for c in dc if c is not None]
    seen = [c for c in solver.seen.values() if c.predicted is not None]
    over = [c for c in seen if c.grid and cfg.budget is not None and c.cost(objective) > cfg.budget]
    return Solution(fits, over, min(seen, key=lambda c: c.cost(objective), default=None), solver.complete,
                    round(time.perf_counter() - start, 2))


# ---------------------------------------------------------------------------------------------
# `budget`: the engine with the grid sampler, the command's rows and summary

@dataclass
class BudgetOutcome:
    config: BudgetConfig
    points: list[dict] = field(default_factory=list)   # every measured point, with "index" and "fits"
    refused: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # predicted over the budget: not evaluated
    stopped: bool = False
    reason: str | None = None

    @property
    def best(self) -> dict | None:
        """The most accurate point within the budget (ties: the cheaper), or None."""
        inside = [p for p in self.points if p["fits"]]
        return max(inside, key=lambda p: (p["accuracy"], -p[self.config.metric])) if inside else None


def search_config(cfg: BudgetConfig):
    from compression.search import MAX_TRIALS, SearchConfig
    return SearchConfig(objective=cfg.metric, budget=cfg.limit, methods=cfg.methods, trials=MAX_TRIALS,
                        sampler="grid", finetune_epochs=cfg.finetune_epochs, subset=cfg.subset)


def iter_search(model: str, dataset: str, cfg: BudgetConfig, outcome: "BudgetOutcome | None" = None, *,
                device: str = "cpu", limit: int | None = None, store: bool = True,
                progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None):
    """Evaluate the solver's candidates that fit (best-predicted first) through the default
    executor, yielding each measured point (stored as it finishes); the grid's points predicted
    over the budget are listed in outcome.skipped. Stop keeps the points done so far."""
    from compression.search import SearchOutcome, iter_search as engine
    scfg = search_config(cfg)
    outcome = outcome if outcome is not None else BudgetOutcome(cfg)
    inner = SearchOutcome(scfg, "")
    name = f"budget-{model}-{cfg.metric}-{time.strftime('%Y%m%d-%H%M%S')}"
    for row in engine(model, dataset, scfg, study=name, device=device, limit=limit, store=store, outcome=inner,
                      progress=progress, should_stop=should_stop, storage=":memory:",
                      kernel=lambda spec: cfg.metric == "latency_ms" or "quantize:uniform:8" in spec):
        point = {**{k: v for k, v in row.items() if k not in ("trial", "cost", "predicted")},
                 "index": len(outcome.points), "artifact": row.get("artifact")}
        outcome.points.append(point)
        yield point
    outcome.refused, outcome.skipped = inner.refused, inner.skipped
    outcome.stopped, outcome.reason = inner.stopped, inner.reason


def search(model: str, dataset: str, cfg: BudgetConfig, **kwargs) -> BudgetOutcome:
    """iter_search to the end (or to Stop): every measured point and the best within budget."""
    outcome = BudgetOutcome(cfg)
    for _ in iter_search(model, dataset, cfg, outcome, **kwargs):
        pass
    return outcome


def summary(outcome: BudgetOutcome) -> dict[str, Any]:
    """One JSON-able line: the budget, how many points fit, the ones not evaluated, the choice."""
    from compression.honesty import simulated_metrics
    cfg, best = outcome.config, outcome.best
    out = {"budget_metric": cfg.metric, "budget": cfg.limit, "unit": COSTS[cfg.metric][1],
           "methods": list(cfg.methods), "tried": len(outcome.points), "within_budget": sum(p["fits"] for p in outcome.points),
           "skipped": outcome.skipped, "refused": [{"spec": s, "error": e} for s, e in outcome.refused],
           "stopped": outcome.stopped, "chosen": None}
    if best is not None:
        out.update(chosen=best["spec"], run_id=best.get("run_id"), accuracy=best["accuracy"],
                   size_bytes=best["size_bytes"], macs=best["macs"], latency_ms=best["latency_ms"],
                   simulated=best["simulated"], simulated_metrics=simulated_metrics(best))
    else:
        cheapest = min((p[cfg.metric] for p in outcome.points), default=None)
        out["reason"] = outcome.reason or (f"no configuration tried fits {cfg.metric} <= {cfg.limit:g}"
                                           + (f"; the cheapest measured {cheapest:g}" if cheapest is not None else ""))
    return out
