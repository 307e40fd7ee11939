"""Saying it straight: which gains are simulated (per metric), one way to say better or worse, and
the sanity words on results at chance level or far below their baseline. Hand-made results only."""

import pytest

from compression.charts.format import Change, fmt_change
from compression.honesty import (axis_is_real, honesty_sentence, merge_simulated, sanity_warning,
                                 simulated_metrics)
from compression.metrics import Metrics, Result

BASE = Metrics(0.92, 1000, 1000, 1000, 4000, 1e4, 1.0, False)


def result(method="prune", config=None, *, accuracy=0.90, simulated=False, extra=None, dataset="fashion-mnist"):
    m = Metrics(accuracy, 1000, 1000, 100, 1000, 1e4, 1.0, simulated)
    return Result("cnn", dataset, method, config or {}, "cpu", m, BASE, extra=extra or {})


# ---- the formatter ----------------------------------------------------------------------------

@pytest.mark.parametrize("new, old, kind, text, direction", [
    (1000, 4230, "size_bytes", "4.23x smaller", "better"),
    (1300, 1000, "bytes", "1.30x larger", "worse"),
    (1000, 1000, "size_bytes", "no measurable change", "same"),
    (100, 3368, "size_bytes", "33.7x smaller", "better"),
    (1e6, 2.1e6, "macs", "2.10x fewer MACs", "better"),
    (2.1e6, 1e6, "macs", "2.10x more MACs", "worse"),
    (5e5, 5e5, "macs", "no measurable change", "same"),
    (0.128, 1.0, "latency_ms", "7.81x faster", "better"),
    (1.2, 1.0, "latency", "1.20x slower", "worse"),
    (1.04, 1.0, "latency_ms", "no measurable change", "same"),   # within ±5 %: timing noise
    (0.96, 1.0, "latency_ms", "no measurable change", "same"),
    (1000, 3000, "params", "3.00x fewer parameters", "better"),
    (1001, 1000, "params", "1.001x more parameters", "worse"),  # counts are exact: any change is said
])
def test_fmt_change_says_better_or_worse_one_way(new, old, kind, text, direction):
    change = fmt_change(new, old, kind)
    assert (change.text, change.direction) == (text, direction)
    assert "↑" not in change.text and "of float32" not in change.text


def test_fmt_change_latency_uses_the_measured_spread_when_known():
    assert fmt_change(0.9, 1.0, "latency_ms", spread=0.15).text == "no measurable change"  # inside the spread
    assert fmt_change(0.9, 1.0, "latency_ms", spread=0.05).text == "1.11x faster"           # outside it
    assert fmt_change(0.98, 1.0, "latency_ms", spread=0.001).direction == "better"          # tiny spread: 2 % counts


def test_fmt_change_simulated_is_marked_grey_and_without_arrow():
    change = fmt_change(0.5, 1.0, "latency_ms", simulated=True)
    assert change == Change("2.00x faster (simulated)", "simulated", 2.0)
    assert change.metric_delta() == {"delta": "2.00x faster (simulated)", "delta_color": "gray", "delta_arrow": "off"}
    assert fmt_change(1.0, 1.0, "latency_ms", simulated=True).text == "no measurable change (simulated)"


def test_metric_delta_colors_and_arrows():
    assert fmt_change(1, 4, "size_bytes").metric_delta() == {"delta": "4.00x smaller", "delta_color": "green",
                                                              "delta_arrow": "down"}
    assert fmt_change(4, 1, "macs").metric_delta()["delta_color"] == "red"
    assert fmt_change(4, 1, "macs").metric_delta()["delta_arrow"] == "up"
    assert fmt_change(1, 1, "params").metric_delta() == {"delta": "no measurable change", "delta_color": "gray",
                                                         "delta_arrow": "off"}


def test_fmt_change_missing_numbers_and_unknown_kinds():
    assert fmt_change(None, 1, "macs").text == "n/a" and fmt_change(1, 0, "macs").text == "n/a"
    with pytest.raises(ValueError, match="flops"):
        fmt_change(1, 2, "flops")


# ---- which gains are simulated ----------------------------------------------------------------

def test_simulated_metrics_from_results_rows_and_old_rows():
    sparse = result(simulated=True, extra={"simulated_metrics": ["latency_ms"]})
    assert simulated_metrics(sparse) == ["latency_ms"]
    assert sparse.to_dict()["simulated_metrics"] == ["latency_ms"]  # in every JSON result
    assert result().to_dict()["simulated_metrics"] == []
    old = {"simulated": True, "extra": {}}
    assert simulated_metrics(old) == ["size_bytes", "macs", "latency_ms"]   # conservative
    assert simulated_metrics({"simulated": 0, "extra": {}}) == []
    assert simulated_metrics({"simulated": True, "simulated_metrics": ["latency_ms", "size_bytes"]}) == \
        ["size_bytes", "latency_ms"]  # CLI JSON objects carry it at the top; order is fixed
    assert axis_is_real(sparse, "size_bytes") and not axis_is_real(sparse, "latency_ms")
    assert axis_is_real(old, "params") and axis_is_real(old, "accuracy") and not axis_is_real(old, "macs")
    assert merge_simulated([], ["latency_ms"], None) == ["latency_ms"]


def test_one_honesty_sentence_per_run():
    sparse = result(config={"method": "unstructured"}, simulated=True, extra={"simulated_metrics": ["latency_ms"]})
    text = honesty_sentence(sparse)
    assert text.startswith("Size and MACs are real; latency is simulated") and "dense kernels" in text
    fake = result("quantize", simulated=True, extra={"simulated_metrics": ["latency_ms"]})
    assert "dequantized float model" in honesty_sentence(fake)
    assert honesty_sentence(result()).startswith("Every gain is real")
    assert "all treated as simulated" in honesty_sentence({"simulated": True, "extra": {}, "method": "prune"})
    # a stored row says the same as the result it came from
    row = {**sparse.to_dict(), "extra": dict(sparse.extra)}
    assert honesty_sentence(row) == text


