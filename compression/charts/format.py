"""Numbers with units, the same way on every page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from compression.metrics import wilson_interval


def fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}" if n / size < 10 else f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def fmt_count(n: float) -> str:
    """1.82 G, 266.61 k, 950: the unit chosen after rounding (999,999,999 is 1.00 G, not 1000.00 M)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size * (1 - 5e-6):  # what would print as 1000.00 of the unit below
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"


def fmt_short_count(n: float) -> str:
    """A count short enough for a metric tile, which cuts long values ("11,181,…"): exact below a
    million ("266,610"), compact from there ("11.18 M"); give the exact number in the tile's help."""
    return f"{n:,.0f}" if abs(n) < 1e6 else fmt_count(n)


def fmt_pct(x: float, digits: int = 2) -> str:
    return f"{x * 100:.{digits}f} %"


def fmt_accuracy_ci(accuracy: float, n: int) -> str:
    lo, hi = wilson_interval(accuracy, n)
    return f"95% CI {lo * 100:.2f}–{hi * 100:.2f} % on {n:,} test images"


def fmt_ms(ms: float) -> str:
    return f"{ms * 1000:.0f} µs" if ms < 1 else f"{ms:.2f} ms"


def fmt_ms_spread(ms: float | None, spread: float | None) -> str:
    """A median latency with its spread in one unit: '0.920 ± 0.011 ms', '45.3 ± 16.8 ms'; '–' without one."""
    if ms is None:
        return "–"
    digits = 3 if ms < 10 else 1
    return f"{ms:.{digits}f} ± {(spread or 0.0):.{digits}f} ms"


# ---------------------------------------------------------------------------------------------
# better or worse: the one way every page, the explorer, the report and the CLI say a change

# kind -> (word when smaller, word when larger); lower is better for every one of them
_CHANGE_WORDS = {
    "size_bytes": ("smaller", "larger"),
    "macs": ("fewer MACs", "more MACs"),
    "latency_ms": ("faster", "slower"),
    "params": ("fewer parameters", "more parameters"),
    "nonzero_params": ("fewer nonzero parameters", "more nonzero parameters"),
}
_KIND_ALIASES = {"bytes": "size_bytes", "size": "size_bytes", "latency": "latency_ms", "parameters": "params",
                 "nonzero": "nonzero_params"}
LATENCY_NOISE = 0.05  # latency ratios within ±5 % are "no measurable change" when no spread is known
NO_CHANGE = "no measurable change"


@dataclass(frozen=True)
class Change:
    """A change said in words: `text` ("4.23x smaller", "1.50x faster (simulated)", "no measurable
    change") and `direction` (better | worse | same | simulated); `ratio` is old / new (above 1:
    the new one is cheaper), None when it cannot be computed."""
    text: str
    direction: str
    ratio: float | None = None

    def metric_delta(self) -> dict:
        """Keyword arguments for st.metric's delta: green for better, red for worse, grey for
        unchanged or simulated; the arrow follows the quantity (down: smaller, fewer, faster) and
        there is none on an unchanged or simulated value."""
        color = {"better": "green", "worse": "red"}.get(self.direction, "gray")
        arrow = "off"
        if self.direction in ("better", "worse") and self.ratio:
            arrow = "down" if self.ratio > 1 else "up"
        return {"delta": self.text, "delta_color": color, "delta_arrow": arrow}


def _times(r: float) -> str:
    """1.04x, 4.23x, 33.7x, 120x: enough digits to see the change, no more."""
    text = f"{r:.2f}" if r < 10 else f"{r:.1f}" if r < 100 else f"{r:.0f}"
    return (f"{r:.3f}" if text == "1.00" else text) + "x"


def fmt_change(new: float | None, old: float | None, kind: str, *, simulated: bool = False,
               spread: float | None = None) -> Change:
    """How `new` compares with `old` for a cost where lower is better: kind `size_bytes` ("bytes"),
    `macs`, `latency_ms` ("latency"), `params`, `nonzero_params`.

    Ratios are always said as a factor above 1 in words: "4.23x smaller" / "1.30x larger",
    "2.10x fewer MACs" / "more MACs", "1.50x faster" / "1.20x slower", "3.00x fewer parameters".
    Equal values are "no measurable change". For latency, which is timed and moves between runs,
    it is also "no measurable change" when |new - old| <= `spread` (in ms: the sum of the two
    medians' spreads, the half-widths of their 95 % intervals (compression.timing), which is when
    the interval of the ratio includes 1; `latency_change` passes it), or, when no spread is known,
    when the ratio is within ±5 % (LATENCY_NOISE). Counts and bytes are exact: any difference is said.
    `simulated`: the new value's gain is not realized (compression.honesty): " (simulated)" is
    appended and the direction is "simulated" (grey, no arrow). Missing or non-positive numbers: "n/a".
    """
    kind = _KIND_ALIASES.get(kind, kind)
    if kind not in _CHANGE_WORDS:
        raise ValueError(f"fmt_change: unknown kind {kind!r}; choose one of {', '.join(_CHANGE_WORDS)}")
    try:
        new_f, old_f = float(new), float(old)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return Change("n/a", "same")
    if not (math.isfinite(new_f) and math.isfinite(old_f)) or new_f <= 0 or old_f <= 0:
        return Change("n/a", "same")
    ratio = old_f / new_f
    same = new_f == old_f
    if kind == "latency_ms" and not same:
        same = (abs(new_f - old_f) <= spread) if spread is not None else \
            max(ratio, 1 / ratio) <= 1 + LATENCY_NOISE
    smaller, larger = _CHANGE_WORDS[kind]
    if same:
        text, direction = NO_CHANGE, "same"
    elif ratio > 1:
        text, direction = f"{_times(ratio)} {smaller}", "better"
    else:
        text, direction = f"{_times(1 / ratio)} {larger}", "worse"
    if simulated:
        return Change(f"{text} (simulated)", "simulated", ratio)
    return Change(text, direction, ratio)


