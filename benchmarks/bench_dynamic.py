"""Dynamic computation on the default device, every ratio measured side by side in this run.

Early exit (lenet5_exits, cnn_exits): the first pass that runs every exit over the 10k test
images (once per model), then a 200-threshold sweep over that cached table (target: under 100 ms).
At the thresholds chosen on the validation split (fewest mean MACs within 1 point of the full
network's validation accuracy), on the test split: accuracy against the full network, mean MACs,
batch-1 latency with real early exit against the full network (1,000 test images timed one by
one, interleaved; expected time per image = exit shares x each exit's median time), and batch-256
throughput with exited images dropped from the batch against the full network (median of 20
batches). Dynamic width (cnn_slim): accuracy, MACs and batch-1 latency of each width as the plain
model it becomes, against width 1.0."""

from __future__ import annotations

import time

from benchmarks import common
from benchmarks.common import timed
from compression.data import load_dataset
from compression.device import get_device
from compression.dynamic import (CRITERIA, EarlyExitConfig, choose_thresholds, curve_thresholds, early_exit_result,
                                 exit_table, sweep, sweep_shared, width_results)
from compression.models import load_pretrained, model_card


def _early_exit_rows(name: str, data, device) -> list[dict]:
    model = load_pretrained(name, device)
    start = time.perf_counter()
    table = exit_table(model, data, device=device)
    first_pass = time.perf_counter() - start
    taus = curve_thresholds(table, "confidence", 200)
    sweep_ms = timed(lambda: sweep_shared(table, "confidence", taus), repeats=20) * 1000
    per_image_ms = timed(lambda: sweep(table, "confidence", taus), repeats=5) * 1000
    val = exit_table(model, data, split="val", device=device)
    rows = []
    for criterion in CRITERIA:
        cfg = EarlyExitConfig(criterion, choose_thresholds(val, criterion, max_drop=0.01))
        r = early_exit_result(model, data, cfg, name=name, device=device, table=table,
                              latency_images=1000, throughput_batches=20).to_dict()
        base = r["baseline"]
        rows.append({
            "what": f"{name} {criterion} {'/'.join(f'{t:.4g}' for t in r['thresholds'])}",
            "accuracy %": r["accuracy"] * 100, "full accuracy %": base["accuracy"] * 100,
            "delta pts": (r["accuracy"] - base["accuracy"]) * 100,
            "exit shares": "/".join(f"{s:.3f}" for s in r["exit_shares"]),
            "mean MACs": r["macs"], "MACs x full": r["macs_ratio"],
            "b1 early ms": r["latency_ms"], "b1 full ms": r["full_latency_ms"],
            "b1 speedup": r["latency_speedup"],
            "b256 early img/s": r["throughput"], "b256 full img/s": r["full_throughput"],
            "b256 speedup": r["throughput"] / r["full_throughput"],
            "first pass s": first_pass, "200-threshold sweep ms": sweep_ms,
            "200 thresholds image by image ms": per_image_ms,
            "device": r["device"],
        })
    return rows


def _width_rows(name: str, data, device) -> list[dict]:
    rows = []
    for r in width_results(load_pretrained(name, device), data, name=name, device=device):
        rows.append({"what": f"{name} width {r.config['width']}", "accuracy %": r.metrics.accuracy * 100,
                     "full accuracy %": r.baseline.accuracy * 100,
                     "delta pts": (r.metrics.accuracy - r.baseline.accuracy) * 100,
                     "mean MACs": r.metrics.macs, "MACs x full": r.extra["macs_ratio"],
                     "b1 early ms": r.metrics.latency_ms, "b1 full ms": r.baseline.latency_ms,
                     "b1 speedup": r.baseline.latency_ms / r.metrics.latency_ms,
                     "params": r.metrics.params, "size bytes": r.metrics.size_bytes, "device": r.device})
    return rows


def run() -> list[dict]:
    device = get_device()
    data = load_dataset("fashion-mnist")
    rows = []
    chosen = common.parts(["lenet5_exits", "cnn_exits", "cnn_slim"])
    for name in ("lenet5_exits", "cnn_exits"):
        if name in chosen:
            rows += _early_exit_rows(name, data, device)
    if "cnn_slim" in chosen:
        rows += _width_rows("cnn_slim", data, device)
    for plain in ("lenet5", "cnn"):  # the same architectures trained without exits (from their cards)
        card = model_card(plain)
        rows.append({"what": f"{plain} (plain zoo model, card)", "accuracy %": card["test_accuracy"] * 100,
                     "mean MACs": card["macs"]})
    return rows
