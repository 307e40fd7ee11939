"""Quantization: store a model's weights (and activations) with fewer bits, then measure accuracy,
the bytes of the packed artifact, and latency from a real int8 kernel where one runs."""

import pandas as pd
import streamlit as st

from compression import CompressionError
from compression.charts.format import fmt_pct
from compression.charts.quantization import (accuracy_vs_bits, accuracy_vs_bytes, qat_curve, sensitivity_bars,
                                             sweep_frame, weight_histogram)
from compression.charts.runs import accuracy_vs_size, runs_frame
from compression.quantization import CLUSTER_BITS, METHODS, WEIGHT_BITS, QuantConfig
from ui import cache, jobs
from ui import quantization as q
from ui.sidebar import load_selection, show_error, sidebar

st.set_page_config(page_title="Quantization · Compression Explorer", layout="wide")
sel = sidebar()
st.title("Quantization")
st.caption("Fewer bits per weight: uniform b-bit integers, k-means weight clustering (optionally Huffman-coded), "
           "binary or ternary weights. Sizes are the bytes of the packed file you can download; latency comes from "
           "a real int8 kernel only where one runs, and says so.")
data, base = load_selection(sel)

HELP = {"uniform": "b-bit integers with a scale (and zero point) per tensor or output channel",
        "cluster": "k-means the layer's weights into 2^b shared values: codebook + b-bit index per weight",
        "cluster-huffman": "clustering, with the indices Huffman-coded (frequent clusters get short codes)",
        "binary": "1 bit per weight: sign(w) times a per-channel scale", "ternary": "-1, 0, +1 times a scale: 1.6 bits"}
c1, c2, c3 = st.columns([2, 3, 2])
method = c1.selectbox("Method", METHODS, key="quant_method", help="; ".join(f"{k}: {v}" for k, v in HELP.items()))
options = list(CLUSTER_BITS) if method.startswith("cluster") else list(WEIGHT_BITS)
if st.session_state.get("quant_bits") not in options:
    st.session_state["quant_bits"] = 8
bits = c2.select_slider("Weight bits", options, key="quant_bits", disabled=method in ("binary", "ternary"),
                        help="16 = float16 and 32 = float32, for reference. Binary and ternary fix the bits.")
act = c3.selectbox("Activation bits", ["none", 8, 4], key="quant_act",
                   help="Round each layer's input too, with ranges calibrated on validation images.")
c4, c5, c6, c7 = st.columns(4)
granularity = c4.radio("Scales", ["channel", "tensor"], key="quant_granularity", horizontal=True,
                       format_func=lambda g: f"per {g}")
symmetric = c5.toggle("Symmetric range", value=True, key="quant_symmetric", disabled=method != "uniform",
                      help="Symmetric: zero maps to integer 0, no zero point. Asymmetric: an affine range.")
calibration = c6.slider("Calibration images", 32, 2048, 512, step=32, key="quant_calibration",
                        help="Validation images for activation ranges and the int8 kernel's calibration.")
qat_epochs = c7.number_input("QAT epochs", 0, 10, 0, key="quant_qat_epochs",
                             help="Quantization-aware fine-tuning (straight-through estimator); runs in the background.")
with st.expander("Per-layer bits (mixed precision)"):
    table = pd.DataFrame(q.layers(sel.model, sel.dataset, sel.device)).assign(bits=bits)
    edited = st.data_editor(table, key="quant_layer_table", disabled=["layer", "type", "weights"], hide_index=True,
                            column_config={"bits": st.column_config.SelectboxColumn(
                                "bits", options=sorted(set(options) | {32}), help="32 keeps the layer in float32")})
    layer_bits = {r.layer: int(r.bits) for r in edited.itertuples() if int(r.bits) != bits}
try:
    cfg = QuantConfig(method=method, bits=bits, granularity=granularity, symmetric=symmetric,
                      activation_bits=None if act == "none" else int(act), calibration_size=calibration,
                      qat_epochs=int(qat_epochs), layer_bits=layer_bits)
except CompressionError as exc:
    show_error(exc)
    st.stop()


def show_result(out: dict) -> None:
    q.result_card(out, base)


mode = st.radio("Mode", ["Single run", "Sweep"], key="quant_mode", horizontal=True,
                help="Sweep: accuracy against bits and bytes for several methods, in the background.")
