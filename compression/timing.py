"""Timing side by side: medians with their spread, and the rule that noise is not a change.

`interleaved(fns)` times several callables in rounds (a, b, a, b, ...: each round calls every
function `calls` times in turn, so a load drift on the machine hits all of them alike) and gives
each a `Timing`: the median ms per call over the rounds and the **95 % confidence interval of that
median**, distribution-free, from the order statistics of the rounds (the k-th smallest and k-th
largest round time, k the largest rank whose binomial(n, 1/2) tail is <= 2.5 %; 21 rounds: the
6th and 16th). `spread_ms` is the larger distance from the median to either end of that interval
(a half-width, so `median +- spread` covers the interval).

Two medians differ measurably only when their intervals do not overlap: |a - b| > spread_a +
spread_b, i.e. the interval of the ratio b / a, [(b - s_b) / (a + s_a), (b + s_b) / (a - s_a)],
does not include 1 (`measurable`, and compression.charts.format.fmt_change with `spread=`).

`time_against_baseline` is what every family's result goes through (compression.methods): the
result and its baseline timed interleaved at batch 1, and re-timed once when the ratio is outside
what the MACs allow (`implausible`).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

from compression.cancel import checkpoint

ROUNDS = 21          # rounds of interleaved timing (batch-1 latency of a result and its baseline)
CALLS = 2            # calls per function per round (their mean is the round's time)
WARMUP = 5           # untimed calls of each function first
PLAUSIBLE = 1.5      # a latency ratio more than 1.5x beyond what the MAC ratio explains is re-timed
BUSY_CORES = 0.5     # other programs kept more than half a core busy meanwhile: a timing is re-timed once


@dataclass(frozen=True)
class Timing:
    """One callable's time: median ms per call over the rounds, the 95 % interval of the median
    [lo_ms, hi_ms] and its half-width spread_ms = max(median - lo, hi - median)."""
    median_ms: float
    spread_ms: float
    lo_ms: float
    hi_ms: float
    rounds: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def median_interval(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval of the median: order statistics (k, n - k + 1), k the largest rank
    with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2 (21 samples: the 6th and 16th). Fewer than 9
    samples cannot do better than the whole range at 95 %: (min, max) then."""
    xs = sorted(samples)
    n = len(xs)
    if n == 0:
        raise ValueError("median_interval: no samples")
    alpha = (1 - confidence) / 2
    k, tail = 0, 0.0
    while True:  # tail = P(B <= k) after adding term k; rank k + 1 is allowed while P(B <= k) <= alpha
        tail += math.comb(n, k) / 2 ** n
        if tail > alpha or k + 1 > n // 2:
            break
        k += 1
    if k == 0:
        return xs[0], xs[-1]
    return xs[k - 1], xs[n - k]


def timing_of(samples_ms: Sequence[float]) -> Timing:
    med = statistics.median(samples_ms)
    lo, hi = median_interval(samples_ms)
    return Timing(med, max(med - lo, hi - med), lo, hi, len(samples_ms))


def interleaved(fns: Mapping[str, Callable[[], Any]], *, rounds: int | None = None, calls: int | None = None,
                warmup: int | None = None, sync: Callable[[], None] | None = None,
                clock: Callable[[], float] = time.perf_counter) -> dict[str, Timing]:
    """Each function's Timing (ms per call), timed in interleaved rounds (default ROUNDS rounds of
    CALLS calls after WARMUP untimed ones); the order within a round alternates (a b, b a, ...) so
    neither always runs right after the other. `sync` (e.g. a CUDA synchronize) is called before
    each clock read."""
    rounds, calls, warmup = rounds or ROUNDS, calls or CALLS, WARMUP if warmup is None else warmup
    sync = sync or (lambda: None)
    keys = list(fns)
    for key in keys:
        for _ in range(warmup):
            fns[key]()
    sync()
    times: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(rounds):
        checkpoint()  # a background job yields to a user here (compression.cancel)
        for key in (keys if r % 2 == 0 else keys[::-1]):
            fn = fns[key]
            start = clock()
            for _ in range(calls):
                fn()
            sync()
            times[key].append((clock() - start) / calls * 1000.0)
    return {k: timing_of(v) for k, v in times.items()}


def measurable(new: float, old: float, spread_new: float | None, spread_old: float | None) -> bool:
    """True when the two medians' 95 % intervals do not overlap (the ratio's interval excludes 1)."""
    return abs(new - old) > (spread_new or 0.0) + (spread_old or 0.0)


def implausible(result_ms: float, baseline_ms: float, result_macs: float | None, baseline_macs: float | None,
                factor: float = PLAUSIBLE) -> str | None:
    """Why a latency ratio is outside what the MACs allow, or None: the result faster than the
    baseline by more than `factor` x the MAC ratio would explain, or slower by more than `factor`
    with no more MACs than the baseline."""
    if not (result_ms > 0 and baseline_ms > 0 and result_macs and baseline_macs):
        return None
    speedup = baseline_ms / result_ms
    mac_ratio = baseline_macs / result_macs
    if speedup > factor * mac_ratio:
        return (f"{speedup:.2f}x faster with {mac_ratio:.2f}x fewer MACs: more than {factor}x beyond what the "
                "MACs explain")
    if speedup < 1 / factor and result_macs <= baseline_macs:
        return f"{1 / speedup:.2f}x slower with no more MACs than the baseline"
    return None


