"""The pruning page under AppTest and the prune command line (its plot builders: test_pruning_charts.py)."""

import json
import os
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

PAGE = str(ROOT / "pages" / "1_Pruning.py")


def _page(model="mlp"):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = model
    return at


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def _full(at):
    """Run the page again once this session's live result is complete (ui.live)."""
    assert at.session_state["live_runner_prune"].wait_idle(180)
    return at.run()


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_the_first_test_images_answer_at_once_then_all_of_them(home, monkeypatch):
    """A slider move shows accuracy on the first 500 test images (with its interval), the counts
    and the file's bytes while the rest are measured; the full result replaces it, and only the full
    result can be kept."""
    import threading
    import time

    from compression import progressive
    gate, original = threading.Event(), progressive.rest_logits

    def held(*args, **kwargs):  # the full evaluation waits until the first stage was looked at
        gate.wait(120)
        return original(*args, **kwargs)

    monkeypatch.setattr(progressive, "rest_logits", held)
    at = _page()
    at.session_state["prune_ratio"] = 0.45  # a ratio no other test caches
    try:
        at.run()
        end = time.monotonic() + 120
        while "refining" not in _captions(at) and time.monotonic() < end:  # a slow machine: look again
            time.sleep(0.2)
            at.run()
        assert not at.exception
        assert "on a stratified sample of 500 of 10,000 test images, every class (refining…)" in _captions(at)
        assert "95 % interval" in _captions(at)
        partial = _metrics(at)
        assert partial["Latency (batch 1)"] == "measuring…"
        assert "measuring…" not in (partial["Nonzero parameters"], partial["Stored size"])
        assert not [b for b in at.button if b.label == "Keep this run"]  # only the full result is kept
    finally:
        gate.set()
    _full(at)
    assert not at.exception
    assert "on all 10,000 test images" in _captions(at) and "refining" not in _captions(at)
    full = _metrics(at)
    assert full["Latency (batch 1)"] != "measuring…"
    # the first stage's counts and bytes are the full result's: only accuracy and latency were pending
    assert (full["Nonzero parameters"], full["Stored size"]) == (partial["Nonzero parameters"], partial["Stored size"])
    assert [b for b in at.button if b.label == "Keep this run"]


def test_moving_the_ratio_slider_gives_a_new_measured_result(home):
    at = _page()
    _full(at.run())
    assert not at.exception
    first = _metrics(at)
    assert {"Test accuracy", "Nonzero parameters", "Stored size", "MACs / image", "Latency (batch 1)"} <= set(first)
    at.slider(key="prune_ratio").set_value(0.9).run()
    _full(at)
    assert not at.exception
    second = _metrics(at)
    assert second["Nonzero parameters"] != first["Nonzero parameters"]
    assert second["Stored size"] != first["Stored size"]
    # unstructured says the speed gain is simulated; the slider's results are previews: nothing stored
    assert any("latency is simulated" in w.value for w in at.warning)
    deltas = {m.label: m for m in at.metric}
    assert deltas["Stored size"].delta.endswith("x smaller")
    assert deltas["Latency (batch 1)"].delta.endswith("(simulated)")  # dense kernels: grey, no arrow
    from streamlit.proto.Metric_pb2 import Metric
    latency, size = deltas["Latency (batch 1)"].proto, deltas["Stored size"].proto
    assert (latency.direction, latency.color) == (Metric.MetricDirection.NONE, Metric.MetricColor.GRAY)
    assert (size.direction, size.color) == (Metric.MetricDirection.DOWN, Metric.MetricColor.GREEN)
    from compression.store import RunStore
    assert RunStore().count() == 0
    assert len(at.get("plotly_chart")) >= 2  # layers, histogram
    # "Keep this run" stores the one shown, with its file; a second look does not store it again
    (keep,) = [b for b in at.button if b.label == "Keep this run"]
    keep.click().run()
    assert not at.exception and any("Kept as run" in s.value for s in at.success)
    (run,) = RunStore().runs(method="prune")
    assert run["config"]["ratio"] == 0.9 and os.path.getsize(run["artifact_path"]) > 0
    assert run["accuracy"] == pytest.approx(float(second["Test accuracy"].split()[0]) / 100, abs=6e-5)
    at.run()
    assert RunStore().count() == 1 and not [b for b in at.button if b.label == "Keep this run"]
    assert len(at.get("plotly_chart")) >= 4  # and the kept run is plotted: accuracy vs ratio, vs size


