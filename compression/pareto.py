"""Pareto frontiers over stored runs, the path of a pipeline, and the executor sweeps run through.

Frontier: a run is on the accuracy-vs-cost frontier when no other run is at least as accurate
and at most as costly with one of the two strictly better (maximize accuracy, minimize the cost:
stored bytes, parameters, MACs or latency). Sorted by cost, the frontier's accuracy rises
strictly, so drawn as a step line it reads "the best accuracy reached within this budget".

Sweep executor: a sweep (a grid of pruning ratios, bit widths, a budget search) hands its points
to `executor.map(fn, configs, progress=, should_stop=)`; each point is an independent job
`fn(config)`. `InProcessExecutor` (the default) runs them one after another in the caller's
thread; `FuturesExecutor` runs them on any `concurrent.futures.Executor` (threads, processes, or
a distributed engine that speaks that interface), so a page never knows which engine ran them.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

from compression import CompressionError

# cost axes: key in a run/result -> (label, unit)
COSTS: dict[str, tuple[str, str]] = {
    "size_bytes": ("stored size", "bytes"),
    "params": ("parameters", "count"),
    "macs": ("MACs per image", "count"),
    "latency_ms": ("latency (batch 1)", "ms"),
}


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


# ---------------------------------------------------------------------------------------------
# sweep executor

@dataclass(frozen=True)
class SweepPoint:
    """The outcome of one point of a sweep."""
    index: int                 # position of the config in the sequence given to map()
    config: Any
    result: Any = None         # what fn(config) returned (None when it failed)
    error: str | None = None   # the CompressionError message when this config was refused
    seconds: float = 0.0       # wall time of fn(config)

    @property
    def ok(self) -> bool:
        return self.error is None


Progress = Callable[[dict], None]
ShouldStop = Callable[[], bool]


class SweepExecutor(Protocol):
    """Runs the points of a sweep as independent jobs.

    `map` yields one SweepPoint per config as each finishes (completion order; `index` says which
    config it was), calls `progress({"step": done, "steps": total, "index": i, ...})` after each,
    and checks `should_stop()` before starting each point: when it answers True no new point
    starts, the running ones finish, and what was done is yielded. A CompressionError raised by
    fn (a config the method refuses) becomes that point's `error`; any other exception is a bug
    and propagates.
    """

    def map(self, fn: Callable[[Any], Any], configs: Iterable[Any], *,
            progress: Progress | None = None, should_stop: ShouldStop | None = None) -> Iterator[SweepPoint]:
        ...


def _run_point(fn: Callable[[Any], Any], index: int, config: Any) -> SweepPoint:
    start = time.perf_counter()
    try:
        result = fn(config)
    except CompressionError as exc:
        return SweepPoint(index, config, error=str(exc), seconds=time.perf_counter() - start)
    return SweepPoint(index, config, result=result, seconds=time.perf_counter() - start)


def _report(progress: Progress | None, point: SweepPoint, done: int, total: int) -> None:
    if progress is not None:
        progress({"step": done, "steps": total, "index": point.index, "seconds": point.seconds,
                  "error": point.error})


class InProcessExecutor:
    """Points one after another, in order, in the calling thread (the default).

    Inside a ui.jobs worker this is what a sweep wants: the job already holds the device, and
    a point that trains can poll the same `should_stop` for a quicker Stop.
    """

    def map(self, fn, configs, *, progress=None, should_stop=None):
        configs = list(configs)
        for done, (i, config) in enumerate(enumerate(configs), start=1):
            if should_stop is not None and should_stop():
                return
            point = _run_point(fn, i, config)
            _report(progress, point, done, len(configs))
            yield point


class FuturesExecutor:
    """Points on a `concurrent.futures.Executor`: a thread or process pool, or a distributed
    engine's executor (e.g. dask.distributed's `client.get_executor()`). With a process or
    remote pool, `fn` and the configs must be picklable (a module-level function, plain data).

    At most `max_pending` points are submitted at a time, so Stop takes effect quickly and a
    long sweep does not queue everything up front.
    """

    def __init__(self, pool: cf.Executor, max_pending: int = 4):
        if max_pending < 1:
            raise CompressionError(f"max_pending={max_pending} is out of range: expected an integer >= 1")
        self.pool = pool
        self.max_pending = max_pending

    def map(self, fn, configs, *, progress=None, should_stop=None):
        todo = list(enumerate(configs))
        total, done = len(todo), 0
        pending: set[cf.Future] = set()
        todo.reverse()  # pop() from the end = first config first
        try:
            while todo or pending:
                stopping = should_stop is not None and should_stop()
                while todo and not stopping and len(pending) < self.max_pending:
                    i, config = todo.pop()
                    pending.add(self.pool.submit(_run_point, fn, i, config))
                if not pending:
                    return
                finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    point = future.result()  # re-raises a bug in fn here
                    done += 1
                    _report(progress, point, done, total)
                    yield point
        finally:
            for future in pending:
                future.cancel()


_default: SweepExecutor = InProcessExecutor()


def default_executor() -> SweepExecutor:
    """The executor pages and commands use for sweeps; a deployment can swap it at start-up."""
    return _default


def set_default_executor(executor: SweepExecutor) -> SweepExecutor:
    """Make `executor` the one every sweep uses; returns the previous one."""
    global _default
    previous, _default = _default, executor
    return previous