# ---- sanity words ---------------------------------------------------------------------------------

def test_chance_level_and_far_below_baseline_say_why_and_the_fix():
    chance = sanity_warning(result(config={"method": "unstructured", "ratio": 0.95, "finetune_epochs": 0},
                                   accuracy=0.1))
    assert chance.startswith("Chance level: 10.00 % on 10 classes") and "set fine-tuning epochs" in chance
    low = sanity_warning(result("architecture", {"recover": "none"}, accuracy=0.5824))
    assert "33.76 points under the uncompressed 92.00 %" in low and "run recovery training" in low
    q = sanity_warning(result("quantize", {"method": "uniform", "bits": 2}, accuracy=0.5))
    assert "more bits, or quantization-aware training" in q
    step = sanity_warning({"method": "pipeline", "dataset": "fashion-mnist", "accuracy": 0.1, "baseline": None,
                           "config": {"step_kind": "prune", "step_ratio": 0.9, "step_finetune_epochs": 0}})
    assert "without fine-tuning" in step
    assert sanity_warning(result(accuracy=0.90)) is None           # 2 points under: fine
    assert sanity_warning(result(accuracy=0.13)).startswith("Far below")  # 3 points above chance: not chance
    assert sanity_warning(result(accuracy=0.11, dataset="imagefolder:x")).startswith("Far below")  # classes unknown
    assert sanity_warning(result(accuracy=0.11, dataset="imagefolder:x"), classes=10).startswith("Chance level")


def test_plain_cli_line_says_the_change_the_simulated_metrics_and_the_warning():
    from compression.cli import format_line
    r = result(config={"method": "unstructured", "ratio": 0.95, "finetune_epochs": 0}, accuracy=0.1, simulated=True,
               extra={"simulated_metrics": ["latency_ms"]})
    line = format_line(r.to_dict())
    assert "(4.00x smaller)" in line and "simulated: latency_ms" in line
    assert "\n  warning: Chance level" in line and "set fine-tuning epochs" in line
    assert "warning" not in format_line(result().to_dict())


def _folder_run(folder, accuracy, base_accuracy, **extra_fields):
    return {"id": 1, "created_at": 0.0, "model": "torchvision:resnet18", "dataset": f"imagefolder:{folder}",
            "method": "prune", "config": {"method": "structured", "ratio": 0.5, "epochs": 1}, "device": "cpu",
            "code_version": "t", "accuracy": accuracy, "accuracy_n": 500, "params": 10, "nonzero_params": 10,
            "size_bytes": 100, "macs": 1e6, "latency_ms": 1.0, "simulated": False, "starred": True,
            "baseline": {"accuracy": base_accuracy, "accuracy_n": 500, "params": 20, "nonzero_params": 20,
                         "size_bytes": 200, "macs": 2e6, "latency_ms": 2.0, "simulated": False},
            "extra": dict(extra_fields), "parent_id": None, "artifact_path": None}


def test_chance_level_outside_the_zoo_is_flagged_in_every_shared_view(tmp_path):
    """A 10-class image folder at 9-10.6 % (the issue's case): the story table, the explorer's table
    and hover, the CSV and the report all say "chance level", and the model (not the compression)
    is named as the cause when the uncompressed model is at chance too."""
    from compression.charts.export import csv_frame
    from compression.charts.pareto import explorer_frame, table_frame
    from compression.charts.story import story_table
    from compression.honesty import run_classes, sanity_flag
    from compression.report import report_html
    from support import write_tinted_folder
    from test_report import parse
    ref = write_tinted_folder(tmp_path / "photos", classes=10, train=1, test=1, tint=lambda c: (c % 3, 20 * c))
    folder = ref.split(":", 1)[1]
    run = _folder_run(folder, 0.106, 0.10)
    assert run_classes(run) == 10  # counted from the folder: no registered dataset, nothing recorded
    text = sanity_warning(run)
    assert text.startswith("Chance level, and so is the uncompressed model") and "wrong input normalization" in text
    assert "random init" in text and "--normalize" in text
    frame = explorer_frame([run])
    assert list(story_table(frame)["warning"]) == ["chance level"]
    assert list(table_frame(frame)["warning"]) == ["chance level"]
    assert list(csv_frame(frame)["warning"]) == ["chance level"]
    assert "⚠ chance level" in frame["hover"][0]
    doc = parse(report_html([run]))
    runs_table = next(t for k, t in doc.tables.items() if k.startswith("runs-"))
    assert runs_table[1][runs_table[0].index("warning")] == "chance level"
    starred = next(t for k, t in doc.tables.items() if k.startswith("starred-"))
    assert starred[1][starred[0].index("warning")] == "chance level"
    # a recorded class count is used when the folder is gone; a sound run has no flag
    gone = _folder_run(tmp_path / "moved", 0.51, 0.90, classes=2)
    assert run_classes(gone) == 2 and sanity_flag(gone) == "chance level"
    assert sanity_flag(_folder_run(folder, 0.70, 0.75)) == ""
    assert sanity_flag(_folder_run(folder, 0.40, 0.75)) == "-35.0 points vs baseline"


def test_a_baseline_at_chance_names_the_model_causes():
    base = {"method": "baseline", "dataset": "fashion-mnist", "accuracy": 0.099, "baseline": None, "config": {}}
    text = sanity_warning(base)
    assert text.startswith("Chance level") and "does not classify" in text
    assert "wrong input normalization" in text and "random init" in text
