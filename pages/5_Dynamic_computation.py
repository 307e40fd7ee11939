"""Dynamic computation: early exits with a threshold slider (dynamic depth) and a slimmable
network's width selector (dynamic width). Every number is measured on the test set; the slider
reads a cached table of every exit's verdict, so it answers at once."""

import streamlit as st

from compression.charts.dynamic import exit_bars, exit_curve, width_chart
from compression.charts.format import (fmt_bytes, fmt_change, fmt_count, fmt_ms, fmt_ms_spread, fmt_pct, fmt_points,
                                       fmt_short_count, latency_change, run_field)
from compression.dynamic import CRITERIA, EarlyExitConfig
from ui import cache
from ui import dynamic as dyn
from ui.downloads import model_download
from ui.results import metric, sanity_note
from ui.sidebar import show_error, sidebar

st.set_page_config(page_title="Dynamic computation", layout="wide")
sel = sidebar()
st.title("Dynamic computation")
st.caption("One model, computation chosen at run time: easy images leave at an early exit (dynamic depth); "
           "a slimmable network runs at a fraction of its width (dynamic width). Nothing here is simulated: "
           "MACs are counted on the layers an image really runs, latency is timed with the later layers skipped.")
mode = st.radio("Mode", ["Dynamic depth (early exits)", "Dynamic width (slimmable)"], horizontal=True,
                key="dynamic_mode", label_visibility="collapsed")


def pick_model(kind: str, what: str, train: str, key: str) -> str | None:
    """The sidebar's model when it has exits / widths. Else a picker of the zoo's models that do,
    after one line naming the sidebar's model; the one picked becomes the sidebar's model, so the
    two never disagree. None when there are none to show."""
    if dyn.has_kind(sel.model, sel.dataset, sel.device, kind):
        return sel.model
    names = dyn.models_of_kind(sel.dataset, kind)
    if kind == "exits":
        dyn.attach_section(sel)
    if not names:
        st.info(f"{sel.model} has no {what}: pick a model with {what} in the sidebar "
                f"(`python -m compression zoo train {train}`).")
        return None
    st.info(f"{sel.model}, the sidebar's model, has no {what}. Pick one of the zoo's models with {what} for "
            f"{sel.dataset}: it becomes the sidebar's model.")
    return st.selectbox(f"Model with {what}", names, key=key, index=None, placeholder="choose a model…",
                        on_change=lambda: st.session_state.update(keep_sidebar_model=st.session_state[key]))


