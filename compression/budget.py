"""Budget search: the most accurate configuration that fits a budget of stored bytes, MACs per
image or batch-1 latency, among the methods the user allows.

The search is a small grid of pipelines (`candidates`): pruning ratios, quantization bit widths and,
when both are allowed, pruning followed by quantization. Every point is an independent job run
through the sweep executor (compression.sweep), measured like any other run and stored; the
chosen one is the most accurate point whose *measured* cost is within the budget (ties: the
cheaper). Nothing is predicted: a point counts as within budget only after it was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from compression import CompressionError
from compression.pareto import COSTS
from compression.sweep import default_executor

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
    """The pipelines the search tries, as specs."""
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


def point_row(job_result: Any, spec: str) -> dict[str, Any]:
    """A measured point as plain values: the final step's result, its spec and run id."""
    result = job_result.result
    result.extra["search"] = "budget"
    row = {**result.to_dict(), "spec": spec, "label": spec.replace(",", " -> ")}
    if "run_id" in result.extra:
        row.update(run_id=result.extra["run_id"], artifact=result.extra.get("artifact"))
    return row


@dataclass
class BudgetOutcome:
    config: BudgetConfig
    points: list[dict] = field(default_factory=list)   # every measured point, with "index" and "fits"
    refused: list[tuple[str, str]] = field(default_factory=list)
    stopped: bool = False

    @property
    def best(self) -> dict | None:
        """The most accurate point within the budget (ties: the cheaper), or None."""
        inside = [p for p in self.points if p["fits"]]
        return max(inside, key=lambda p: (p["accuracy"], -p[self.config.metric])) if inside else None


def iter_search(model: str, dataset: str, cfg: BudgetConfig, outcome: "BudgetOutcome | None" = None, *,
                device: str = "cpu", limit: int | None = None, store: bool = True,
                progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None):
    """Try every candidate through the default executor, yielding each measured point (stored as
    it finishes) and collecting them in `outcome`. Stop keeps the points done so far."""
    from compression.run_labels import new_group_id
    from compression.sweep import Job, run_jobs
    specs = candidates(cfg)
    jobs = [Job(model, dataset, s, device=str(device), limit=limit, subset=cfg.subset,
                kernel=cfg.metric == "latency_ms" or "quantize:uniform:8" in s, group=f"budget {model}",
                pipeline=True)
            for s in specs]
    outcome = outcome if outcome is not None else BudgetOutcome(cfg)
    for point in run_jobs(jobs, executor=default_executor(), store=store, progress=progress,
                          should_stop=should_stop, group=new_group_id("budget")):
        if not point.ok:
            outcome.refused.append((specs[point.index], point.error))
            continue
        row = {**point_row(point.result, specs[point.index]), "index": point.index,
               "fits": point.result.result.to_dict()[cfg.metric] <= cfg.limit, "seconds": point.seconds}
        outcome.points.append(row)
        yield row
    outcome.stopped = bool(should_stop and should_stop()) and len(outcome.points) + len(outcome.refused) < len(jobs)


def search(model: str, dataset: str, cfg: BudgetConfig, **kwargs) -> BudgetOutcome:
    """iter_search to the end (or to Stop): every measured point and the best within budget."""
    outcome = BudgetOutcome(cfg)
    for _ in iter_search(model, dataset, cfg, outcome, **kwargs):
        pass
    return outcome


def summary(outcome: BudgetOutcome) -> dict[str, Any]:
    """One JSON-able line: the budget, how many points fit, and the chosen configuration."""
    from compression.honesty import simulated_metrics
    cfg, best = outcome.config, outcome.best
    out = {"budget_metric": cfg.metric, "budget": cfg.limit, "unit": COSTS[cfg.metric][1],
           "methods": list(cfg.methods), "tried": len(outcome.points), "within_budget": sum(p["fits"] for p in outcome.points),
           "refused": [{"spec": s, "error": e} for s, e in outcome.refused], "stopped": outcome.stopped,
           "chosen": None}
    if best is not None:
        out.update(chosen=best["spec"], run_id=best.get("run_id"), accuracy=best["accuracy"],
                   size_bytes=best["size_bytes"], macs=best["macs"], latency_ms=best["latency_ms"],
                   simulated=best["simulated"], simulated_metrics=simulated_metrics(best))
    else:
        cheapest = min((p[cfg.metric] for p in outcome.points), default=None)
        out["reason"] = (f"no configuration tried fits {cfg.metric} <= {cfg.limit:g}"
                         + (f"; the cheapest measured {cheapest:g}" if cheapest is not None else ""))
    return out
