"""Distillation: a small student learns from the teacher's soft labels, while the same student
(same init, seed and data order) learns from the hard labels alone, so the benefit is measured."""

import math

import streamlit as st

from compression.charts.distillation import results_frame, soft_label_bars, sweep_curve, training_curves
from compression.charts.format import fmt_bytes, fmt_pct
from compression.charts.runs import accuracy_vs_size, runs_frame
from compression.distillation import TRANSFER_SETS, DistillConfig, StudentSpec
from compression.models import architecture_names, takes_width
from ui import cache, jobs, runtime_table
from ui import cluster as ui_cluster
from ui import results as results_ui
from ui.downloads import model_download
from ui.distillation import LABELED_CHOICES, Request, gallery_indices, gallery_logits, run_job, soft_labels
from ui.sidebar import cli_dataset, load_selection, show_error, sidebar

JOB = "distill_job"

st.set_page_config(page_title="Distillation · Compression Explorer", layout="wide")
sel = sidebar()
st.title("Knowledge distillation")
st.caption("The teacher (the model picked in the sidebar) labels each training image with its softened class "
           "probabilities; a smaller student learns from them and from the true labels. The same student is "
           "trained on the true labels alone beside it, so you see whether the teacher helps.")

data, teacher_base = load_selection(sel)
teacher_builder = cache.resolved(sel.model, sel.device, sel.dataset).architecture["builder"]
teacher_arch = teacher_builder.partition(":")[2] if teacher_builder.startswith("compression.") else None

# --- the teacher's soft labels -----------------------------------------------------------------
st.subheader(f"Soft labels of the teacher `{sel.model}` ({fmt_pct(teacher_base['accuracy'])} on the test set)")
temperature = st.slider("Temperature T", 1.0, 20.0, 2.0, 0.5, key="distill_temperature", format="%.1f",
                        help="softmax(logits / T): T = 1 is the teacher's own output; a larger T spreads the "
                             "probability over the classes the teacher finds alike.")
indices = gallery_indices(data)
for col, i in zip(st.columns(len(indices)), indices):
    col.image(data.test.images[i].permute(1, 2, 0).squeeze(-1).numpy(), width=64, clamp=True)
    col.caption(data.classes[int(data.test.labels[i])])
picked = st.radio("Test image", range(len(indices)), horizontal=True, key="distill_image",
                  format_func=lambda k: data.classes[int(data.test.labels[indices[k]])])
try:
    p1, pt, h1, ht = soft_labels(gallery_logits(sel.model, sel.dataset, sel.device)[picked], temperature)
except Exception as exc:
    show_error(exc)
    st.stop()
st.plotly_chart(soft_label_bars(p1, pt, list(data.classes), temperature), width="stretch", key="distill_soft")
st.caption(f"Entropy {h1:.2f} bits at T = 1, {ht:.2f} bits at T = {temperature:g} (uniform over "
           f"{data.num_classes} classes: {math.log2(data.num_classes):.2f} bits). The most likely "
           "class never changes with T; only how much the other classes show.")

# --- student and training -----------------------------------------------------------------------
st.subheader("Train a student")
c1, c2, c3, c4 = st.columns(4)
archs = [a for a in architecture_names() if takes_width(a)]  # plain classifiers (no exits, no shared widths)
student_arch = c1.selectbox("Student architecture", archs, index=archs.index("lenet5") if "lenet5" in archs else 0,
                            key="distill_student", format_func=lambda a: a + (" (a copy of the teacher)" if a == teacher_arch else ""))
width = c1.select_slider("Student width", [0.25, 0.375, 0.5, 0.75, 1.0], value=1.0, key="distill_width",
                         help="Width multiplier: channels and hidden units x width (a copy of the teacher needs < 1 to be smaller).")
init = c1.radio("Start from", ["scratch", "pretrained"], key="distill_init", horizontal=True,
                format_func={"scratch": "random weights (seeded)", "pretrained": "its zoo checkpoint"}.get)
