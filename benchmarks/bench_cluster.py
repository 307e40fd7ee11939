"""Sweeps on a Dask cluster against the same sweep in one process, side by side in one run.

1. `sweep`: an 8-point structured pruning sweep on `lenet5` (L1, layer scope, ratios 0.1 .. 0.8),
   one fine-tuning epoch per point on the train split, accuracy on all 10k test images. In-process
   (one job after another, torch with every core as intra-op threads) against `local:2` (a Dask
   LocalCluster of 2 worker processes, 1 torch thread each, so the two do not fight over the
   cores). The cluster's start-up (spawning workers, importing torch there) is timed apart and
   counted in the end-to-end ratio. Both runs must give the same accuracy and bytes per point:
   the rows say whether they did.

Each sweep writes to its own temporary app data folder (run store, artifacts).
"""

from __future__ import annotations

import time

import torch

from benchmarks import common
from compression.data import load_dataset
from compression.pruning import FinetuneConfig, PruneConfig, sweep

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
MODEL = "lenet5"
FT = FinetuneConfig(epochs=1, lr=1e-3, split="train")


def _sweep(executor) -> tuple[float, list[dict]]:
    data = load_dataset("fashion-mnist")
    with common.temporary_home("bench-cluster-"):
        start = time.perf_counter()
        points = [{"ratio": o.result.config["ratio"], "accuracy": o.result.metrics.accuracy,
                   "size_bytes": o.result.metrics.size_bytes}
                  for o in sweep(MODEL, data, PruneConfig("structured", 0.5, "layer"), RATIOS, FT,
                                 device="cpu", store=True, executor=executor)]
        return time.perf_counter() - start, sorted(points, key=lambda p: p["ratio"])


def _sweep_rows() -> list[dict]:
    from compression.sweep import InProcessExecutor, from_setting
    local_s, local_points = _sweep(InProcessExecutor())
    start = time.perf_counter()
    cluster = from_setting("local:2")
    startup_s = time.perf_counter() - start
    try:
        cluster_s, cluster_points = _sweep(cluster)
    finally:
        cluster.close()
    same = all(a["accuracy"] == b["accuracy"] and a["size_bytes"] == b["size_bytes"]
               for a, b in zip(local_points, cluster_points)) and len(local_points) == len(cluster_points)
    common_row = {"model": MODEL, "points": len(RATIOS), "finetune_epochs": FT.epochs,
                  "same_numbers": same}
    return [
        {**common_row, "engine": f"in-process ({torch.get_num_threads()} torch threads)",
         "sweep_s": round(local_s, 1), "startup_s": 0.0, "speedup": 1.0, "speedup_with_startup": 1.0},
        {**common_row, "engine": "local:2 (2 workers x 1 thread)", "sweep_s": round(cluster_s, 1),
         "startup_s": round(startup_s, 1), "speedup": round(local_s / cluster_s, 2),
         "speedup_with_startup": round(local_s / (cluster_s + startup_s), 2)},
    ] + [{"model": MODEL, "engine": "point", "ratio": a["ratio"], "accuracy_in_process": a["accuracy"],
          "accuracy_cluster": b["accuracy"], "bytes_in_process": a["size_bytes"], "bytes_cluster": b["size_bytes"]}
         for a, b in zip(local_points, cluster_points)]


def run() -> list[dict]:
    rows: list[dict] = []
    for part in common.parts(["sweep"]):
        if part == "sweep":
            rows += _sweep_rows()
    return rows
