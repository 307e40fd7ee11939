"""Pruning: remove the least important weights or channels, fine-tune to recover, repeat."""

import streamlit as st

from compression import CompressionError
from compression.charts.format import plural
from compression.charts.pruning import accuracy_vs_ratio, pruning_frame, sensitivity_heatmap, steps_chart
from compression.charts.runs import accuracy_vs_size, runs_frame
from compression.evaluate import dataset_for
from compression.pruning import SPLITS, FinetuneConfig, PruneConfig
from compression.pruning.config import BN_HELP, SPLIT_HELP
from ui import cache, jobs
from ui import pruning as ui_pruning
from ui.sidebar import show_error, sidebar

st.set_page_config(page_title="Pruning · Compression Explorer", layout="wide")
sel = sidebar()
st.title("Pruning")
st.caption("Many weights barely affect the output: score them, remove the least important, accept the drop, "
           "fine-tune to recover, repeat. Single weights (unstructured) leave an irregular network that only a "
           "sparse file makes smaller; whole channels (structured) leave a smaller dense network that really runs faster.")

try:
    dataset_for(sel.model, sel.dataset)
    base = cache.baseline(sel.model, sel.dataset, sel.device)
except Exception as exc:
    show_error(exc)
    st.stop()

c1, c2, c3 = st.columns(3)
method = c1.radio("Granularity", ["unstructured", "structured"], key="prune_method", horizontal=True,
                  help="Unstructured: single weights by magnitude. Structured: whole conv channels / linear neurons.")
scope = c2.radio("Threshold", ["layer", "global"], key="prune_scope", horizontal=True,
                 help="layer: the same ratio in every layer; global: one threshold over all layers.")
importance = c3.selectbox("Channel importance", ["l1", "l2", "taylor"], key="prune_importance",
                          disabled=method == "unstructured",
                          help="Group L1/L2 norm of a channel's weights in every coupled layer, or first-order Taylor "
                               "(|weight × gradient| on 256 fine-tuning images). Unstructured always uses |w|.")
importance = "l1" if method == "unstructured" else importance

mode = st.radio("Mode", ["One ratio", "Sweep"], key="prune_mode", horizontal=True,
                help="A sweep prunes the unpruned model at several ratios and draws one curve.")
if mode == "One ratio":
    ratios = [st.slider("Pruning ratio", 0.0, 0.95, 0.5, 0.05, key="prune_ratio",
                        help="Fraction of weights (unstructured) or of channels (structured) removed.")]
else:
    ratios = sorted(st.multiselect("Ratios", [round(0.1 * i, 2) for i in range(10)] + [0.95],
                                   default=[0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], key="prune_sweep"))

f1, f2, f3, f4 = st.columns(4)
epochs = f1.number_input("Fine-tune epochs per step (0 = none)", 0, 20, 0, key="prune_epochs")
steps = f2.number_input("Iterative steps", 1, 10, 1, key="prune_steps",
                        help="prune → fine-tune → repeat, the ratio ramped linearly over the steps.")
split = f3.radio("Fine-tune on", list(SPLITS), key="prune_split", horizontal=True,
                 help="val: the validation images (5k on Fashion-MNIST, fast); train: the training images (55k, "
                      "recovers more); " + SPLIT_HELP + ".")
lr = f4.select_slider("Learning rate", [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3], value=1e-3, key="prune_lr",
                      format_func=lambda v: f"{v:g}",
                      help="Adam with cosine decay; 1e-3 is half the peak the cnn and lenet5 were trained with.")
recalibrate = st.checkbox("Re-estimate BatchNorm statistics after pruning", True, key="prune_recalibrate_bn",
                          disabled=method == "unstructured", help=BN_HELP[0].upper() + BN_HELP[1:] + ".")

try:
    if not ratios:
        raise CompressionError("pick at least one ratio for the sweep")
    cfg = PruneConfig(method=method, ratio=ratios[-1], scope=scope, importance=importance)
    ft = FinetuneConfig(epochs=int(epochs), steps=int(steps), lr=float(lr), split=split, recalibrate_bn=recalibrate)