alpha = c2.slider("alpha (weight of the soft labels)", 0.0, 1.0, 0.7, 0.05, key="distill_alpha",
                  help="Loss = alpha · T² · KL(teacher_T ‖ student_T) + (1 − alpha) · cross-entropy on the labels.")
PRESETS = {"quick": 15, "thorough": 60}
preset = c2.radio("Preset", list(PRESETS), horizontal=True, key="distill_preset",
                  on_change=lambda: st.session_state.update(distill_epochs=PRESETS[st.session_state["distill_preset"]]),
                  format_func={"quick": "quick (15 epochs)", "thorough": "thorough (60 epochs)"}.get,
                  help="quick: a lenet5 student and its hard-label twin on 5,000 labels, 43 s on 2 CPU cores "
                       "(measured 2026-12-02; cnn teacher: 83.42 % hard labels, 83.29 % distilled: too short for the "
                       "teacher to help). thorough: 60 epochs, 278 s there (85.64 % vs 87.89 %: +2.25 points), "
                       "where the teacher's gain is clearest: +0.23 points at 20 epochs, +0.94 at 40, +1.76 at 60 "
                       "(mean of 3 seeds, docs/distillation.md).")
epochs = c2.slider("Epochs", 1, 100, PRESETS["quick"], key="distill_epochs",
                   help="With 5,000 labels the teacher helps more the longer both students train: +0.23 points at 20 epochs, +0.94 at 40, +1.76 at 60 (mean of 3 seeds, docs/distillation.md).")
seed = c2.number_input("Seed", 0, 10_000, 0, key="distill_seed", help="Student init and data order (both students).")
labeled = c3.select_slider("Labeled training images", LABELED_CHOICES, value=5000, key="distill_labeled",
                           format_func=lambda n: f"all {len(data.train):,}" if n is None else f"{n:,}",
                           help="Hard labels come from the first N training images only.")
transfer = c3.radio("Soft labels on", TRANSFER_SETS, key="distill_transfer", disabled=labeled is None,
                    format_func={"labeled": "the labeled images", "all": f"all {len(data.train):,} training images"}.get,
                    help="'all': the teacher labels every training image (a transfer set); the true labels "
                         "still count only on the labeled ones.")
mode = c4.radio("Mode", ["one run", "sweep T", "sweep alpha"], key="distill_mode")
sweep: list[float] = []
if mode == "sweep T":
    sweep = c4.multiselect("Temperatures", [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0], [1.0, 2.0, 4.0, 8.0], key="distill_sweep_t")
elif mode == "sweep alpha":
    sweep = c4.multiselect("Alphas", [0.1, 0.3, 0.5, 0.7, 0.9, 1.0], [0.3, 0.5, 0.7, 0.9], key="distill_sweep_a")
st.caption("No augmentation: the teacher's logits are computed once on the stored training images and cached, so "
           "changing T, alpha or the student does not rerun the teacher, and the hard-label student is reused "
           "when only T or alpha change.")

try:
    request = Request(
        teacher=sel.model, student=StudentSpec(student_arch, width=width, init=init),
        config=DistillConfig(temperature=temperature, alpha=alpha, epochs=epochs, seed=int(seed), train_subset=labeled,
                             transfer_set=transfer if labeled is not None else "labeled"),
        temperatures=tuple(sorted(sweep)) if mode == "sweep T" else (),
        alphas=tuple(sorted(sweep)) if mode == "sweep alpha" else ())
except Exception as exc:
    show_error(exc)
    st.stop()

clu = ui_cluster.cluster()  # COMPRESSION_CLUSTER: each student a sweep job on its workers, else in this process
if clu.setting:
    ui_cluster.show(clu)
if st.button("Train", type="primary", key="distill_start", disabled=mode != "one run" and not sweep):
    try:
        store = cache.run_store()
        jobs.start(JOB, request.label, lambda job: run_job(job, request, data, store, sel.device, clu.executor, sel.runtime),
                   device=sel.device)
    except Exception as exc:
        show_error(exc)