if mode == "Single run" and cfg.qat_epochs:
    if st.button("Start quantization-aware fine-tuning", key="quant_qat_start", type="primary"):
        try:
            q.start_qat("quant_qat_job", sel.model, sel.dataset, sel.device, cfg.to_dict(), sel.runtime)
        except Exception as exc:
            show_error(exc)
    jobs.panel("quant_qat_job",
               show_progress=lambda job: job.events and st.plotly_chart(qat_curve(job.events), key="quant_qat_live"),
               show_result=lambda job: job.result and show_result(job.result))
elif mode == "Single run":  # in stages (ui.live): a sample of the test images at once, then all of them and latency
    try:
        entry = q.live_quantize(sel.model, sel.dataset, sel.device, cfg.to_dict(), sel.runtime)
    except Exception as exc:
        show_error(exc)
    else:
        if entry is None:
            st.info(f"Quantizing to {cfg.label()} and measuring accuracy on a sample of the test images…",
                    icon=":material/hourglass_top:")
        elif entry.error is not None:  # raised in the worker: said (and logged) here
            show_error(entry.error)
        else:
            show_result(entry.latest.value)
else:
    s1, s2 = st.columns([3, 2])
    methods = s1.multiselect("Methods", METHODS, default=[method], key="quant_sweep_methods")
    lo, hi = s2.select_slider("Bit widths", list(range(1, 9)), value=(2, 8), key="quant_sweep_bits")
    if st.button("Run sweep", key="quant_sweep_start", type="primary", disabled=not methods):
        try:
            configs = q.sweep_configs(cfg.to_dict(), methods, list(range(lo, hi + 1)))
            q.start_sweep("quant_sweep_job", sel.model, sel.dataset, sel.device, configs, sel.runtime)
        except Exception as exc:
            show_error(exc)

    def sweep_charts(job) -> None:
        done = job.result if job.finished else None
        df = sweep_frame(done if done is not None else
                         [{"config": {"method": e["method"], "bits": e["bits"]}, "accuracy": e["accuracy"],
                           "size_bytes": e["size_bytes"], "latency_ms": None, "simulated": True}
                          for e in job.events])
        if df.empty:
            return
        a, b = st.columns(2)
        a.plotly_chart(accuracy_vs_bits(df, base), key=f"quant_sweep_bits_chart_{job.id}")
        b.plotly_chart(accuracy_vs_bytes(df, base), key=f"quant_sweep_bytes_chart_{job.id}")
        if done is not None:
            st.dataframe(df, hide_index=True, width="stretch")
    jobs.panel("quant_sweep_job", show_progress=sweep_charts, show_result=sweep_charts)

st.subheader("Weights of one layer")
layer_rows = q.layers(sel.model, sel.dataset, sel.device)
layer = st.selectbox("Layer", [r["layer"] for r in layer_rows], key="quant_hist_layer",
                     format_func=lambda n: next(f"{n} ({r['type']}, {r['weights']:,} weights)"
                                                for r in layer_rows if r["layer"] == n))
try:
    st.plotly_chart(weight_histogram(q.histogram(sel.model, sel.dataset, sel.device, layer, cfg.to_dict())), key="quant_hist_chart")
except Exception as exc:
    show_error(exc)

st.subheader("Per-layer sensitivity")
if st.toggle("Quantize one layer at a time (weights only, 2,000 validation images)", key="quant_sens"):
    try:
        rows = q.sensitivity(sel.model, sel.dataset, sel.device, cfg.to_dict())
    except Exception as exc:
        show_error(exc)
        st.stop()
    st.plotly_chart(sensitivity_bars(rows), key="quant_sens_chart")
    st.caption(f"Float accuracy on the same images: {fmt_pct(rows[0]['float_accuracy'])}. Try lower bits on the "
               "least sensitive layers in the per-layer table above.")

st.subheader("All stored runs of this model")
try:
    runs = cache.run_store().runs(model=sel.model, dataset=sel.dataset)
except Exception as exc:  # an unreadable store: a message, the rest of the page works
    show_error(exc)
    st.stop()
st.plotly_chart(accuracy_vs_size(runs_frame(runs), baseline=base), key="quant_pareto")
st.caption("The packed file's bytes are real, so markers are filled; only latency without an int8 kernel is simulated. Every quantization run above is stored here and on the home page.")
