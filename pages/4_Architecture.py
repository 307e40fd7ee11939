"""Architecture design: depthwise-separable convolutions and low-rank Linear layers, from the
calculator to a converted, recovered zoo model."""

import streamlit as st

from compression.architecture import ArchitectureConfig, RecoveryConfig, compare_conv
from compression.charts.architecture import (architecture_pareto, layer_frame, recovery_chart, separable_diagram,
                                             weights_bars)
from compression.charts.format import fmt_bytes, fmt_count, fmt_ms, fmt_pct, fmt_points, fmt_short_count, plural
from compression.charts.runs import runs_frame
from ui import architecture as arch
from ui import cache, jobs, results, runtime_table
from ui.downloads import model_download
from ui.keep import keep_button
from ui.sidebar import show_error, sidebar

st.set_page_config(page_title="Architecture · Compression Explorer", layout="wide")
sel = sidebar()
st.title("Architecture design")
st.caption("Design a cheaper structure instead of trimming a trained one: a depthwise-separable "
           "convolution mixes space within each channel, then channels with 1×1 filters; a Linear "
           "layer becomes the product of two thin ones (low rank).")

# --- the calculator: pure arithmetic ---------------------------------------------------------
st.subheader("Calculator: standard vs depthwise-separable convolution")
cols = st.columns(4)
k = cols[0].slider("Kernel size k", 1, 11, 3, key="architecture_k")
i = cols[1].slider("Input channels I", 1, 1024, 2, key="architecture_i")
o = cols[2].slider("Output channels O", 1, 1024, 4, key="architecture_o")
size = cols[3].slider("Feature map side (pixels)", 1, 224, 8, key="architecture_size",
                      help="The output feature map is side × side; MACs = weights × positions.")
calc = compare_conv(k, i, o, size)
cols = st.columns(5)
cols[0].metric("Standard weights", f"{calc.standard_params:,}", help=f"k·k·I·O = {k}·{k}·{i}·{o}")
cols[1].metric("Separable weights", f"{calc.separable_params:,}", help=f"k·k·I + I·O = {k * k * i:,} + {i * o:,}")
cols[2].metric("Separable / standard", f"{calc.param_ratio:.4f}x",
               help="The same ratio holds for the MACs (without biases).")
cols[3].metric("Closed form 1/O + 1/k²", f"{calc.closed_form:.4f}", help=f"1/{o} + 1/{k * k}")
cols[4].metric(f"MACs at {size}×{size}", f"{fmt_count(calc.separable_macs)}",
               delta=f"standard {fmt_count(calc.standard_macs)}", delta_color="off", delta_arrow="off")
left, right = st.columns([3, 2])
left.plotly_chart(separable_diagram(k, i, o), width="stretch", key="architecture_diagram")
right.plotly_chart(weights_bars(calc), width="stretch", key="architecture_bars")
if k == 1:
    st.caption("With k = 1 there is nothing to separate: the 'depthwise' step only scales each channel.")
elif i == 1:
    st.caption("With I = 1 every output channel is a scaled copy of one k×k filter: the saving is "
               "small in absolute terms and the layer loses most of its freedom (MobileNet keeps its first conv).")

# --- convert the selected zoo model ----------------------------------------------------------
st.subheader(f"Convert {sel.model}")
cols = st.columns([2, 2, 2])
convert = cols[0].multiselect("Conversions", ["depthwise", "low-rank"], default=["depthwise", "low-rank"],
                              key="architecture_convert",
                              help="depthwise: every k×k conv (k > 1, ungrouped) becomes depthwise → BatchNorm → "
                                   "ReLU → pointwise. low-rank: every Linear layer becomes two, from its SVD.")
by = cols[1].radio("Low-rank by", ["kept energy", "rank"], horizontal=True, key="architecture_by")
if by == "rank":
    rank, energy = cols[1].slider("Rank K", 1, 256, 16, key="architecture_rank"), None
else:
    rank, energy = None, cols[1].slider("Kept energy (share of Σσ²)", 0.05, 1.0, 0.9, 0.01, key="architecture_energy")
keep_stem = cols[2].checkbox("Keep single-channel convs standard", key="architecture_keep_stem",
                             help="MobileNet keeps its first convolution: with I = 1 it saves little.")
seed = cols[2].number_input("Seed (new layers, data order)", 0, 10_000, 0, key="architecture_seed")
if not convert:
    st.info("Pick at least one conversion.")
    st.stop()
try:
    low = "low-rank" in convert
    cfg = ArchitectureConfig(convert=tuple(convert), rank=rank if low else None, energy=energy if low else None,
                             min_in_channels=2 if keep_stem else 1, seed=int(seed))
    base = arch.baseline(sel.model, sel.dataset, sel.device)
    entry = arch.live_converted(sel.model, sel.dataset, sel.device, tuple(cfg.to_dict().items()), sel.runtime)
except Exception as exc:
    show_error(exc)
    st.stop()
if entry is not None and entry.error is not None:  # raised in the worker: said (and logged) here
    show_error(entry.error)
    st.stop()
res = entry.latest.value if entry is not None else None


