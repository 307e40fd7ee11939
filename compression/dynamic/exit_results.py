"""Early exit measured: batch-1 latency and batch throughput timed for real against the full
network, and the Result at a set of thresholds (`early_exit_result`)."""

from __future__ import annotations

import math
import statistics
import time
from typing import Sequence

import torch

from compression.data import Dataset
from compression.device import synchronize
from compression.dynamic.exit_rule import EarlyExitConfig, _run_batch, _run_one
from compression.dynamic.exits import MultiExitNet, _in_eval_mode, require_multi_exit
from compression.dynamic.threshold_sweep import ExitTable, exit_table, sweep
from compression.metrics import Metrics, Result, count_nonzero, count_params
from compression.models import state_dict_bytes
from compression.timing import timing_of

@_in_eval_mode
@torch.inference_mode()
def early_exit_latency(model: MultiExitNet, dataset: Dataset, cfg: EarlyExitConfig, *,
                       device: torch.device | str = "cpu", images: int = 300, warmup: int = 20,
                       shares: Sequence[float] | None = None, exit_index: torch.Tensor | None = None,
                       per_exit: int = 20) -> dict:
    """Batch-1 wall time on real test images, early exit against the full network, interleaved
    image by image so both see the same machine load. Milliseconds.

    An image's time depends on where it leaves, so the early-exit latency is the expected time
    per image: sum over exits of (share of test images leaving there) x (median time of the timed
    images that left there). Medians keep a busy machine's stalls out of the number; the plain
    mean and median over the timed images are returned beside it. `exit_index` (where each test
    image leaves, from the sweep) lets rare exits get at least `per_exit` timed images."""
    device = torch.device(device)
    n = len(dataset.test) if exit_index is None else min(len(dataset.test), len(exit_index))  # --limit: the evaluated images
    chosen = list(range(min(images, n)))
    if exit_index is not None:
        for k in range(model.num_exits):
            have = sum(int(exit_index[i]) == k for i in chosen)
            extra = [i for i in (exit_index == k).nonzero().flatten().tolist() if i >= len(chosen)]
            chosen += extra[:max(0, per_exit - have)]
    xs = [dataset.normalize(dataset.test.images[i:i + 1], device) for i in chosen]
    taus = cfg.per_exit(model.num_exits)
    for x in xs[:warmup]:
        _run_one(model, x, cfg.criterion, taus)
        model(x)
    synchronize(device)
    early, full, where = [], [], []
    for i, x in enumerate(xs):
        for kind in (("early", "full") if i % 2 == 0 else ("full", "early")):
            start = time.perf_counter()
            if kind == "early":
                _, k = _run_one(model, x, cfg.criterion, taus)
            else:
                model(x)
            synchronize(device)
            (early if kind == "early" else full).append((time.perf_counter() - start) * 1000.0)
        where.append(int(k))
    per_exit_ms = [statistics.median([t for t, w in zip(early, where) if w == k]) if k in where else None
                   for k in range(model.num_exits)]
    if shares is None:
        shares = [where.count(k) / len(where) for k in range(model.num_exits)]
    expected = sum(s * (per_exit_ms[k] or 0.0) for k, s in enumerate(shares) if s > 0)
    # spreads (compression.timing): half-widths of the 95 % intervals of the medians; the expected
    # time's is the share-weighted sum of its exits' (an upper bound: the exits' errors add at worst)
    spread_k = [timing_of([t for t, w in zip(early, where) if w == k]).spread_ms if k in where else 0.0
                for k in range(model.num_exits)]
    return {"early_ms": expected, "full_ms": statistics.median(full), "per_exit_ms": per_exit_ms,
            "early_spread_ms": sum(s * spread_k[k] for k, s in enumerate(shares) if s > 0),
            "full_spread_ms": timing_of(full).spread_ms,
            "early_mean_ms": statistics.fmean(early), "early_median_ms": statistics.median(early),
            "full_mean_ms": statistics.fmean(full), "images": len(xs)}