def show_progress(job: jobs.Job) -> None:
    st.plotly_chart(training_curves(job.events, teacher_accuracy=teacher_base["accuracy"]), width="stretch",
                    key="distill_live")
    last = job.events[-1] if job.events else None
    if last:
        st.caption(f"{last['run']}: epoch {last['epoch']}/{last['epochs']}, validation accuracy "
                   f"{fmt_pct(last['val_accuracy'])}" + (" (cached)" if last.get("cached") else ""))


def show_result(job: jobs.Job) -> None:
    rows = job.result or []
    st.plotly_chart(training_curves(job.events, teacher_accuracy=teacher_base["accuracy"]), width="stretch",
                    key="distill_curves")
    if not rows:
        return
    st.dataframe(results_frame(rows), hide_index=True, width="stretch", column_config={
        "test accuracy (%)": st.column_config.NumberColumn(format="%.2f"),
        "size (KiB)": st.column_config.NumberColumn(format="%.1f"),
        "latency (ms)": st.column_config.NumberColumn(format="%.3f"),
        "train time (s)": st.column_config.NumberColumn(format="%.1f")})
    for r in rows:  # a student at chance or far below the teacher says so, with the fix
        results_ui.sanity_note(r)
    first = rows[0]
    st.caption(f"Test accuracy on {first['accuracy_n']:,} test images; validation curves on {len(data.val):,} "
               f"held-out training images. Teacher: {fmt_bytes(teacher_base['size_bytes'])}, "
               f"{teacher_base['params']:,} params; latency measured at batch 1 on {first['device']}.")
    soft = [r for r in rows if r.get("role") == "distilled"]
    if len(soft) > 1:
        knob = "temperature" if len({r["config"]["temperature"] for r in soft}) > 1 else "alpha"
        st.plotly_chart(sweep_curve(rows, knob, teacher_accuracy=teacher_base["accuracy"]), width="stretch",
                        key="distill_sweep_chart")
    if soft:  # the (most accurate) distilled student against its teacher, on every runtime
        best = max(soft, key=lambda r: r["accuracy"])
        st.markdown(f"**{best['config'].get('student')} (T={best['config'].get('temperature')}, alpha="
                    f"{best['config'].get('alpha')}) against the teacher on every runtime**")
        runtime_table.section("distill_runtimes_job", best, best["artifact_bytes"], what="teacher")
    pick = st.selectbox("Student to download", range(len(rows)), key="distill_download_pick",
                        format_func=lambda i: f"{rows[i]['config'].get('student')} ({rows[i].get('role', 'student')}, "
                                              f"{fmt_pct(rows[i]['accuracy'])}) · run {rows[i].get('run_id')}")
    model_download(f"distill_student_{rows[pick].get('run_id')}", rows[pick], artifact=rows[pick]["artifact_bytes"],
                   what="student")


jobs.panel(JOB, show_progress, show_result)

# --- every stored student beside the teacher ----------------------------------------------------
st.subheader("Students beside the teacher")
try:
    runs = cache.run_store().runs(model=sel.model, dataset=sel.dataset, method="distill")
except Exception as exc:  # an unreadable store: a message, the rest of the page works
    show_error(exc)
    st.stop()
if runs:
    st.plotly_chart(accuracy_vs_size(runs_frame(runs), baseline=teacher_base), width="stretch", key="distill_pareto")
    st.caption(f"{len(runs)} stored student{'s' if len(runs) != 1 else ''} of {sel.model}; the star is the teacher. "
               "Size: bytes of the student's file (its fp32 state_dict in the artifact container).")
else:
    st.info(f"No students of {sel.model} stored yet: press Train (or run "
            f"`python -m compression distill --teacher {sel.model}{cli_dataset(sel)} --student lenet5 --json`).")