def depth_section() -> None:
    name = pick_model("exits", "early exits", "lenet5_exits", "dynamic_model")
    if name is None:
        return
    c1, c2, c3 = st.columns([2, 2, 1])
    c1.markdown(f"**Multi-exit model:** `{name}`")
    criterion = c2.radio("Leave when", CRITERIA, key="dynamic_criterion", horizontal=True,
                         format_func=lambda c: "confidence (max softmax) > T" if c == "confidence"
                         else "entropy / log(classes) < T")
    table = dyn.table(name, sel.dataset, sel.device)
    early = table.num_exits - 1
    per_exit = c3.checkbox("Per-exit thresholds", key="dynamic_per_exit", disabled=early < 2,
                           help="One threshold for each early exit instead of one for all.")
    keys = ([f"dynamic_threshold_{criterion}_{k}" for k in range(early)] if per_exit
            else [f"dynamic_threshold_{criterion}"])
    start = dyn.suggested(name, sel.dataset, sel.device, criterion, not per_exit)
    if st.session_state.get("dynamic_suggested_for") != (name, criterion, per_exit):
        st.session_state.update({k: float(t) for k, t in zip(keys, start)})
        st.session_state["dynamic_suggested_for"] = (name, criterion, per_exit)
    help_ = ("Starts at the threshold with the fewest mean MACs within 1 point of the full network's "
             "accuracy, chosen on the validation images. Confidence 1.0 (entropy 0.0) never leaves early.")
    cols = st.columns(len(keys))
    taus = [col.slider(f"Threshold T at exit {k + 1}" if per_exit else "Threshold T", 0.0, 1.0, step=0.001,
                       format="%.3f", key=key, help=help_) for k, (col, key) in enumerate(zip(cols, keys))]
    cfg = EarlyExitConfig(criterion, tuple(taus))
    p = dyn.point(name, sel.dataset, sel.device, cfg)
    full = p["full"]
    m = st.columns(4)
    m[0].metric("Accuracy", fmt_pct(p["accuracy"]), fmt_points(p["accuracy"], full["accuracy"]),
                help=f"Top-1 on {p['n']:,} test images; full network {fmt_pct(full['accuracy'])}.")
    metric(m[1], "Mean MACs / image", fmt_count(p["macs"]), fmt_change(p["macs"], full["macs"], "macs"),
           help=f"Against the full network's {fmt_count(full['macs'])} MACs. "
           "Each image costs the layers it ran plus every exit head it passed.")
    m[2].metric("Leave at exit 1", fmt_pct(p["exits"]["share"].iloc[0], 1))
    m[3].metric("Run to the end", fmt_pct(p["exits"]["share"].iloc[-1], 1))
    sanity_note({"method": "early-exit", "dataset": sel.dataset, "accuracy": p["accuracy"], "baseline": full})
    left, right = st.columns([3, 2])
    left.plotly_chart(exit_curve(dyn.curve(name, sel.dataset, sel.device, criterion), current=p, full=full,
                                 title="Accuracy vs mean MACs over 200 thresholds"), width="stretch")
    right.markdown("**Where images leave** (bar labels: accuracy of the images that left there)")
    right.plotly_chart(exit_bars(p["exits"]), width="stretch")
    show_examples(name, p)
    speed_section(name, cfg)


def show_examples(name: str, p: dict) -> None:
    data = cache.dataset(sel.dataset)
    ex = dyn.examples(name, sel.dataset, sel.device, p["exit_index"])
    for group, title in (("first", "Easy: left at the first exit"), ("last", "Hard: went all the way")):
        st.markdown(f"**{title}**")
        if not ex[group]:
            st.caption("No test image at this threshold.")
            continue
        for col, e in zip(st.columns(6), ex[group]):
            truth = int(data.test.labels[e["index"]])
            col.image(data.test.images[e["index"]].permute(1, 2, 0).squeeze(-1).numpy(), width=72, clamp=True)
            steps = " → ".join(f"exit {k + 1}: {data.classes[c]} {conf * 100:.0f}%"
                               for k, (c, conf) in enumerate(e["steps"]))
            col.caption(f"{steps}  \ntrue: {data.classes[truth]}")


def speed_section(name: str, cfg: EarlyExitConfig) -> None:
    st.subheader("Measured speed")
    st.caption(f"Batch 1: 300 test images timed one by one on {sel.device}, real early exit (later layers not run) "
               "against the full network, interleaved. Batched: 8 batches of 256, images that left are dropped "
               "from the batch as it goes on. Saving stores this threshold in the run store.")
    if st.button("Measure speed and save this threshold", key="dynamic_measure"):
        try:
            st.session_state["dynamic_last"] = dyn.measure_and_store(name, sel.dataset, sel.device, cfg,
                                                                           sel.runtime)
        except Exception as exc:
            show_error(exc)
    r = st.session_state.get("dynamic_last")
    if r and r["model"] == name:
        st.caption(f"Run {r['run_id']}: {r['criterion']} thresholds {r['thresholds']}, "
                   f"accuracy {fmt_pct(r['accuracy'])}. Timed in PyTorch eager"
                   + (f": {r['runtime_fallback']}." if r.get("runtime_fallback") else "."))
        s = st.columns(4)
        early, full = (fmt_ms_spread(run_field(r, k), run_field(r, s_)) for k, s_ in (
            ("latency_ms", "latency_spread_ms"), ("baseline_latency_ms", "baseline_latency_spread_ms")))
        metric(s[0], "Latency, early exit (batch 1)", fmt_ms(r["latency_ms"]), latency_change(r),
               help=f"{r['latency_images']} images timed one by one: each exit's median weighted by its share, "
                    f"{early} (± the 95 % interval), against the full "
                    f"network's {full}, timed interleaved; median {fmt_ms(r['latency_median_ms'])}.")
        s[1].metric("Latency, full network", fmt_ms(r["full_latency_ms"]))
        metric(s[2], "Images / s, early exit (batch 256)", f"{r['throughput']:,.0f}",
               fmt_change(1 / r["throughput"], 1 / r["full_throughput"], "latency_ms"),
               help="Time per batch of 256 against the full network's.")
        s[3].metric("Images / s, full network", f"{r['full_throughput']:,.0f}")
        model_download(f"dynamic_exit_{r['run_id']}", r, what="early-exit model (every exit; the rule in its metadata)")


