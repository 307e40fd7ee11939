"""Comparing two runs image by image: the arithmetic by hand, stored predictions, refusals."""

import sqlite3

import numpy as np
import pytest

from compression import CompressionError
from compression.compare import compare_predictions, compare_runs
from compression.predictions import Predictions


def test_hand_made_predictions_give_the_hand_computed_numbers():
    classes = ("cat", "dog", "owl")          # no owl in this subset
    labels = np.array([0, 0, 0, 1, 1, 1])
    a = np.array([0, 0, 1, 1, 1, 0])         # right: 0 1 3 4 -> 4/6; cat 2/3, dog 2/3
    b = np.array([0, 1, 1, 1, 1, 1])         # right: 0 3 4 5 -> 4/6; cat 1/3, dog 3/3
    out = compare_predictions(a, b, labels, classes)
    assert out["agreement"] == pytest.approx(4 / 6)            # same class on images 0 2 3 4
    assert out["accuracy_a"] == pytest.approx(4 / 6) and out["accuracy_b"] == pytest.approx(4 / 6)
    cat, dog, owl = out["per_class"]
    assert (cat["a"], cat["b"], cat["diff"]) == pytest.approx((2 / 3, 1 / 3, -1 / 3))
    assert (dog["a"], dog["b"], dog["diff"]) == pytest.approx((2 / 3, 1.0, 1 / 3))
    assert owl == {"class": "owl", "index": 2, "n": 0, "a": None, "b": None, "diff": None}
    assert out["right_to_wrong"] == 1 and out["right_to_wrong_indices"] == [1]   # image 1: cat -> dog
    assert out["wrong_to_right"] == 1 and out["wrong_to_right_indices"] == [5]   # image 5: cat -> dog (right)
    assert out["flipped"] == [1, 5]
    # confusion (rows true, columns predicted), b - a: cat->cat -1, cat->dog +1; dog->cat -1, dog->dog +1
    assert out["confusion_diff"] == [[-1, 1, 0], [-1, 1, 0], [0, 0, 0]]
    assert sum(map(sum, out["confusion_diff"])) == 0


def test_predictions_round_trip_and_stay_small():
    import torch
    logits = torch.randn(10_000, 10)
    p = Predictions.from_logits(logits)
    back = Predictions.from_bytes(p.to_bytes())
    assert (back.predicted == logits.argmax(1).numpy()).all()
    assert np.allclose(back.confidence.astype(float), torch.softmax(logits, 1).max(1).values.numpy(), atol=1e-3)
    assert len(p.to_bytes()) < 30_000  # the bound per run, for 10,000 images


def test_stored_runs_compare_and_different_image_sets_are_refused(tmp_path, fmnist):
    from compression.methods import run_method
    from compression.store import RunStore
    store = RunStore(tmp_path / "runs.sqlite")
    a = run_method("mlp", fmnist, "prune", "unstructured:0.5", device="cpu", limit=500, store=store)
    b = run_method("mlp", fmnist, "quantize", "uniform:4", device="cpu", limit=500, store=store)
    c = run_method("mlp", fmnist, "quantize", "uniform:4", device="cpu", limit=300, store=store)
    out = compare_runs(a.extra["run_id"], b.extra["run_id"], store=store)
    assert out["n"] == 500 and 0.5 < out["agreement"] <= 1
    assert out["accuracy_a"] == pytest.approx(a.metrics.accuracy) and out["accuracy_b"] == pytest.approx(b.metrics.accuracy)
    assert out["right_to_wrong"] - out["wrong_to_right"] == round((a.metrics.accuracy - b.metrics.accuracy) * 500)
    with pytest.raises(CompressionError, match="different image sets"):
        compare_runs(a.extra["run_id"], c.extra["run_id"], store=store)
    vs_base = compare_runs(a.extra["run_id"], store=store)  # against the model it came from
    assert vs_base["run_a"] is None and vs_base["accuracy_b"] == pytest.approx(a.metrics.accuracy)


