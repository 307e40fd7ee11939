"""The re-check of an exported file, every time: loaded in its own runtime and run on the run's test
images, against the run's stored predictions (or, where the run stored none, the run's artifact
run in PyTorch). Reported: accuracy, agreement, the largest logit difference, the file's bytes and
its batch-1 / batch-256 latency in that runtime. Past the tolerance the report carries a warning
that names the first layer whose output diverges (compression.export.divergence)."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from compression.export.divergence import first_divergence
from compression.export.formats import ExportFormat
from compression.export.source import Source

TOLERANCES = {
    # float: the same function up to float rounding, so at most 1 image in 1,000 may change class
    "float": {"agreement": 0.999, "accuracy_points": None, "layer_error": 1e-3},
    # int8: quantization noise moves borderline images; the accuracy may move 0.3 points at most
    "int8": {"agreement": 0.99, "accuracy_points": 0.3, "layer_error": 0.1},
}
BATCH = 256
PROBE_IMAGES = 32


def exit_scores(logits: np.ndarray, criterion: str) -> np.ndarray:
    """(B, C) -> (B,): softmax maximum, or entropy / log C (float64, as compression.dynamic decides)."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1)
    if criterion == "confidence":
        return 1.0 / s
    return (np.log(s) - (e * z).sum(axis=1) / s) / math.log(logits.shape[1])


def final_logits(outputs: list[np.ndarray], rule: dict[str, Any] | None) -> np.ndarray:
    """The logits each image ends with: the exit rule applied to every exit's logits (the first exit
    whose score passes its threshold), or the last output."""
    chosen = np.array(outputs[-1], copy=True)
    if not rule:
        return chosen
    left = np.zeros(chosen.shape[0], dtype=bool)
    for logits, tau in zip(outputs[:-1], rule["thresholds"]):
        score = exit_scores(logits, rule["criterion"])
        leaves = (score > tau if rule["criterion"] == "confidence" else score < tau) & ~left
        chosen[leaves] = logits[leaves]
        left |= leaves
    return chosen


def _torch_outputs(source: Source, x: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        outs = source.model.forward_all(x) if source.exits > 1 else [source.model(x)]
    return [o.float().numpy() for o in outs]


def _median_ms(fn: Callable[[], Any], calls: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def latency(run: Callable[[np.ndarray], Any], input_shape: tuple[int, ...]) -> dict[str, float]:
    """Median wall time of batch 1 (50 calls) and batch 256 (5 calls) in the file's runtime, ms."""
    gen = np.random.default_rng(0)
    x1 = gen.standard_normal((1, *input_shape), dtype=np.float32)
    xb = gen.standard_normal((BATCH, *input_shape), dtype=np.float32)
    return {"batch_1": _median_ms(lambda: run(x1), 50, 10), f"batch_{BATCH}": _median_ms(lambda: run(xb), 5, 1)}


def recheck(source: Source, fmt: ExportFormat, path: Path, *, timing: bool = True,
            progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None) -> dict:
    """Run the exported file at `path` in its own runtime on the run's test images; the report."""
    started = time.perf_counter()
    progress = progress or (lambda entry: None)
    opened = fmt.open(Path(path), source)
    n, rule = source.images, source.exit_rule
    labels = source.dataset.test.head(n).labels.numpy()
    file_pred, torch_pred, max_diff, done = [], [], 0.0, 0
    for x, _ in source.dataset.batches("test", BATCH, limit=n):
        if should_stop is not None and should_stop():
            return {"format": fmt.name, "stopped": True, "ok": False, "images": done,
                    "warning": f"stopped after {done:,} of {n:,} images: the file was not re-checked"}
        got = [np.asarray(o, np.float32) for o in opened.run(x.numpy())]
        ref = _torch_outputs(source, x)
        max_diff = max(max_diff, *(float(np.abs(g - r).max()) for g, r in zip(got, ref)))
        file_pred.append(final_logits(got, rule).argmax(1))
        torch_pred.append(final_logits(ref, rule).argmax(1))
        done += x.shape[0]
        progress({"phase": f"re-checking the {fmt.name} file", "done": done, "total": n})
    pred, torch_pred = np.concatenate(file_pred), np.concatenate(torch_pred)
    stored = source.predictions.predicted[:n].astype(np.int64) if source.predictions is not None else None
    reference = stored if stored is not None else torch_pred
    accuracy = float((pred == labels).mean())
    out = {"format": fmt.name, "file": str(path), "size_bytes": Path(path).stat().st_size, "runtime": fmt.runtime,
           "images": n, "accuracy": accuracy, "run_accuracy": source.run["accuracy"],
           "accuracy_change_points": (accuracy - source.run["accuracy"]) * 100,
           "agreement": float((pred == reference).mean()),
           "reference": ("the run's stored predictions" if stored is not None else
                         "the run's artifact in PyTorch (the run stored no predictions)"),
           "max_logit_diff": max_diff, "tolerance": dict(TOLERANCES[fmt.tolerance])}
    out.update(verdict(out, fmt.tolerance))
    if not out["ok"]:
        if opened.probe is not None:
            out["divergence"] = _divergence(source, opened, pred, reference, TOLERANCES[fmt.tolerance]["layer_error"])
        out["warning"] = warning_text(out)
    if timing:
        progress({"phase": f"timing the {fmt.name} file", "done": n, "total": n})
        out["latency_ms"] = latency(opened.run, source.dataset.input_shape)
    out["seconds"] = time.perf_counter() - started
    return out


def verdict(report: dict, tolerance: str) -> dict:
    """{"ok", "problems"}: the agreement (and, for int8, the accuracy) against the tolerance."""
    tol = TOLERANCES[tolerance]
    problems = []
    if report["agreement"] < tol["agreement"]:
        problems.append(f"agreement {report['agreement'] * 100:.2f} % with {report['reference']} "
                        f"(at least {tol['agreement'] * 100:g} %)")
    if tol["accuracy_points"] is not None and abs(report["accuracy_change_points"]) > tol["accuracy_points"]:
        problems.append(f"accuracy {report['accuracy'] * 100:.2f} % against the run's {report['run_accuracy'] * 100:.2f} % "
                        f"({report['accuracy_change_points']:+.2f} points; at most ±{tol['accuracy_points']})")
    return {"ok": not problems, "problems": problems}


def _divergence(source: Source, opened, pred: np.ndarray, reference: np.ndarray, threshold: float) -> dict:
    """The first diverging layer on the images the file gets wrong first (then others), up to 32."""
    wrong = np.flatnonzero(pred != reference)
    rest = np.setdiff1d(np.arange(len(pred)), wrong)
    chosen = np.concatenate([wrong, rest])[:PROBE_IMAGES]
    x = source.dataset.normalize(source.dataset.test.images[torch.from_numpy(chosen)]).numpy()
    return first_divergence(source.model, opened.probe, x, exits=source.exits > 1, threshold=threshold)


def warning_text(report: dict) -> str:
    div = report.get("divergence") or {}
    where = (f"the first layer whose output diverges is '{div['layer']}' (relative error {div['relative_error']:.3g} "
             f"on {PROBE_IMAGES} images; threshold {div['threshold']:g})" if div.get("layer") else
             "no single layer's output stands out (compared: "
             f"{div.get('compared', 0)} layers); the difference builds up over the network")
    return f"The exported {report['format']} file does not match the run: {'; '.join(report['problems'])}. {where}."
