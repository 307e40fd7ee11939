"""What compression changed, image by image: two runs' predictions on the same test images.

`compare_predictions` is the arithmetic (agreement, per-class accuracy of each and the difference,
the confusion matrices' difference, right -> wrong and wrong -> right flips with the image
indices); `compare_runs` reads two stored runs (a run's baseline when the second is None: the
reference's own model, evaluated now on the same images) and refuses runs evaluated on different
image sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compression import CompressionError


def compare_predictions(a: np.ndarray, b: np.ndarray, labels: np.ndarray,
                        classes: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """a, b: predicted class per image (N,); labels: true class (N,). Per class: accuracy of a and
    of b on that class's images (None when the subset has none), their difference and the count."""
    a, b, labels = (np.asarray(x).astype(np.int64) for x in (a, b, labels))
    if not (a.shape == b.shape == labels.shape) or a.ndim != 1:
        raise CompressionError(f"predictions of {a.shape[0]} and {b.shape[0]} images cannot be compared "
                               f"with {labels.shape[0]} labels: the runs were evaluated on different image sets")
    k = len(classes)
    right_a, right_b = a == labels, b == labels
    per_class = []
    for c, name in enumerate(classes):
        mask = labels == c
        n = int(mask.sum())
        acc_a = float(right_a[mask].mean()) if n else None
        acc_b = float(right_b[mask].mean()) if n else None
        per_class.append({"class": name, "index": c, "n": n, "a": acc_a, "b": acc_b,
                          "diff": None if n == 0 else acc_b - acc_a})
    conf_a = np.zeros((k, k), dtype=np.int64)
    conf_b = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf_a, (labels, a), 1)
    np.add.at(conf_b, (labels, b), 1)
    r2w = np.flatnonzero(right_a & ~right_b)
    w2r = np.flatnonzero(~right_a & right_b)
    return {
        "n": int(labels.shape[0]),
        "agreement": float((a == b).mean()) if labels.size else 1.0,
        "accuracy_a": float(right_a.mean()) if labels.size else None,
        "accuracy_b": float(right_b.mean()) if labels.size else None,
        "per_class": per_class,
        "confusion_diff": (conf_b - conf_a).tolist(),   # rows: true class, columns: predicted (b - a)
        "right_to_wrong": int(r2w.size), "wrong_to_right": int(w2r.size),
        "flipped": sorted(int(i) for i in np.concatenate([r2w, w2r])),
        "right_to_wrong_indices": r2w.tolist(), "wrong_to_right_indices": w2r.tolist(),
    }


def _labels(dataset_name: str, n: int):
    from compression.data import load_dataset
    data = load_dataset(dataset_name)
    return data, data.test.head(n).labels.numpy()


def baseline_predictions(run: dict, device: str = "cpu"):
    """The predictions of a run's reference model as given, on the run's test images."""
    from compression.predictions import Predictions
    from compression.refs import resolve
    from compression.training import predict
    resolved = resolve(run["model"].split("+")[0], run["dataset"], device=device)
    return Predictions.from_logits(predict(resolved.model, resolved.dataset, device=device, limit=run["accuracy_n"]))


def _stored(store: Any, run_id: int):
    """(run, its predictions) from the store, or the one-line reason they cannot be compared."""
    run = store.get(run_id)
    if run is None:
        raise CompressionError(f"no run {run_id} in {store.path}")
    predictions = store.predictions(run_id)
    if predictions is None:
        raise CompressionError(f"run {run_id}: {missing_predictions_reason(run)}")
    return run, predictions


def missing_predictions_reason(run: dict) -> str:
    """Why a stored run has no predictions, and what gives it some (one line): the real reason for
    its kind of run, not a guess."""
    if run.get("method") == "baseline":
        why = "a baseline (evaluate) run stored before baseline runs kept their predictions"
        fix = "re-evaluate its model to compare it"
    elif run.get("method") in ("early-exit",):
        why = "an early-exit run stored before early-exit runs kept the prediction of each image's exit"
        fix = "re-evaluate its artifact (run to the end) or run the thresholds again"
    else:
        why = "stored before runs kept their predictions"
        fix = "re-evaluate its artifact to compare it"
    if run.get("method") != "baseline" and not run.get("artifact_path"):
        fix = "no artifact was kept, so only running it again gives predictions"
    return f"no predictions stored ({why}); {fix}"


