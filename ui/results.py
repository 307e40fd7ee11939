"""What every result card shares: a metric whose change is said one way (compression.charts.format.
fmt_change: green better, red worse, grey unchanged or simulated, no arrow on a simulated value),
the honesty sentence (compression.honesty.honesty_sentence) and the sanity warning next to the
accuracy (compression.honesty.sanity_warning). Streamlit glue only; the words come from the core."""

from __future__ import annotations

from typing import Any, Mapping

import streamlit as st

from compression.charts.format import Change, fmt_change, fmt_points, latency_change
from compression.honesty import honesty_sentence, sanity_warning, simulated_metrics


def _value(base: Any, key: str) -> Any:
    if base is None:
        return None
    return base.get(key) if isinstance(base, Mapping) else getattr(base, key, None)


def change_of(run: Mapping[str, Any], base: Any, key: str, *, spread: float | None = None) -> Change:
    """`run[key]` against the baseline's, "(simulated)" where the run's simulated_metrics list it.
    Latency without an explicit `spread`: against the baseline re-timed interleaved with the run,
    with both spreads (compression.charts.format.latency_change: noise is not a change)."""
    if key == "latency_ms" and spread is None:
        return latency_change(run, base)
    return fmt_change(run.get(key), _value(base, key), key, simulated=key in simulated_metrics(run), spread=spread)


def metric(col, label: str, value: str, change: Change | None = None, *, help: str | None = None) -> None:
    """st.metric with the change's delta, color and arrow (none without a change)."""
    if change is None:
        col.metric(label, value, help=help)
    else:
        col.metric(label, value, help=help, **change.metric_delta())


def cost_metric(col, label: str, value: str, run: Mapping[str, Any], base: Any, key: str, *,
                help: str | None = None, spread: float | None = None) -> Change:
    """A cost (size_bytes, params, nonzero_params, macs, latency_ms) against the baseline's."""
    change = change_of(run, base, key, spread=spread)
    metric(col, label, value, change if change.text != "n/a" else None, help=help)
    return change


def latency_help(run: Mapping[str, Any], base: Any, what: str = "baseline") -> str:
    """The latency metric's help: how it was timed (interleaved with `what`, on the run's runtime),
    both medians with their spreads, and a runtime fallback or a re-time when there was one."""
    from compression.charts.format import fmt_ms
    base_ms = run.get("baseline_latency_ms") or _value(base, "latency_ms")
    if run.get("baseline_latency_ms") is None:  # a run from before latency was timed side by side
        return f"Median of timed batch-1 passes on {run.get('device')}; {what} {fmt_ms(base_ms or 0)}."
    text = (f"Median of rounds timed interleaved with the {what} on {run.get('device')} "
            f"({runtime_name(run)}): {fmt_ms(run['latency_ms'])} ± {fmt_ms(run.get('latency_spread_ms') or 0)}, "
            f"{what} {fmt_ms(base_ms)} ± {fmt_ms(run.get('baseline_latency_spread_ms') or 0)} (95 % intervals of the "
            "medians; overlapping: no measurable change).")
    if run.get("runtime_fallback"):
        text += f" Runtime: {run['runtime_fallback']}."
    if run.get("latency_retimed"):
        text += f" Latency {run['latency_retimed']}."
    return text


def runtime_name(run: Mapping[str, Any]) -> str:
    """The runtime a run's latency was timed on, in words ("ONNX Runtime (CPUExecutionProvider)");
    a run stored before runtimes were recorded was timed in PyTorch eager."""
    from compression.runtimes import DESCRIPTIONS
    runtime = run.get("runtime") or "eager"
    return DESCRIPTIONS.get(runtime, runtime)


def runtime_kwargs(runtime: str) -> dict[str, str]:
    """`runtime=` for a cached call, empty for eager: eager calls keep the cache keys they always had
    (the warm start computes them without a runtime)."""
    return {} if runtime == "eager" else {"runtime": runtime}


def accuracy_metric(col, label: str, value: str, run: Mapping[str, Any], base: Any, *, help: str | None = None) -> None:
    """Accuracy with its change in points (green up, red down)."""
    ref = _value(base, "accuracy")
    col.metric(label, value, fmt_points(run["accuracy"], ref) if ref is not None else None, help=help)


def honesty_note(run: Any, more: str = "") -> None:
    """The one honesty sentence (warning when something is simulated, success otherwise), `more` after it."""
    text = honesty_sentence(run) + (f" {more}" if more else "")
    if simulated_metrics(run):
        st.warning(text, icon=":material/science:")
    elif sanity_warning(run):  # real gains of a model that no longer classifies are nothing to be green about
        st.info(text)
    else:
        st.success(text)


def sanity_note(run: Any, *, classes: int | None = None) -> str | None:
    """A warning right under the numbers when the accuracy is at chance or far below the baseline."""
    text = sanity_warning(run, classes=classes)
    if text:
        st.warning(text, icon="⚠️")
    return text


def accuracy_caption(r: Mapping[str, Any], partial: bool, original: str) -> None:
    """The accuracy's 95 % interval under a result card: on all test images, or for a first stage on
    how many of them, beside `original` (the uncompressed model) on the same images."""
    from compression.charts.format import fmt_pct
    from compression.metrics import wilson_interval
    from ui.live import stage_caption
    lo, hi = wilson_interval(r["accuracy"], r["accuracy_n"])
    interval = f"95 % interval {lo * 100:.2f}–{hi * 100:.2f} %"
    if partial:
        st.caption(f"Test accuracy {stage_caption(r['accuracy_n'], r['of'], classes=r.get('classes'))}: {interval}; {original} on the same "
                   f"images: {fmt_pct(r['baseline']['accuracy'])}.")
    else:
        st.caption(f"Test accuracy on all {r['accuracy_n']:,} test images: {interval}.")