Timer = Callable[..., Mapping[str, Timing]]


def time_against_baseline(result_fn: Callable[[], Any], baseline_fn: Callable[[], Any], *,
                          result_macs: float | None = None, baseline_macs: float | None = None,
                          timer: Timer | None = None, sync: Callable[[], None] | None = None) -> dict[str, Any]:
    """The result and its baseline timed interleaved (batch 1 in compression.methods), as the keys
    every Result's extra carries:

      latency_ms                   the result's median (ms), Metrics.latency_ms
      latency_spread_ms            its spread (half-width of the 95 % interval of the median)
      baseline_latency_ms          the baseline's median, timed in the same rounds
      baseline_latency_spread_ms   its spread
      latency_retimed              only when the first timing was implausible (see `implausible`):
                                   "re-timed: ..." with the first timing's numbers; the second is kept

    `timer(fns, sync=...)` returns {"result": Timing, "baseline": Timing} (default: `interleaved`;
    tests inject a fake one)."""
    timer = timer or interleaved
    fns = {"result": result_fn, "baseline": baseline_fn}
    timed, load = quiet(lambda: timer(fns, sync=sync))
    out: dict[str, Any] = {}
    why = implausible(timed["result"].median_ms, timed["baseline"].median_ms, result_macs, baseline_macs)
    if why:
        first = timed
        timed, load = quiet(lambda: timer(fns, sync=sync))
        out["latency_retimed"] = (f"re-timed: the first timing ({first['result'].median_ms:.4g} ms against "
                                  f"{first['baseline'].median_ms:.4g} ms) was {why}; the second timing is shown")
    out.update(latency_ms=timed["result"].median_ms, latency_spread_ms=timed["result"].spread_ms,
               baseline_latency_ms=timed["baseline"].median_ms,
               baseline_latency_spread_ms=timed["baseline"].spread_ms, **load)
    return out


def quiet(time_it: Callable[[], Any], *, busy_cores: float = BUSY_CORES,
          other: Callable[[], "OtherCpu"] | None = None, alone: bool = False) -> tuple[Any, dict[str, Any]]:
    """Run a timing while watching what other programs do (OtherCpu); when they kept more than
    `busy_cores` cores busy, time once more. Returns (the timing kept, what to record with it):
    `latency_other_cores` (cores others used during the kept timing, when it could be read) and,
    when the second timing was busy too, `latency_busy` (a sentence saying so). Interleaved
    rounds share a steady load between a result and its baseline, so their ratio stands; a
    single model timed alone does not, which is why a busy one is marked (compression.metrics
    does not keep a busy baseline timing). `alone`: a single model timed by itself; a timing too
    short for /proc/stat to say (under OtherCpu.MIN_WALL) is followed by a look of that length at
    what the others do, so a busy machine is seen however fast the model is."""
    other = other or OtherCpu

    def watched():
        watch = other()
        with watch:
            out = time_it()
        if watch.cores is None and alone:
            watch = other()
            with watch:
                time.sleep(OtherCpu.MIN_WALL)
        return out, watch

    timed, watch = watched()
    if watch.cores is not None and watch.cores > busy_cores:
        first = watch.cores
        timed, watch = watched()
        if watch.cores is not None and watch.cores > busy_cores:
            return timed, {"latency_other_cores": round(watch.cores, 2),
                           "latency_busy": (f"timed while other programs kept {watch.cores:.1f} cores busy "
                                            f"(first try {first:.1f})")}
    return timed, ({"latency_other_cores": round(watch.cores, 2)} if watch.cores is not None else {})


class OtherCpu:
    """How many cores other processes kept busy while the block ran (Linux: /proc/stat's busy
    jiffies of all CPUs, less this process's own CPU time, over the wall time); `cores` is None
    where /proc/stat cannot be read or the block was too short to say (under 0.1 s).

        with OtherCpu() as other:
            time_something()
        other.cores   # e.g. 0.93: another program used about one core meanwhile
    """

    MIN_WALL = 0.1

    def __init__(self) -> None:
        self.cores: float | None = None

    @staticmethod
    def _busy_seconds() -> float | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:9]]
            return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def _own_seconds() -> float:
        t = os.times()
        return t.user + t.system

    def __enter__(self) -> "OtherCpu":
        self._start = (time.perf_counter(), self._busy_seconds(), self._own_seconds())
        return self

    def __exit__(self, *exc: object) -> None:
        wall0, busy0, own0 = self._start
        wall, busy = time.perf_counter() - wall0, self._busy_seconds()
        if busy0 is None or busy is None or wall < self.MIN_WALL:
            return
        self.cores = max(0.0, (busy - busy0) - (self._own_seconds() - own0)) / wall