def load_pair(a_id: int, b_id: int | None = None, *, store: Any = None, device: str = "cpu"):
    """(run_a, predictions_a, run_b, predictions_b) of two stored runs, checked for comparing (b_id
    None: a = run a's reference model as given, evaluated now, b = run a). Refuses runs without
    stored predictions (saying so) and runs evaluated on different image sets."""
    from compression.store import RunStore
    store = store or RunStore()
    run_a, pred_a = _stored(store, a_id)
    if b_id is None:  # a = the reference's own model, b = the run: "what did compression change"
        run_b, pred_b = run_a, pred_a
        run_a, pred_a = {**run_a, "id": None, "method": "baseline"}, baseline_predictions(run_a, device)
    else:
        run_b, pred_b = _stored(store, b_id)
    if run_a["dataset"] != run_b["dataset"] or pred_a.n != pred_b.n:
        raise CompressionError(f"runs {run_a.get('id') or 'baseline'} and {run_b['id']} were "
                               f"evaluated on different image sets ({run_a['dataset']}, {pred_a.n} images vs "
                               f"{run_b['dataset']}, {pred_b.n} images); compare runs on the same test images")
    return run_a, pred_a, run_b, pred_b


def pair_names(run_a: dict, run_b: dict) -> tuple[str, str]:
    """What the two sides are called (compression.run_labels.run_title: the name the user gave, else
    what the run did); a run with no id is the reference's own model, "uncompressed <model>". Two
    sides that would read the same get their run ids."""
    from compression.run_labels import run_title

    def title(run):
        return f"uncompressed {run['model'].split('+')[0]}" if run.get("id") is None else run_title(run)
    a, b = title(run_a), title(run_b)
    if a == b:
        a, b = (f"{t} (run {r['id']})" if r.get("id") is not None else t for t, r in ((a, run_a), (b, run_b)))
    return a, b


def compare_loaded(run_a: dict, pred_a, run_b: dict, pred_b) -> dict[str, Any]:
    """compare_predictions on a loaded pair (load_pair), with the runs named (pair_names)."""
    data, labels = _labels(run_a["dataset"], pred_a.n)
    out = compare_predictions(pred_a.predicted, pred_b.predicted, labels, data.classes)
    name_a, name_b = pair_names(run_a, run_b)
    out.update(run_a=run_a.get("id"), run_b=run_b.get("id"), dataset=run_a["dataset"], name_a=name_a, name_b=name_b,
               model_a=run_a["model"], model_b=run_b["model"], method_a=run_a["method"], method_b=run_b["method"])
    return out


def compare_runs(a_id: int, b_id: int | None = None, *, store: Any = None, device: str = "cpu") -> dict[str, Any]:
    """Compare two stored runs (b_id None: run a against its own baseline model). Refuses runs
    without stored predictions (saying so) and runs evaluated on different image sets."""
    return compare_loaded(*load_pair(a_id, b_id, store=store, device=device))


def reevaluate(run: dict, *, store: Any = None, device: str = "cpu"):
    """Predictions for a run stored before runs kept them: load its artifact, predict on the same
    test images (the run's first accuracy_n), store them and return them."""
    from pathlib import Path

    from compression.artifact import load_artifact
    from compression.data import load_dataset
    from compression.paths import home_dir
    from compression.predictions import Predictions
    from compression.store import RunStore
    from compression.training import predict
    if run.get("method") == "baseline" and not run.get("artifact_path"):  # the model as given: evaluate it again
        from compression.refs import resolve
        from compression.training import predict as predict_
        config = run.get("config") or {}
        resolved = resolve(run["model"].split("+")[0], run["dataset"], device=device, weights=config.get("weights"),
                           pretrained=bool(config.get("pretrained")))
        preds = Predictions.from_logits(predict_(resolved.model, resolved.dataset, device=device, limit=run["accuracy_n"]))
        (store or RunStore()).add_predictions(run["id"], preds)
        return preds
    if not run.get("artifact_path"):
        raise CompressionError(f"run {run['id']}: no artifact was kept, so it cannot be re-evaluated")
    path = Path(run["artifact_path"])
    path = path if path.is_absolute() else home_dir() / path
    if not path.is_file():
        raise CompressionError(f"run {run['id']}: its artifact {str(path)!r} is no longer on disk")
    model = load_artifact(path.read_bytes())
    preds = Predictions.from_logits(predict(model, load_dataset(run["dataset"]), device=device, limit=run["accuracy_n"]))
    (store or RunStore()).add_predictions(run["id"], preds)
    return preds
