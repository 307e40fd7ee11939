"""The pruning page under AppTest, its plot builders, and the prune command line."""

import json
import os
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

PAGE = str(ROOT / "pages" / "1_Pruning.py")


@pytest.fixture(autouse=True)
def _keep_main_module():
    """AppTest leaves sys.modules['__main__'] set to the page script; a later test that spawns
    processes (test_store) would then re-run the page in every child. Put the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


def _page(model="mlp"):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = model
    return at


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_moving_the_ratio_slider_gives_a_new_measured_result(home):
    at = _page()
    at.run()
    assert not at.exception
    first = _metrics(at)
    assert {"Test accuracy", "Nonzero parameters", "Stored size", "MACs / image", "Latency (batch 1)"} <= set(first)
    at.slider(key="prune_ratio").set_value(0.9).run()
    assert not at.exception
    second = _metrics(at)
    assert second["Nonzero parameters"] != first["Nonzero parameters"]
    assert second["Stored size"] != first["Stored size"]
    # unstructured says the speed gain is simulated; both results were stored and are plotted
    assert any("speed is simulated" in w.value for w in at.warning)
    from compression.store import RunStore
    assert [r["config"]["ratio"] for r in RunStore().runs(method="prune")] == [0.9, 0.5]
    assert len(at.get("plotly_chart")) >= 4  # layers, histogram, accuracy vs ratio, vs size


def test_structured_result_card_says_the_gain_is_real(home):
    at = _page()
    at.session_state["prune_method"] = "structured"
    at.run()
    assert not at.exception
    assert any("Real gain" in s.value and "faster" in s.value for s in at.success)


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
# plot builders

def test_accuracy_vs_ratio_has_one_line_per_setting_and_the_baseline():
    from ui.charts_pruning import accuracy_vs_ratio, pruning_frame
    runs = [{"id": i, "accuracy": a, "size_bytes": 100, "latency_ms": 0.1, "nonzero_params": 10, "simulated": True,
             "config": {"method": m, "scope": "layer", "ratio": r, "finetune_epochs": 0}, "extra": {}}
            for i, (m, r, a) in enumerate([("unstructured", 0.5, 0.9), ("unstructured", 0.9, 0.8),
                                           ("structured", 0.5, 0.5)])]
    fig = accuracy_vs_ratio(pruning_frame(runs), baseline_accuracy=0.9)
    assert len(fig.data) == 2 and list(fig.data[1].x) == [50, 90] and list(fig.data[1].y) == [90, 80]
    assert fig.layout.shapes[0].y0 == 90  # the unpruned line


def test_sensitivity_heatmap_is_layers_by_ratios():
    from ui.charts_pruning import sensitivity_heatmap
    rows = [{"layer": l, "ratio": r, "accuracy": 0.9 - r / 10} for l in ("1", "3") for r in (0.2, 0.5, 0.9)]
    fig = sensitivity_heatmap(rows, baseline_accuracy=0.9)
    assert fig.data[0].z.shape == (2, 3) and list(fig.data[0].y) == ["1", "3"]


def test_steps_chart_marks_pruning_and_fine_tuning():
    from ui.charts_pruning import steps_chart
    events = [{"step": 1, "phase": "pruned", "ratio": 0.5, "accuracy": 0.4, "monitor": "test[:2000]"},
              {"step": 2, "phase": "fine-tuned", "ratio": 0.5, "accuracy": 0.8, "monitor": "test[:2000]"}]
    fig = steps_chart(events)
    assert [t.name for t in fig.data[1:]] == ["after pruned", "after fine-tuned"]
    assert len(steps_chart([]).data) == 0


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