def test_structured_result_card_says_the_gain_is_real(home):
    at = _page()
    at.session_state["prune_method"] = "structured"
    _full(at.run())
    assert not at.exception
    assert any("Every gain is real" in s.value and "measured on" in s.value for s in at.success)


def test_pruning_to_chance_without_fine_tuning_says_so_next_to_the_number(home):
    at = _page()
    at.session_state["prune_method"] = "structured"
    at.session_state["prune_ratio"] = 0.95
    _full(at.run())
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(("Chance level" in w or "Far below the baseline" in w) and "set fine-tuning epochs" in w
               for w in warnings), warnings


def test_fine_tuning_runs_as_a_job_and_stores_its_result(home):
    at = _page()
    at.session_state["prune_epochs"] = 1
    at.session_state["prune_ratio"] = 0.8
    at.run()
    assert not at.exception
    at.button(key="prune_run").click().run()
    at.session_state["prune_job"].wait(300)
    at.run()
    assert not at.exception
    job = at.session_state["prune_job"]
    assert job.status == "done", job.error
    (view,) = job.result
    result = view["result"]
    phases = [h["phase"] for h in result["history"]]
    assert phases == ["pruned", "fine-tuned"]
    assert result["config"]["finetune_epochs"] == 1 and result["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert "Test accuracy" in _metrics(at)
    # the default split says its rule, and the run stores what it meant: Fashion-MNIST has 5,000 val images
    split = at.radio(key="prune_split")
    assert split.value == "auto" and "val when it holds 5,000 images" in split.help
    assert "BatchNorm" in at.checkbox(key="prune_recalibrate_bn").help
    assert result["config"]["finetune_split"] == "val" and result["config"]["finetune_recalibrate_bn"] is True


def test_sensitivity_runs_once_then_comes_from_the_cache(home):
    at = _page()
    at.run()
    at.button(key="prune_sens_run").click().run()
    at.session_state["prune_sens_job"].wait(300)
    at.run()
    assert not at.exception
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert any('"type":"heatmap"' in spec.replace(" ", "") for spec in charts)
    again = _page()
    again.run()  # a new session: the heatmap is read from the disk cache, no button
    assert not again.exception
    assert not any(b.key == "prune_sens_run" for b in again.button)


def test_bad_sweep_selection_is_a_message_not_a_crash(home):
    at = _page()
    at.session_state["prune_mode"] = "Sweep"
    at.session_state["prune_sweep"] = []
    at.run()
    assert not at.exception
    assert any("at least one ratio" in e.value for e in at.error)


# ---------------------------------------------------------------------------------------------
# command line

def _cli(*args, home):
    env = {**os.environ, "COMPRESSION_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "compression", "prune", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_sweep_prints_one_result_per_ratio(tmp_path):
    out = _cli("--model", "mlp", "--method", "unstructured", "--scope", "global", "--sweep", "0.5,0.9",
               "--limit", "500", "--out", str(tmp_path / "art"), "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["config"]["ratio"] for r in results] == [0.5, 0.9]
    for r in results:
        assert r["method"] == "prune" and r["simulated"] is True and r["accuracy_n"] == 500
        assert r["simulated_metrics"] == ["latency_ms"]  # the sparse file is real, its speed is not
        assert r["nonzero_params"] <= (1 - r["config"]["ratio"]) * r["baseline"]["params"] + 1
        assert os.path.getsize(r["artifact"]) == r["size_bytes"]  # size_bytes is the file written
    assert results[1]["size_bytes"] < 0.2 * results[1]["baseline"]["size_bytes"]


@pytest.mark.parametrize("args, named", [(["--ratio", "1.0"], "1.0"), (["--ratio", "-0.2"], "-0.2"),
                                         (["--ratio", "0.5", "--scope", "row"], "row"),
                                         (["--sweep", "0.2,1.5"], "1.5"), (["--ratio", "0.5", "--steps", "0"], "0")])
def test_cli_bad_values_exit_non_zero_naming_them(args, named, capsys):
    from compression.cli import main
    with pytest.raises(SystemExit) as exit_:
        main(["prune", "--model", "mlp", *args])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0]


def test_cli_unknown_model_is_named(capsys, home):
    from compression.cli import main
    assert main(["prune", "--model", "resnet9000", "--ratio", "0.5"]) == 2
    assert "resnet9000" in capsys.readouterr().err


def test_the_sidebar_runtime_is_stored_with_the_run_and_shown_on_the_explorer(home):
    """The sidebar's latency runtime reaches the core per call: the card names it, Keep stores it
    with the run, and the Pareto explorer's table shows it (old runs without one read eager)."""
    from compression.store import RunStore
    at = _page()
    at.session_state["keep_sidebar_runtime"] = "onnxruntime"
    at.session_state["prune_method"] = "structured"
    at.session_state["prune_ratio"] = 0.55  # a ratio no other test caches
    _full(at.run())
    assert not at.exception
    assert at.selectbox(key="sidebar_runtime").value == "onnxruntime"
    latency = next(m for m in at.metric if m.label == "Latency (batch 1)")
    assert "(ONNX Runtime (CPUExecutionProvider))" in latency.proto.help
    assert any("ONNX Runtime" in s.value for s in at.success)
    (keep,) = [b for b in at.button if b.label == "Keep this run"]
    keep.click().run()
    (run,) = RunStore().runs(method="prune")
    assert run["extra"]["runtime"] == "onnxruntime" and "runtime_fallback" not in run["extra"]
    assert run["extra"]["baseline_latency_ms"] > 0
    explorer = AppTest.from_file(str(ROOT / "pages" / "6_Pareto_explorer.py"), default_timeout=120).run()
    assert not explorer.exception
    table = explorer.dataframe[1].value
    assert list(table["runtime"]) == ["onnxruntime"]


def test_a_runtime_that_cannot_run_falls_back_with_its_message_on_the_card(home, monkeypatch):
    import compression.runtimes as runtimes

    def refused(model, input_shape, device):
        raise RuntimeError("Exporting the operator 'aten::foo' to ONNX opset version 17 is not supported")
    monkeypatch.setattr(runtimes, "_onnxruntime", refused)
    at = _page()
    at.session_state["keep_sidebar_runtime"] = "onnxruntime"
    at.session_state["prune_method"] = "structured"
    at.session_state["prune_ratio"] = 0.65
    _full(at.run())
    assert not at.exception
    # the honesty sentence: green, or neutral when structured 0.65 without fine-tuning fell far below the baseline
    said = " ".join(s.value for s in [*at.success, *at.info])
    assert "Runtime: ONNX Runtime (CPUExecutionProvider) could not run this model" in said and "aten::foo" in said
    latency = next(m for m in at.metric if m.label == "Latency (batch 1)")
    assert "(PyTorch eager)" in latency.proto.help and "aten::foo" in latency.proto.help


def test_time_on_every_runtime_under_the_card(home, monkeypatch):
    """The button runs the all-runtimes table as a job; torch.compile without a compiler (faked:
    compiling takes minutes here) says why in its rows instead of numbers; the table is kept."""
    from support import every_runtime_table, without_a_cxx_compiler
    without_a_cxx_compiler(monkeypatch)
    at = _page()
    at.session_state["prune_method"] = "structured"
    at.session_state["prune_ratio"] = 0.35
    _full(at.run())
    table = every_runtime_table(at, "prune_runtimes_job", "result vs unpruned model")
    assert list(zip(table["runtime"], table["batch"])) == [
        (name, b) for name in ("PyTorch eager", "torch.compile (TorchInductor)", "ONNX Runtime (CPUExecutionProvider)")
        for b in (1, 256)]
    compiled = table[table["runtime"].str.startswith("torch.compile")]
    assert (compiled["result vs unpruned model"] == "could not run").all()
    assert compiled["note"].str.contains("No working C++ compiler", regex=False).all()
    others = table[~table["runtime"].str.startswith("torch.compile")]
    assert others["unpruned model"].str.endswith(" ms").all() and others["result"].str.contains("±", regex=False).all()
    assert not [b for b in at.button if b.label == "Time on every runtime"]  # kept: shown, not asked again
