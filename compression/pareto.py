"""Pareto frontiers over stored runs and the path of a pipeline (the sweep executor: compression.sweep).

Frontier: a run is on the accuracy-vs-cost frontier when no other run is at least as accurate
and at most as costly with one of the two strictly better (maximize accuracy, minimize the cost:
stored bytes, parameters, MACs or latency). Sorted by cost, the frontier's accuracy rises
strictly, so drawn as a step line it reads "the best accuracy reached within this budget".
The pool on an axis is every run whose number on that axis is real (`real_on_axis`; which gains are
simulated: compression.honesty.simulated_metrics), unless simulated gains are asked for.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Sequence

from compression import CompressionError

# cost axes: key in a run/result -> (label, unit)
COSTS: dict[str, tuple[str, str]] = {
    "size_bytes": ("stored size", "bytes"),
    "params": ("parameters", "count"),
    "macs": ("MACs per image", "count"),
    "latency_ms": ("latency (batch 1)", "ms"),
}


def runtime_of(run: Mapping[str, Any]) -> str:
    """Where a stored run's latency was timed (its extra's `runtime`); runs from before runtimes: eager.
    Latencies compare only within one runtime (the explorer's and `runs --runtime` filter)."""
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    return str(run.get("runtime") or extra.get("runtime") or "eager")


def _number(value: Any) -> float | None:
    """A finite float, or None for missing / NaN / infinite values (such points can't be ranked)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def frontier_mask(costs: Sequence[Any], values: Sequence[Any]) -> list[bool]:
    """For each point (costs[i], values[i]): is it on the frontier (min cost, max value)?

    Exact duplicates of a frontier point are all on it (none dominates the others); a point with
    the same cost and a lower value, or the same value and a higher cost, is dominated. Points
    with a missing or non-finite number are never on it. O(n log n).
    """
    if len(costs) != len(values):
        raise CompressionError(f"pareto: {len(costs)} costs but {len(values)} values; expected one of each per point")
    pts = [(c, v, i) for i, (c, v) in enumerate(zip(map(_number, costs), map(_number, values)))
           if c is not None and v is not None]
    pts.sort(key=lambda p: (p[0], -p[1], p[2]))  # cheapest first; at equal cost the best first
    mask = [False] * len(costs)
    best: tuple[float, float] | None = None  # (cost, value) of the last frontier point
    for c, v, i in pts:
        if best is None or v > best[1]:
            mask[i], best = True, (c, v)
        elif (c, v) == best:
            mask[i] = True  # an exact duplicate of a frontier point
    return mask


def pareto_frontier(points: Iterable[Mapping[str, Any]], *, cost: str = "size_bytes",
                    value: str = "accuracy") -> list[Mapping[str, Any]]:
    """The points on the frontier (maximize `value`, minimize `cost`), cheapest first.

    `points` are mappings such as stored runs; ties are ordered by input order.
    """
    if cost not in COSTS:
        raise CompressionError(f"pareto: unknown cost {cost!r}; choose one of {', '.join(COSTS)}")
    points = list(points)
    mask = frontier_mask([p.get(cost) for p in points], [p.get(value) for p in points])
    on = [p for p, keep in zip(points, mask) if keep]
    return sorted(on, key=lambda p: (float(p[cost]), -float(p[value])))


def real_on_axis(points: Iterable[Mapping[str, Any]], cost: str, *,
                 include_simulated: bool = False) -> list[Mapping[str, Any]]:
    """The points whose number on the `cost` axis is real (compression.honesty.axis_is_real): an
    unstructured prune counts on the size axis (its sparse file is real) but not on latency (dense
    kernels). With `include_simulated`, every point. The pool every frontier is drawn from."""
    from compression.honesty import axis_is_real
    points = list(points)
    return points if include_simulated else [p for p in points if axis_is_real(p, cost)]


def pipeline_path(run_id: int, lookup: Callable[[int], Mapping[str, Any] | None],
                  max_steps: int = 100) -> list[Mapping[str, Any]]:
    """The steps that led to a run, first step first, following `parent_id` (via `lookup(id)`,
    e.g. RunStore().get). Stops at a missing parent or a loop instead of failing."""
    path: list[Mapping[str, Any]] = []
    seen: set[int] = set()
    current: int | None = run_id
    while current is not None and current not in seen and len(path) < max_steps:
        seen.add(current)
        row = lookup(current)
        if row is None:
            break
        path.append(row)
        current = row.get("parent_id")
    return path[::-1]