def converted_card(res: dict) -> None:
    if res is None:
        st.info("Converting and measuring accuracy on a sample of the test images…", icon=":material/hourglass_top:")
        return
    if res["stage"] == "subset":
        arch.subset_card(res, base)
        return
    cols = st.columns(5)
    results.accuracy_metric(cols[0], "Accuracy before training", fmt_pct(res["accuracy"]), res, base,
                            help=f"On {res['accuracy_n']:,} test images.")
    results.cost_metric(cols[1], "Parameters", fmt_short_count(res["params"]), res, base, "params",
                        help=f"{res['params']:,} parameters")
    results.cost_metric(cols[2], "MACs / image", fmt_count(res["macs"]), res, base, "macs")
    results.cost_metric(cols[3], "Size on disk", fmt_bytes(res["size_bytes"]), res, base, "size_bytes",
                        help="Bytes of the converted model's fp32 state_dict as written by torch.save.")
    results.cost_metric(cols[4], "Latency (batch 1)", fmt_ms(res["latency_ms"]), res, base, "latency_ms",
                        help=results.latency_help(res, base, "original"))
    results.sanity_note({**res, "baseline": base})
    keep_button(res["preview"], what="converted model (before recovery)")
    runtime_table.section("architecture_runtimes_job", res, res["preview"]["artifact"], what="original")
    model_download("architecture_converted", res, artifact=res["preview"]["artifact"], preview=res["preview"],
                   what="converted model")
    st.caption("Low-rank layers start from the SVD of the trained weights, so "
               "their accuracy shows at once; new depthwise and pointwise filters start untrained (a trained "
               "filter bank is far from separable), so a converted conv model needs recovery below.")
    with st.expander("Per-layer table: weights and MACs before and after (measured) and the calculator's prediction"):
        st.dataframe(layer_frame(res["layers"], res["totals"]), hide_index=True, width="stretch")


converted_card(res)

# --- recovery --------------------------------------------------------------------------------
st.subheader("Recover: match the new layers, then fine-tune or distill from the original")
cols = st.columns(5)
match = cols[0].select_slider("Layer matching (steps per new layer)", [0, 50, 100, 200, 300], 200,
                              key="architecture_match",
                              help="First fit each new layer to reproduce the original layer's output on 2,048 "
                                   "training images: the converted model then starts far above chance.")
method = cols[1].radio("Then", ["finetune", "distill"], horizontal=True, key="architecture_method",
                       help="finetune: labels only. distill: the original model's softened outputs "
                            "(T = 4, α = 0.9) guide the converted one.")
epochs = cols[2].slider("Epochs", 0, 20, 3, key="architecture_epochs")
subset = cols[3].select_slider("Training images per epoch", [2000, 5000, 10000, 20000, 55000], 10000,
                               key="architecture_subset")
if cols[4].button("Recover", type="primary", key="architecture_recover"):
    try:
        recovery = RecoveryConfig(method=method, epochs=epochs, subset=subset, match_steps=match, seed=int(seed))
        arch.start_recovery(sel.model, sel.dataset, sel.device, cfg, recovery, sel.runtime)
    except Exception as exc:
        show_error(exc)


def show_progress(job: jobs.Job) -> None:
    before = res["accuracy"] if res is not None and res["stage"] == "full" else None
    st.plotly_chart(recovery_chart(job.events, original=base["accuracy"], converted=before),
                    width="stretch", key=f"architecture_live_{len(job.events)}")


def show_result(job: jobs.Job) -> None:
    out = job.result
    if out is None:
        st.info("Stopped before the first epoch ended: nothing to measure.")
        return
    show_progress(job)
    st.success(f"Recovered ({out['config']['recover_match_steps']} matching steps per layer, "
               f"{out['config']['recover']} {plural(out['config']['recover_epochs'], 'epoch')}): "
               f"{fmt_pct(out['accuracy'])} on {out['accuracy_n']:,} test images "
               f"({fmt_points(out['accuracy'], base['accuracy'])} against the original), "
               f"{results.change_of(out, base, 'params').text} and {results.change_of(out, base, 'macs').text}. "
               f"Stored as run {out['run_id']}.")
    results.sanity_note({**out, "baseline": base})
    runtime_table.section("architecture_recovered_runtimes_job", out, what="original")
    model_download(f"architecture_recovered_{out['run_id']}", out, what="recovered model")


jobs.panel(arch.JOB_KEY, show_progress, show_result)

# --- every stored run of this model ----------------------------------------------------------
st.subheader("Accuracy against cost: every stored run")
axis = st.radio("x axis", ["size_bytes", "params", "macs"], horizontal=True, key="architecture_axis",
                format_func={"size_bytes": "stored size", "params": "parameters", "macs": "MACs"}.get)
try:
    runs = cache.run_store().runs(model=sel.model, dataset=sel.dataset)
    refs = arch.references(sel.model, sel.dataset, sel.device)
except Exception as exc:  # an unreadable store: a message, the rest of the page works
    show_error(exc)
    st.stop()
st.plotly_chart(architecture_pareto(runs_frame(runs), axis, baseline=base, references=refs),
                width="stretch", key="architecture_pareto")
st.caption(f"{len(runs)} stored run{'s' * (len(runs) != 1)} of {sel.model}. Architecture runs store real, "
           "smaller dense models: nothing here is simulated." + (" The diamond is ds_cnn, the same design "
           "trained from scratch." if refs else ""))