def width_section() -> None:
    name = pick_model("slim", "dynamic widths", "cnn_slim", "dynamic_slim_model")
    if name is None:
        return
    results = dyn.width_results(name, sel.dataset, sel.device)
    frame = dyn.width_frame(results)
    widths = [float(w) for w in frame["width"]]
    width = st.select_slider("Width multiplier", options=widths, value=widths[-1], key="dynamic_width",
                             help="The share of every hidden layer's channels; each width has its own BatchNorm.")
    r = results[widths.index(width)]
    base = r.baseline
    m = st.columns(5)
    m[0].metric("Accuracy", fmt_pct(r.metrics.accuracy), fmt_points(r.metrics.accuracy, base.accuracy),
                help=f"Top-1 on {r.metrics.accuracy_n:,} test images.")
    metric(m[1], "MACs / image", fmt_count(r.metrics.macs), fmt_change(r.metrics.macs, base.macs, "macs"),
           help="Against the same weights at full width.")
    metric(m[2], "Latency (batch 1)", fmt_ms(r.metrics.latency_ms),
           fmt_change(r.metrics.latency_ms, base.latency_ms, "latency_ms"),
           help=f"Median of 50 timed passes on {sel.device} in PyTorch eager, against full width; a kept width is "
                f"timed again beside full width on the sidebar's runtime ({sel.runtime}).")
    metric(m[3], "Parameters", fmt_short_count(r.metrics.params), fmt_change(r.metrics.params, base.params, "params"),
           help=f"{r.metrics.params:,} parameters")
    metric(m[4], "Size on disk", fmt_bytes(r.metrics.size_bytes),
           fmt_change(r.metrics.size_bytes, base.size_bytes, "size_bytes"),
           help="The plain model at this width, as saved by torch.save.")
    sanity_note(r)
    st.plotly_chart(width_chart(frame, current=width), width="stretch")
    st.caption(f"Channels at width {width}: {r.extra['channels']} (conv blocks and hidden units). "
               "Each width is measured as the plain network it becomes: its own bytes, MACs counted on it, "
               "its own latency.")
    kept = st.session_state.setdefault("dynamic_kept_widths", {})
    if (name, width, sel.runtime) not in kept and st.button("Keep this width", key="dynamic_save_width",
                                               icon=":material/bookmark_add:",
                                               help="Store it as a run, with the plain model's file, for the explorer."):
        kept[(name, width, sel.runtime)] = dyn.store_width(name, sel.dataset, sel.device, width, sel.runtime)
    if (name, width, sel.runtime) in kept:
        st.success(f"Kept as run {kept[(name, width, sel.runtime)]}, with its file: it is on the Pareto explorer.",
                   icon=":material/bookmark:")
        run = cache.run_store().get(kept[(name, width, sel.runtime)])
        if run is not None:
            model_download(f"dynamic_width_{run['id']}", run, what=f"width-{width} model")


try:
    if mode.startswith("Dynamic depth"):  # a statement: Streamlit's magic would write an expression's None
        depth_section()
    else:
        width_section()
except Exception as exc:
    show_error(exc)
