"""Pipelines: compression methods in order (prune -> fine-tune -> distill -> quantize), each step
measured and stored, the last one a real file that loads back into the model."""

from pathlib import Path

import streamlit as st

from compression import CompressionError
from compression.charts.format import fmt_bytes, fmt_count, fmt_ms, fmt_pct, plural
from compression.charts.pipeline import live_chart, path_chart, steps_frame
from compression.pipeline import KINDS, RECIPES, PipelineConfig, check_composition, parse_steps, step_spec
from ui import cache, jobs, runtime_table
from ui import results as results_ui
from ui import pipeline as ui_pipe
from ui.downloads import model_download
from ui.sidebar import cli_dataset, load_selection, sidebar

st.set_page_config(page_title="Pipelines · Compression Explorer", layout="wide")
sel = sidebar()
st.title("Pipelines")
st.caption("Apply methods one after another. Every step is measured and stored as a run (its parent is the step "
           "before, so the Pareto explorer draws the path); the last step's file is what you download. Orders that "
           "cannot work are refused before anything runs, with the reason.")
data, base = load_selection(sel)

mode = st.radio("Pipeline", ["Named recipe", "Build your own"], key="pipe_mode", horizontal=True)
if mode == "Named recipe":
    recipe = st.selectbox("Recipe", list(RECIPES), key="pipe_recipe")
    steps_text, about = RECIPES[recipe]
    st.markdown(about)
else:
    st.session_state.setdefault("pipe_steps", [])
    kind = st.selectbox("Step to add", KINDS, key="pipe_kind",
                        help="prune: remove weights or channels; finetune: train on labels; distill: train with the "
                             "original model as teacher; quantize: store the weights with fewer bits (last step).")
    new_step = ui_pipe.knob_widgets(kind)
    b1, b2, b3, _ = st.columns([1, 1, 1, 4])
    if b1.button("Add step", key="pipe_add", type="primary"):
        st.session_state["pipe_steps"] = [*st.session_state["pipe_steps"], new_step]
    if b2.button("Remove last", key="pipe_remove", disabled=not st.session_state["pipe_steps"]):
        st.session_state["pipe_steps"] = st.session_state["pipe_steps"][:-1]
    if b3.button("Clear", key="pipe_clear"):
        st.session_state["pipe_steps"] = []
    steps_text = ",".join(st.session_state["pipe_steps"])

subset = st.select_slider("Training images per epoch", ["1,000", "5,000", "all"], value="1,000", key="pipe_subset",
                          help="1,000 (quick, the default): the deep-compression recipe on the cnn ran in 18 s on 2 CPU "
                               "cores (28.5x smaller at 84.77 %, 2026-12-02). all (thorough, the numbers to report): "
                               "55x the images per epoch; for the cnn's 12 epochs of that recipe about 20 minutes there "
                               "(~100 s per epoch of 60k images, the measured training speed).")
cfg = None
if steps_text:
    try:
        cfg = PipelineConfig(parse_steps(steps_text), subset=None if subset == "all" else int(subset.replace(",", "")))
        check_composition(cfg.steps, cache.model(sel.model, sel.device, sel.dataset))
    except CompressionError as exc:
        st.error(f"Refused before running: {exc}")
        cfg = None
if cfg is not None:
    st.markdown("\n".join(f"{i}. `{step_spec(s)}`" for i, s in enumerate(cfg.steps, start=1)))
    st.caption("The same from the command line:")
    st.code(f'python -m compression pipeline --model {sel.model}{cli_dataset(sel)} --steps "{cfg.spec}"'
            + (f" --subset {cfg.subset}" if cfg.subset else "") + " --json", language="bash")
elif not steps_text:
    st.info("Add steps above: for example prune, then fine-tune, then quantize.")


def show_results(results: list[dict]) -> None:
    final, b = results[-1], results[-1]["baseline"]
    st.subheader(f"{sel.model}: {len(results)} step{'s' if len(results) > 1 else ''}")
    cols = st.columns(5)
    results_ui.accuracy_metric(cols[0], "Test accuracy", fmt_pct(final["accuracy"]), final, b,
                               help=f"fp32: {fmt_pct(b['accuracy'])}")
    results_ui.cost_metric(cols[1], "Stored size", fmt_bytes(final["size_bytes"]), final, b, "size_bytes",
                           help=f"Length of the file below; fp32 state_dict: {fmt_bytes(b['size_bytes'])}.")
    results_ui.cost_metric(cols[2], "Nonzero parameters", fmt_count(final["nonzero_params"]), final, b, "nonzero_params",
                           help=f"{final['params']:,} parameters stored, {final['nonzero_params']:,} nonzero.")
    results_ui.cost_metric(cols[3], "MACs / image", fmt_count(final["macs"]), final, b, "macs",
                           help=f"fp32: {fmt_count(b['macs'])}")
    results_ui.cost_metric(cols[4], "Latency (batch 1)", fmt_ms(final["latency_ms"]), final, b, "latency_ms",
                           help=results_ui.latency_help(final, b, "fp32 model"))
    results_ui.sanity_note(final)
    results_ui.honesty_note(final)
    st.plotly_chart(path_chart(results), key="pipe_path_chart", width="stretch")
    st.dataframe(steps_frame(results), hide_index=True, width="stretch")
    path = Path(final.get("artifact") or "")
    model_download("pipe_final", final, what="final model")
    if any(r["config"].get("step_spec", "").startswith("quantize") for r in results):
        st.caption("Time on every runtime is offered for pipelines without a quantize step: a quantized file "
                   "loads as float weights, which is not what an int8 kernel runs (its latency is on the card).")
    elif path.is_file():
        runtime_table.section("pipe_runtimes_job", final, what="fp32 model")


def show_progress(job) -> None:
    ui_pipe.stage_bars(job, st.session_state.get("pipe_running", []))
    if any(e.get("accuracy") is not None or e.get("val_accuracy") is not None for e in job.events):
        st.plotly_chart(live_chart(job.events), key="pipe_live_chart", width="stretch")
    if job.result:
        st.dataframe(steps_frame(job.result), hide_index=True, width="stretch")


def show_result(job) -> None:
    results = job.result or []
    if job.status == "stopped":
        st.warning(f"Stopped: {len(results)} of {plural(len(st.session_state.get('pipe_running', [])), 'step')} finished; "
                   "they are stored and shown below.")
    if results:
        show_results(results)


if st.button("Run the pipeline", key="pipe_run", type="primary", disabled=cfg is None):
    st.session_state["pipe_running"] = [step_spec(s) for s in cfg.steps]
    ui_pipe.start(sel.model, sel.dataset, sel.device, cfg, sel.runtime)
jobs.panel("pipe_job", show_progress, show_result)