except CompressionError as exc:
    show_error(exc)
    st.stop()


def show_progress(job: jobs.Job) -> None:
    st.plotly_chart(steps_chart(job.events), width="stretch", key="prune_live_chart")


def show_result(job: jobs.Job) -> None:
    views = job.result or []
    if not views:
        st.info("Nothing finished before Stop.")
    elif len(views) > 1:
        st.dataframe(pruning_frame([{**v["result"], "id": v["result"]["run_id"]} for v in views]),
                     hide_index=True, width="stretch")
    if views:
        ui_pruning.result_card(views[-1], base)
        if views[-1]["result"].get("history"):
            st.plotly_chart(steps_chart([{**h, "step": i} for i, h in enumerate(views[-1]["result"]["history"], 1)]),
                            width="stretch", key="prune_steps_chart")


st.subheader("Result")
if mode == "One ratio" and epochs == 0:
    try:
        entry = ui_pruning.live_prune(sel.model, sel.dataset, sel.device, method, ratios[0], scope, importance,
                                      int(steps), sel.runtime)
    except Exception as exc:
        show_error(exc)
        st.stop()
    if entry is not None and entry.error is not None:  # raised in the worker: said (and logged) here
        show_error(entry.error)
        st.stop()
    if entry is None:
        st.info(f"Pruning at ratio {ratios[0]:.2f} and measuring accuracy on a sample of the test images…",
                icon=":material/hourglass_top:")
    else:
        ui_pruning.result_card(entry.latest.value, base)
else:
    label = "Run sweep" if mode == "Sweep" else "Prune and fine-tune"
    if st.button(label, key="prune_run", type="primary"):
        try:
            ui_pruning.start_job(sel.model, sel.dataset, sel.device, cfg, ft, ratios, sel.runtime)
        except Exception as exc:
            show_error(exc)
    if jobs.get("prune_job") is None:
        st.info(f"{label}: runs in the background with a progress bar and a Stop button; every finished result "
                "is stored.")
    jobs.panel("prune_job", show_progress, show_result)

st.subheader("All pruning runs of this model")
try:
    runs = cache.run_store().runs(model=sel.model, dataset=sel.dataset, method="prune")
except Exception as exc:  # an unreadable store: a message, the rest of the page works
    show_error(exc)
    runs = []
if runs:
    left, right = st.columns(2)
    left.plotly_chart(accuracy_vs_ratio(pruning_frame(runs), baseline_accuracy=base["accuracy"]), width="stretch")
    right.plotly_chart(accuracy_vs_size(runs_frame(runs), baseline=base, title="Accuracy vs stored size"),
                       width="stretch")
    st.caption(f"{plural(len(runs), 'stored run')}. Stored sizes are real for every run (unstructured: the sparse file), so markers are filled; "
               "an unstructured run's latency is simulated (dense kernels).")

st.subheader("Sensitivity analysis")
unit = "layer" if method == "unstructured" else "dependency group (layers that share channels are pruned together)"
st.caption(f"Accuracy on 2,000 validation images when only one {unit} is pruned, at each ratio "
           f"({method}, importance {importance}). Computed once per model and setting, then read from the cache.")
try:
    rows = ui_pruning.stored_sensitivity(sel.model, sel.dataset, sel.device, method, importance)
except Exception as exc:
    show_error(exc)
    st.stop()
if rows:
    st.plotly_chart(sensitivity_heatmap(rows, baseline_accuracy=base["accuracy"]), width="stretch")
else:
    if st.button("Run sensitivity analysis", key="prune_sens_run"):
        ui_pruning.start_sensitivity(sel.model, sel.dataset, sel.device, method, importance)
    jobs.panel("prune_sens_job", lambda job: None, lambda job: None)  # when done, the cache has the rows
