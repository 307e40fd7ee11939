"""Home page: pick a dataset and a pretrained model, see its measured baseline, its predictions on
test images, and the history of every compression run stored for it."""

import random

import streamlit as st

from compression.charts.format import fmt_accuracy_ci, fmt_bytes, fmt_count, fmt_pct, fmt_short_count, plural
from compression.charts.runs import accuracy_vs_size, runs_frame
from ui import cache, home_timing
from ui.byo import contract_line, upload_panel
from ui.dataset_upload import dataset_problems, dataset_upload_panel
from ui.sidebar import RUNTIME_LABELS, load_selection, show_error, sidebar

st.set_page_config(page_title="Compression Explorer", layout="wide")
sel = sidebar()

st.title("Compression Explorer")
st.caption("Prune, distill, quantize, redesign and make dynamic: every number below is measured "
           "on this machine, and simulated gains are marked as such.")
upload_panel(sel.device, sel.dataset)
dataset_upload_panel()

data, base = load_selection(sel)
dataset_problems(data)

st.subheader(f"Baseline: {sel.model} on {sel.dataset}")
cols = st.columns(6)
cols[0].metric("Test accuracy", fmt_pct(base["accuracy"]), help=fmt_accuracy_ci(base["accuracy"], base["accuracy_n"]))
cols[1].metric("Parameters", fmt_short_count(base["params"]),  # a tile cuts long values: compact from a million
               help=f"{base['params']:,} parameters, {base['nonzero_params']:,} nonzero")
cols[2].metric("Size on disk", fmt_bytes(base["size_bytes"]), help="Bytes of the fp32 state_dict as saved by torch.save.")
cols[3].metric("MACs / image", fmt_count(base["macs"]), help="Multiply-accumulates for one image, counted by torch's FLOP counter.")
timed, timed_line = cols[4:], st.container()  # latency and images/s: timed now, filled in last (ui.home_timing)
st.caption(f"Accuracy {fmt_accuracy_ci(base['accuracy'], base['accuracy_n'])}. Data read from `{data.source}`.")
contract_line(sel)

st.subheader("Predictions on test images")
indices = tuple(random.Random(f"{sel.dataset}-gallery").sample(range(len(data.test)), min(8, len(data.test))))
preds = cache.gallery_predictions(sel.model, sel.dataset, sel.device, indices)
for col, i, (pred, conf) in zip(st.columns(len(indices)), indices, preds):
    truth = int(data.test.labels[i])
    img = data.test.images[i].permute(1, 2, 0).squeeze(-1).numpy()
    col.image(img, width=84, clamp=True)
    verdict = ":green[✓ right]" if pred == truth else ":red[✗ wrong]"
    col.caption(f"**{data.classes[pred]}** {conf * 100:.0f}%  \n{verdict} · true: {data.classes[truth]}")

st.subheader("Run history")
try:
    runs = cache.run_store().runs(model=sel.model, dataset=sel.dataset)
except Exception as exc:  # an unreadable run store must not take the page down
    show_error(exc)
    runs = None
if runs == []:
    st.info(f"No compression runs stored yet for **{sel.model}** on **{sel.dataset}**. "
            "Pick a method page in the sidebar (or run `python -m compression ... --json` in a terminal): "
            "every result is saved and plotted here, accuracy against stored size.")
elif runs:
    st.plotly_chart(accuracy_vs_size(runs_frame(runs), baseline=base), width="stretch")
    st.caption(f"{plural(len(runs), 'stored run')}. Hollow markers: the stored size is simulated (runs saved before each run recorded which "
               "of its gains are simulated); a run's details on the Pareto explorer say which gains are real.")

home_timing.show(timed, timed_line, sel.model, sel.dataset, sel.device, sel.runtime, RUNTIME_LABELS[sel.runtime])
