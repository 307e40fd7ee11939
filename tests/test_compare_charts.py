"""The compare view's figures and frames (compression.charts.compare): pure functions of a
comparison (compression.compare) and of stored runs, checked on hand-made data."""

import numpy as np
import pandas as pd
import pytest

from compression.charts.compare import (confusion_diff_chart, flip_rows, layer_frame, parallel_chart,
                                        per_class_chart, thumbnail)
from compression.compare import compare_predictions

CLASSES = ("cat", "dog", "owl")
LABELS = np.array([0, 0, 0, 1, 1, 1])
A = np.array([0, 0, 1, 1, 1, 0])
B = np.array([0, 1, 1, 1, 1, 1])


@pytest.fixture
def cmp():
    return compare_predictions(A, B, LABELS, CLASSES)


def test_per_class_chart_is_sorted_by_the_difference_and_leaves_out_empty_classes(cmp):
    fig = per_class_chart(cmp, "base", "run 3")
    acc_a, acc_b, diff = fig.data
    assert list(diff.x) == ["cat", "dog"]                      # cat -33.3 before dog +33.3; owl has no images
    assert list(diff.y) == pytest.approx([-100 / 3, 100 / 3])
    assert list(diff.marker.color) == ["#d62728", "#2ca02c"]   # worse red, better green
    assert list(acc_a.y) == pytest.approx([200 / 3, 200 / 3]) and list(acc_b.y) == pytest.approx([100 / 3, 100])
    assert (acc_a.name, acc_b.name) == ("base", "run 3")


def test_confusion_diff_heatmap_is_centered_on_zero(cmp):
    (heat,) = confusion_diff_chart(cmp, CLASSES).data
    assert np.asarray(heat.z).tolist() == [[-1, 1, 0], [-1, 1, 0], [0, 0, 0]]
    assert heat.zmid == 0 and heat.zmin == -heat.zmax
    assert heat.text[0][1] == "+1" and heat.text[2][2] == ""


def test_flip_rows_by_kind_and_true_class(cmp):
    rows = flip_rows(cmp, A, B, LABELS, CLASSES)
    assert rows == [{"index": 1, "kind": "right_to_wrong", "true": "cat", "a": "cat", "b": "dog"},
                    {"index": 5, "kind": "wrong_to_right", "true": "dog", "a": "cat", "b": "dog"}]
    assert [r["index"] for r in flip_rows(cmp, A, B, LABELS, CLASSES, kind="wrong_to_right")] == [5]
    assert [r["index"] for r in flip_rows(cmp, A, B, LABELS, CLASSES, true_class="cat")] == [1]
    assert flip_rows(cmp, A, B, LABELS, CLASSES, true_class="owl") == []
    assert len(flip_rows(cmp, A, B, LABELS, CLASSES, limit=1)) == 1
    with pytest.raises(ValueError):
        flip_rows(cmp, A, B, LABELS, CLASSES, kind="sideways")


def test_thumbnails_take_the_shape_images_are_shown_in():
    assert thumbnail(np.zeros((1, 28, 28), np.uint8)).shape == (28, 28)
    assert thumbnail(np.zeros((3, 32, 32), np.uint8)).shape == (32, 32, 3)


PRUNED = {"extra": {"layers": [
    {"layer": "1", "weights_before": 100, "weights_after": 100, "nonzero_after": 10, "kept_weights": 0.1},
    {"layer": "3", "weights_before": 50, "weights_after": 50, "nonzero_after": 25, "kept_weights": 0.5}]}}
QUANTIZED = {"extra": {"layers": [{"name": "1", "bits": 4, "quantized": True, "bits_per_weight": 4.04},
                                  {"name": "3", "bits": 8, "quantized": False}]}}


def test_layer_frame_side_by_side_and_not_available():
    df = layer_frame(PRUNED, QUANTIZED, "run 1", "run 2")
    assert list(df["layer"]) == ["1", "3"]
    assert list(df["run 1: kept (%)"]) == pytest.approx([10, 50]) and list(df["run 1: zero (%)"]) == pytest.approx([90, 50])
    assert list(df["run 2: bits"]) == pytest.approx([4.04, 32])   # a layer kept in float is 32 bits
    assert df["run 1: bits"].isna().all() and df["run 2: kept (%)"].isna().all()
    base = layer_frame(None, PRUNED, "baseline", "run 1")           # None: the uncompressed model
    assert list(base["baseline: kept (%)"]) == [100, 100] and list(base["baseline: bits"]) == [32, 32]
    assert layer_frame({"extra": {}}, {"extra": {"gain": "x"}}) is None
    other = {"extra": {"layers": [{"layer": "features.0", "kept_weights": 1.0}]}}
    assert layer_frame(PRUNED, other) is None                        # no layer in common: other architecture


def test_parallel_chart_axes_are_knobs_and_metrics_colored_by_accuracy():
    runs = pd.DataFrame([
        {"method": "prune", "model": "mlp", "config": {"ratio": 0.5, "structured": True}, "accuracy": 0.8,
         "size_bytes": 1000, "params": 100, "macs": 1e5, "latency_ms": 0.1},
        {"method": "prune", "model": "cnn", "config": {"ratio": 0.9, "structured": False}, "accuracy": 0.6,
         "size_bytes": 200, "params": 20, "macs": 1e4, "latency_ms": 0.05},
        {"method": "quantize", "model": "mlp", "config": {"bits": 4, "scheme": "uniform"}, "accuracy": 0.85,
         "size_bytes": 300, "params": 100, "macs": 1e5, "latency_ms": 0.1}])
    (pc,) = parallel_chart(runs).data
    labels = [d.label for d in pc.dimensions]
    assert labels[:2] == ["method", "model"]
    assert {"ratio", "structured"} <= set(labels)  # knobs whose value differs between runs
    assert not {"bits", "scheme"} & set(labels)    # one value, on the quantize run only: the method axis says it
    assert labels[-5:] == ["accuracy (%)", "stored size (log)", "parameters (log)", "MACs / image (log)", "latency (ms)"]
    ratio = pc.dimensions[labels.index("ratio")]
    assert ratio.ticktext[0] == "–" and ratio.values[2] < 0.5       # the quantize run has no ratio: below the range
    structured = pc.dimensions[labels.index("structured")]
    assert list(structured.ticktext) == ["–", "False", "True"] and list(structured.values) == [2, 1, 0]
    assert list(pc.line.color) == pytest.approx([80, 60, 85])
    assert list(pc.dimensions[labels.index("stored size (log)")].values) == pytest.approx([3, np.log10(200), np.log10(300)])