def test_a_store_from_before_predictions_opens_and_says_none_are_stored(tmp_path):
    from compression.store import RunStore
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)  # schema 1, as written before predictions were kept
    db.executescript("""CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL,
        model TEXT NOT NULL, dataset TEXT NOT NULL, method TEXT NOT NULL, config TEXT NOT NULL, device TEXT NOT NULL,
        code_version TEXT NOT NULL, accuracy REAL NOT NULL, accuracy_n INTEGER NOT NULL, params INTEGER NOT NULL,
        nonzero_params INTEGER NOT NULL, size_bytes INTEGER NOT NULL, macs REAL NOT NULL, latency_ms REAL NOT NULL,
        simulated INTEGER NOT NULL, baseline TEXT, extra TEXT NOT NULL, parent_id INTEGER, artifact_path TEXT);
        INSERT INTO runs VALUES (1, 0, 'mlp', 'fashion-mnist', 'prune', '{}', 'cpu', 'old', 0.9, 10000, 1, 1, 1,
                                 1, 0.1, 1, NULL, '{}', NULL, NULL);
        PRAGMA user_version = 1;""")
    db.close()
    store = RunStore(path)
    assert store.get(1)["model"] == "mlp" and store.predictions(1) is None
    with pytest.raises(CompressionError, match="no predictions stored"):
        compare_runs(1, store=store)


def test_baseline_and_early_exit_runs_keep_predictions_and_compare(home, fmnist):
    """An `evaluate` run and an early-exit run keep each image's prediction like every family, so
    `compare A B` works with either (issue 26: it refused with a false reason)."""
    from compression.evaluate import evaluate
    from compression.methods import run_method
    from compression.store import RunStore
    store = RunStore()
    base = evaluate("cnn_exits")  # early exit measures on the whole test split: its table is per model
    base_id = store.add(base)
    exits = run_method("cnn_exits", None, "early-exit", {"criterion": "confidence", "thresholds": [0.9]},
                       store=store)
    exit_id = exits.extra["run_id"]
    for run_id, acc in ((base_id, base.metrics.accuracy), (exit_id, exits.metrics.accuracy)):
        preds = store.predictions(run_id)
        assert preds is not None and preds.n == store.get(run_id)["accuracy_n"]
        labels = fmnist.test.head(preds.n).labels.numpy()
        assert (preds.predicted == labels).mean() == pytest.approx(acc)  # the stored accuracy, image by image
    out = compare_runs(base_id, exit_id, store=store)
    assert out["accuracy_a"] == pytest.approx(base.metrics.accuracy)
    assert out["accuracy_b"] == pytest.approx(exits.metrics.accuracy)
    # images that leave early may change class; those that run to the end agree with the baseline
    assert 0.5 < out["agreement"] <= 1.0


def test_a_run_without_predictions_says_the_real_reason(home):
    from compression.compare import missing_predictions_reason
    assert "baseline (evaluate) run" in missing_predictions_reason({"method": "baseline"})
    assert "re-evaluate its model" in missing_predictions_reason({"method": "baseline"})
    assert "early-exit" in missing_predictions_reason({"method": "early-exit", "artifact_path": "x.cxp"})
    assert "no artifact was kept" in missing_predictions_reason({"method": "prune", "artifact_path": None})


def test_a_baseline_run_without_predictions_is_re_evaluated_from_its_model(home, fmnist):
    from compression.compare import reevaluate
    from compression.evaluate import evaluate
    from compression.store import RunStore
    result = evaluate("mlp", limit=200)
    result = type(result)(**{**result.__dict__, "predictions": None})  # as stored before baseline runs kept them
    store = RunStore()
    run_id = store.add(result)
    assert store.predictions(run_id) is None
    with pytest.raises(CompressionError, match="baseline \\(evaluate\\) run"):
        compare_runs(run_id, store=store)
    preds = reevaluate(store.get(run_id), store=store)
    assert preds.n == 200 and (preds.predicted == fmnist.test.head(200).labels.numpy()).mean() == \
        pytest.approx(result.metrics.accuracy)
    assert store.predictions(run_id) is not None