def run_field(run, key: str):
    """`key` of a Result (metrics, then extra), a Result.to_dict() / CLI JSON object (top level) or a
    stored run (top level, then its decoded `extra`)."""
    if hasattr(run, "metrics") and hasattr(run, "extra"):
        return getattr(run.metrics, key, None) if hasattr(run.metrics, key) else run.extra.get(key)
    if not isinstance(run, Mapping):
        return None
    value = run.get(key)
    if value is not None and not (isinstance(value, float) and math.isnan(value)):  # NaN: a frame's empty cell
        return value
    extra = run.get("extra")
    return extra.get(key) if isinstance(extra, Mapping) else None


def _baseline_latency(run, base=None):
    if base is None:
        base = run.baseline if hasattr(run, "metrics") else run.get("baseline") if isinstance(run, Mapping) else None
    if base is None:
        return None
    return base.get("latency_ms") if isinstance(base, Mapping) else getattr(base, "latency_ms", None)


UNRELIABLE = "latency baseline unreliable"
UNRELIABLE_WHY = ("this run was stored before its baseline was timed beside it: its baseline latency is one shared "
                  "timing that may have been taken while the machine was busy, so no latency ratio is given")


def _method_of(run) -> str | None:
    return getattr(run, "method", None) if hasattr(run, "metrics") else run.get("method") if isinstance(run, Mapping) else None


def latency_change(run, base=None) -> Change:
    """A run's batch-1 latency against its baseline's, the noise rule applied: against the baseline
    re-timed interleaved with it on the same runtime (`baseline_latency_ms`), with both spreads, so
    that a ratio whose 95 % interval includes 1 reads "no measurable change". The one way every view
    says it (cards, story, CSV, report, `runs --json`, compare).

    A stored run without an interleaved baseline (stored before baselines were timed beside each run)
    reads "latency baseline unreliable" (UNRELIABLE, no ratio): its `baseline.latency_ms` is one
    shared timing. Only a caller that passes `base` (a baseline it timed itself, for a result not
    stored yet) gets a ratio against it, with the ±5 % rule. "(simulated)" where the run's
    simulated_metrics list latency. `run`: a Result, a Result.to_dict() / CLI JSON object, a stored
    run or an explorer frame row."""
    from compression.honesty import simulated_metrics
    new, old = run_field(run, "latency_ms"), run_field(run, "baseline_latency_ms")
    spread = None
    if old is not None:
        s_new, s_old = run_field(run, "latency_spread_ms"), run_field(run, "baseline_latency_spread_ms")
        if s_new is not None and s_old is not None:
            spread = float(s_new) + float(s_old)
    elif base is not None:
        old = _baseline_latency(run, base)
    elif _baseline_latency(run) is not None and _method_of(run) != "baseline":
        return Change(UNRELIABLE, "unreliable")
    return fmt_change(new, old, "latency_ms", simulated="latency_ms" in simulated_metrics(run), spread=spread)


CHANGE_COLUMNS = {"size_bytes": "size vs baseline", "macs": "MACs vs baseline", "latency_ms": "latency vs baseline"}


def run_changes(run) -> dict[str, Change | None]:
    """A run against its uncompressed baseline, key -> Change (None where either number is missing):
    size_bytes, macs and latency_ms said the one way (`fmt_change`, `latency_change`). The story table,
    the CSV, the report, the cards and `runs --json` all take their words and ratios from here."""
    from compression.honesty import simulated_metrics
    base = run.baseline if hasattr(run, "metrics") else run.get("baseline") if isinstance(run, Mapping) else None
    if base is not None and not isinstance(base, Mapping):
        base = base.to_dict()
    base = base or {}
    sim = simulated_metrics(run)
    out: dict[str, Change | None] = {}
    for key in ("size_bytes", "macs"):
        new, old = run_field(run, key), base.get(key)
        out[key] = fmt_change(new, old, key, simulated=key in sim) if new and old else None
    has_latency = run_field(run, "latency_ms") is not None and (
        base.get("latency_ms") is not None or run_field(run, "baseline_latency_ms") is not None)
    out["latency_ms"] = latency_change(run) if has_latency else None
    return out


def changes_json(run) -> dict[str, dict]:
    """`run_changes` as JSON for `runs --json`: {key: {"text", "ratio"}} (ratio: baseline / run,
    above 1 = cheaper; None where no ratio is given)."""
    return {k: {"text": c.text, "ratio": None if c.ratio is None else round(c.ratio, 6)}
            for k, c in run_changes(run).items() if c is not None}


def fmt_points(new: float, old: float | None) -> str:
    """An accuracy change in percentage points: '+0.12 points', '-1.68 points'."""
    return f"{(new - old) * 100:+.2f} points" if old is not None else "–"


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 run', '2 runs', '1,024 images' (words: an irregular plural)."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"
