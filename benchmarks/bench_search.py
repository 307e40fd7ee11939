"""Search over Deep Compression's knobs on `mlp` (LeNet-300-100, Fashion-MNIST; all 10k test
images, the full training split): an Optuna study (compression.search, family deep-compression:
pruning ratio and cycles, fine-tuning epochs, cluster bits, Huffman on/off, centroid fine-tuning
epochs) minimizing stored bytes beside accuracy, under a hard budget of 1/40 of the float32
state_dict. One row per trial, then the trial chosen (the most accurate within the budget) and the
smallest trial within 1 point of the baseline's accuracy, with bytes, ratio, drop, trials, seconds.

`python -m benchmarks search:deep` (results/search.deep.json). BENCH_SEARCH_TRIALS (default 12)
and BENCH_SEARCH_SECONDS (default 1200: no trial starts that would, at the mean trial's length, end
after it) bound the run."""

from __future__ import annotations

import os
import tempfile
import time

from benchmarks.common import parts
from compression.device import get_device
from compression.evaluate import dataset_for
from compression.metrics import baseline_metrics
from compression.search import SearchConfig, best, iter_search

MODEL = "mlp"
RATIO = 40          # the target: at least 40x fewer bytes than float32 ...
POINTS = 1.0        # ... within 1 point of the baseline's accuracy


def _row(what: str, r: dict, base) -> dict:
    drop = round(100 * (base.accuracy - r["accuracy"]), 2)
    return {"what": what, "trial": r["trial"], "spec": r["spec"], "accuracy %": round(100 * r["accuracy"], 2),
            "drop (points)": drop, "bytes": int(r["cost"]), "x fewer bytes": round(base.size_bytes / r["cost"], 2),
            "target met": bool(base.size_bytes / r["cost"] >= RATIO and drop <= POINTS),
            **({"seconds": r["seconds"]} if "seconds" in r else {})}


def deep(trials: int, seconds: float) -> list[dict]:
    device = get_device()
    data = dataset_for(MODEL)
    base = baseline_metrics(MODEL, data, device)
    cfg = SearchConfig(objective="size_bytes", budget=base.size_bytes / RATIO, methods=("deep-compression",),
                       trials=trials, seed=0)
    rows, found = [{"what": f"{MODEL} fp32 state_dict", "accuracy %": round(100 * base.accuracy, 2),
                    "bytes": base.size_bytes, "x fewer bytes": 1.0}], []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:  # a study of its own, not the user's search.sqlite
        storage = f"sqlite:///{tmp}/search.sqlite"
        # trials run one at a time in this process: none is cut short, and none starts that would,
        # taking as long as the mean trial so far, end after the deadline
        for r in iter_search(MODEL, data.name, cfg, study="bench-deep", device=device.type, store=False,
                             storage=storage):
            found.append(r)
            rows.append(_row("trial", r, base))
            elapsed = time.perf_counter() - start
            if elapsed + elapsed / len(found) > seconds:
                break
    wall = round(time.perf_counter() - start, 1)
    chosen, fits = best(found, cfg.budget)
    close = [r for r in found if 100 * (base.accuracy - r["accuracy"]) <= POINTS]
    summary = {"trials": len(found), "search seconds": wall, "budget bytes": round(cfg.budget)}
    if chosen is not None:
        rows.append({**_row("chosen: most accurate within 1/40 of fp32" if fits else
                            "chosen: nothing within 1/40 of fp32, the cheapest trial", chosen, base), **summary})
    if close:
        rows.append({**_row(f"smallest within {POINTS:g} point", min(close, key=lambda r: r["cost"]), base), **summary})
    return rows


def run() -> list[dict]:
    rows = []
    for part in parts(["deep"]):
        if part == "deep":
            rows += deep(int(os.environ.get("BENCH_SEARCH_TRIALS", 12)),
                         float(os.environ.get("BENCH_SEARCH_SECONDS", 1200)))
    return rows
