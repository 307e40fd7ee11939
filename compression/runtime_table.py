"""One result on every runtime: the table a person reads before choosing where to deploy.

`all_runtimes(baseline_model, result_model, input_shape)` times the baseline and the result on each
runtime (compression.runtimes: eager, torch.compile, ONNX Runtime) at each batch size (default 1 and
256), the two interleaved in the same rounds (compression.timing.interleaved), so each row compares
like with like on one runtime at one batch size. A row holds both medians with their spreads (the
half-width of the 95 % interval of the median), the ratio baseline / result and that ratio in words
(compression.charts.format.fmt_change with both spreads: a ratio whose interval includes 1 reads
"no measurable change"). Where a runtime cannot run one of the two models (no C++ compiler for
inductor, an op the ONNX exporter refuses, a GPU for ONNX Runtime), the row holds the fallback
message instead of numbers: the eager rows already say what eager does.

`time_model(model, input_shape, runtime=)` times one model alone the same way (its median per batch
with its spread, and images/s): the home page's card, timed when asked rather than kept on disk.

Neither model is modified (compression.runtimes.prepare runs copies). Accuracy is not measured here:
every runtime computes the same function (docs/runtimes.md).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from compression import CompressionError
from compression.runtimes import DESCRIPTIONS, RUNTIMES, check_runtime, prepare

BATCH_SIZES = (1, 256)
BIG_BATCH_ROUNDS = {"rounds": 11, "calls": 1, "warmup": 2}  # time_model beyond batch 1: 13 calls
MAX_BATCH = 4096


def check_batch_sizes(batch_sizes: Sequence[int]) -> tuple[int, ...]:
    """The batch sizes as ints, or a one-line error naming the bad value."""
    sizes = tuple(batch_sizes)
    if not sizes:
        raise CompressionError("name at least one batch size")
    for b in sizes:
        if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= MAX_BATCH:
            raise CompressionError(f"batch size must be an integer in 1..{MAX_BATCH}, got {b!r}")
    return sizes


def all_runtimes(baseline_model: nn.Module, result_model: nn.Module, input_shape: tuple[int, ...],
                 device: torch.device | str = "cpu", *, batch_sizes: Sequence[int] = BATCH_SIZES,
                 runtimes: Sequence[str] = RUNTIMES, simulated: bool = False, timer: Callable | None = None,
                 progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 **prepare_kwargs: Any) -> list[dict[str, Any]]:
    """One row per runtime x batch size (runtimes outer, in the order given):

      runtime, description      the runtime asked for, in words
      batch                     the batch size timed
      baseline_ms, baseline_spread_ms, result_ms, result_spread_ms
                                medians (ms per batch) and their spreads, timed interleaved; None
                                where the runtime could not run a model
      ratio                     baseline_ms / result_ms (> 1: the result is faster); None likewise
      change                    the ratio in words ("1.49x faster", "no measurable change"), or "n/a"
      fallback                  why the runtime could not run the baseline or the result (else None)
      setup_s                   seconds spent compiling / exporting both models for this row

    `simulated`: the result's latency gain is not realized (a sparse model on dense kernels): the
    change says "(simulated)". `timer(fns, sync=)` replaces compression.timing.interleaved (tests);
    `prepare_kwargs` (compile_fn=, export_fn=) go to compression.runtimes.prepare. `progress` gets
    {"step", "steps", "phase"} before each row; `should_stop` ends the table after the current row."""
    from compression.charts.format import fmt_change
    from compression.device import synchronize
    from compression.timing import interleaved
    sizes = check_batch_sizes(batch_sizes)
    names = [check_runtime(r) for r in runtimes]
    if not names:
        raise CompressionError(f"name at least one runtime of {', '.join(RUNTIMES)}")
    device = torch.device(device)
    timer = timer or interleaved
    rows: list[dict[str, Any]] = []
    steps = len(names) * len(sizes)
    for name in names:
        for batch in sizes:
            if should_stop is not None and should_stop():
                return rows
            if progress is not None:
                progress({"step": len(rows), "steps": steps, "phase": f"{DESCRIPTIONS[name]}, batch {batch}"})
            row: dict[str, Any] = {"runtime": name, "description": DESCRIPTIONS[name], "batch": batch,
                                   "baseline_ms": None, "baseline_spread_ms": None, "result_ms": None,
                                   "result_spread_ms": None, "ratio": None, "change": "n/a", "fallback": None}
            start = time.perf_counter()
            base = prepare(baseline_model, input_shape, device, name, batch_size=batch, **prepare_kwargs)
            res = prepare(result_model, input_shape, device, name, batch_size=batch, **prepare_kwargs)
            row["setup_s"] = round(time.perf_counter() - start, 2)
            problems = [f"the {what}: {r.fallback}" for what, r in (("baseline", base), ("result", res)) if r.fallback]
            if problems:
                row["fallback"] = "; ".join(problems)
                rows.append(row)
                continue
            x = torch.randn(batch, *input_shape, device=device)
            timed = timer({"baseline": lambda: base.run(x), "result": lambda: res.run(x)},
                          sync=lambda: synchronize(device))
            b, r = timed["baseline"], timed["result"]
            row.update(baseline_ms=b.median_ms, baseline_spread_ms=b.spread_ms, result_ms=r.median_ms,
                       result_spread_ms=r.spread_ms, ratio=b.median_ms / r.median_ms if r.median_ms > 0 else None,
                       change=fmt_change(r.median_ms, b.median_ms, "latency_ms", simulated=simulated,
                                         spread=b.spread_ms + r.spread_ms).text)
            rows.append(row)
    if progress is not None:
        progress({"step": steps, "steps": steps, "phase": "done"})
    return rows


def time_model(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu",
               runtime: str | None = None, *, batch_sizes: Sequence[int] = BATCH_SIZES,
               timer: Callable | None = None, **prepare_kwargs: Any) -> dict[str, Any]:
    """One model alone on one runtime (the home page's latency and images/s, timed now, not kept):

      runtime     the runtime it ran on (eager where the one asked for could not run it)
      fallback    why the runtime asked for could not run it (else None)
      rows        per batch size: batch, median_ms, spread_ms, lo_ms, hi_ms (the median per batch and
                  its 95 % interval, compression.timing: 21 rounds of 2 calls at batch 1, 11 rounds of
                  one call beyond), images_per_s (batch / median)

    The model is not modified (compression.runtimes.prepare runs a copy)."""
    from compression.device import synchronize
    from compression.timing import OtherCpu, interleaved
    sizes = check_batch_sizes(batch_sizes)
    device = torch.device(device)
    timer = timer or interleaved
    out: dict[str, Any] = {"runtime": None, "fallback": None, "rows": [], "other_cores": None}
    with OtherCpu() as other:
        for batch in sizes:
            runner = prepare(model, input_shape, device, runtime, batch_size=batch, **prepare_kwargs)
            out["runtime"], out["fallback"] = runner.runtime, runner.fallback
            x = torch.randn(batch, *input_shape, device=device)
            big = batch > 1  # one call per round, fewer rounds: a large model's batch takes seconds
            t = timer({"model": lambda: runner.run(x)}, **(BIG_BATCH_ROUNDS if big else {}),
                      sync=lambda: synchronize(device))["model"]
            out["rows"].append({"batch": batch, "median_ms": t.median_ms, "spread_ms": t.spread_ms,
                                "lo_ms": t.lo_ms, "hi_ms": t.hi_ms,
                                "images_per_s": batch / t.median_ms * 1000.0 if t.median_ms > 0 else None})
    out["other_cores"] = other.cores
    return out