@_in_eval_mode
@torch.inference_mode()
def early_exit_throughput(model: MultiExitNet, dataset: Dataset, cfg: EarlyExitConfig, *,
                          device: torch.device | str = "cpu", batch_size: int = 256, batches: int = 8) -> dict:
    """Images per second on real test batches: early exit (images that left are dropped from the
    batch) against the full network, alternating on the same batches; median batch time each."""
    device = torch.device(device)
    xs = [x for x, _ in dataset.batches("test", batch_size, device=device, limit=batch_size * batches)]
    taus = cfg.per_exit(model.num_exits)
    _run_batch(model, xs[0], cfg.criterion, taus)
    model(xs[0])
    times: dict[str, list[float]] = {"early": [], "full": []}
    for x in xs:
        for kind in ("early", "full"):
            synchronize(device)
            start = time.perf_counter()
            _run_batch(model, x, cfg.criterion, taus) if kind == "early" else model(x)
            synchronize(device)
            times[kind].append((time.perf_counter() - start) / x.shape[0])
    return {"early_images_per_s": 1.0 / statistics.median(times["early"]),
            "full_images_per_s": 1.0 / statistics.median(times["full"]), "batch_size": batch_size}



def _rounded(values: torch.Tensor) -> list[float | None]:
    return [None if math.isnan(v) else round(v, 6) for v in values.tolist()]


def early_exit_result(model: MultiExitNet, dataset: Dataset, cfg: EarlyExitConfig, *, name: str,
                      device: torch.device | str = "cpu", table: ExitTable | None = None,
                      latency_images: int = 300, throughput_batches: int = 8) -> Result:
    """The early-exit model at cfg's thresholds, measured: accuracy and mean MACs from the table,
    latency and throughput timed for real; baseline = the same model run to the end."""
    model = require_multi_exit(model, name)
    device = torch.device(device)
    taus = cfg.per_exit(model.num_exits)
    table = table if table is not None else exit_table(model, dataset, device=device)
    point = sweep(table, cfg.criterion, [taus])
    lat = early_exit_latency(model, dataset, cfg, device=device, images=latency_images,
                             shares=point.shares[0].tolist(), exit_index=point.exit_index[0])
    thr = early_exit_throughput(model, dataset, cfg, device=device, batches=throughput_batches)
    artifact = len(state_dict_bytes(model))
    params, nonzero = count_params(model), count_nonzero(model)
    metrics = Metrics(accuracy=float(point.accuracy[0]), accuracy_n=table.n, params=params, nonzero_params=nonzero,
                      size_bytes=artifact, macs=float(point.macs[0]), latency_ms=lat["early_ms"], simulated=False)
    baseline = Metrics(accuracy=float(table.correct[-1].float().mean()), accuracy_n=table.n, params=params,
                       nonzero_params=nonzero, size_bytes=artifact, macs=float(table.full_macs),
                       latency_ms=lat["full_ms"], simulated=False)
    extra = {
        "criterion": cfg.criterion, "threshold": taus[0] if len(set(taus)) == 1 else list(taus),
        "thresholds": list(taus), "exit_shares": _rounded(point.shares[0]),
        "exit_accuracy": _rounded(point.exit_accuracy[0]), "exit_costs": list(table.costs),
        "macs_ratio": round(metrics.macs / table.full_macs, 6),
        "exit_latency_ms": lat["per_exit_ms"], "full_latency_ms": lat["full_ms"],
        "latency_speedup": lat["full_ms"] / lat["early_ms"], "latency_images": lat["images"],
        "latency_mean_ms": lat["early_mean_ms"], "latency_median_ms": lat["early_median_ms"],
        "full_latency_mean_ms": lat["full_mean_ms"],
        "latency_spread_ms": lat["early_spread_ms"], "baseline_latency_ms": lat["full_ms"],
        "baseline_latency_spread_ms": lat["full_spread_ms"],  # timed image by image with the early exits
        "throughput": thr["early_images_per_s"], "full_throughput": thr["full_images_per_s"],
        "throughput_batch": thr["batch_size"],
    }
    return Result(model=name, dataset=dataset.name, method="early-exit",
                  config={"criterion": cfg.criterion, "thresholds": list(taus)}, device=device.type,
                  metrics=metrics, baseline=baseline, extra=extra,
                  predictions=exit_predictions(table, point.exit_index[0]))


def exit_predictions(table, exit_index: torch.Tensor):
    """Each test image's prediction where it leaves (`exit_index`: (N,) exit per image), kept with
    the run like every family's, so an early-exit run compares with any run on the same images."""
    import numpy as np

    from compression.predictions import Predictions
    at = exit_index.long().view(1, -1)
    pred = table.preds.gather(0, at).view(-1)
    conf = table.confidence.gather(0, at).view(-1)
    dtype = np.uint8 if table.preds.numel() == 0 or int(table.preds.max()) < 256 else np.uint16
    return Predictions(pred.numpy().astype(dtype), conf.float().numpy().astype(np.float16))
