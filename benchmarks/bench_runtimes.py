"""Latency on the runtime people deploy: `cnn` and its structured 0.5 prune (compression.methods.
compress(..., "prune", {"method": "structured", "ratio": 0.5})) on PyTorch eager, torch.compile
(inductor, compiled and warmed up for each batch size) and ONNX Runtime (CPUExecutionProvider,
spin-waiting off), at batch 1 and 64.

Per batch size, all six runners (3 runtimes x unpruned / pruned) are timed in ONE set of
interleaved rounds (compression.timing.interleaved, 21 rounds): median ms per call and its spread,
the half-width of the 95 % interval of the median. `pruned vs unpruned` is the ratio on that
runtime said with the noise rule (compression.charts.format.fmt_change, spread = the two spreads
summed: a ratio whose interval includes 1 is "no measurable change"); `MAC ratio` is what the
MACs alone would give. `max |diff|` is the largest logit difference from eager on a random batch
(a runtime must compute the same function). `load` is the 1-minute load average when the batch
size's rounds started (2 shared cores: other work moves the numbers).
"""

from __future__ import annotations

import os
import time

import torch

from benchmarks import common
from compression.charts.format import fmt_change
from compression.metrics import count_macs
from compression.models import load_pretrained
from compression.runtimes import RUNTIMES, prepare
from compression.timing import interleaved

BATCHES = (1, 64)
CALLS = {1: 20, 64: 2}  # calls per round: a round of each runner takes a few ms


def _pruned(data):
    from compression.methods import compress
    with common.temporary_home("bench-runtimes-"):
        run = compress("cnn", data, "prune", {"method": "structured", "ratio": 0.5}, limit=1000)
    return run.model.cpu().eval()


def run() -> list[dict]:
    from compression.data import load_dataset
    data = load_dataset("fashion-mnist")
    shape = data.input_shape
    models = {"unpruned": load_pretrained("cnn", "cpu").eval(), "pruned": _pruned(data)}
    macs = {k: count_macs(m, shape) for k, m in models.items()}
    rows = []
    for batch in BATCHES:
        runners, setup_s, diffs, fallbacks = {}, {}, {}, {}
        x_check = torch.randn(8 if batch == 1 else batch, *shape)
        for runtime in RUNTIMES:
            for which, model in models.items():
                start = time.perf_counter()
                runner = prepare(model, shape, "cpu", runtime, batch_size=batch)
                setup_s[runtime, which] = time.perf_counter() - start
                runners[runtime, which] = runner
                if runner.fallback:
                    fallbacks[runtime] = runner.fallback
                if runtime != "eager" and not runner.fallback and batch > 1:
                    got = runner.run(x_check)
                    got = got if isinstance(got, torch.Tensor) else torch.from_numpy(got)
                    with torch.inference_mode():
                        diffs[runtime, which] = float((got - model(x_check)).abs().max())
        x = torch.randn(batch, *shape)
        load = os.getloadavg()[0]
        timed = interleaved({key: (lambda r=r: r.run(x)) for key, r in runners.items()}, rounds=21,
                            calls=CALLS[batch], warmup=5)
        for runtime in RUNTIMES:
            u, p = timed[runtime, "unpruned"], timed[runtime, "pruned"]
            change = fmt_change(p.median_ms, u.median_ms, "latency_ms", spread=u.spread_ms + p.spread_ms)
            rows.append({
                "batch": batch, "runtime": runners[runtime, "unpruned"].runtime,
                "unpruned ms": round(u.median_ms, 4), "unpruned ±": round(u.spread_ms, 4),
                "pruned ms": round(p.median_ms, 4), "pruned ±": round(p.spread_ms, 4),
                "pruned vs unpruned": change.text, "ratio": round(u.median_ms / p.median_ms, 3),
                "MAC ratio": round(macs["unpruned"] / macs["pruned"], 3),
                "vs eager (unpruned)": round(timed["eager", "unpruned"].median_ms / u.median_ms, 3),
                "setup s (unpruned, pruned)": f"{setup_s[runtime, 'unpruned']:.1f}, {setup_s[runtime, 'pruned']:.1f}",
                "max |diff|": (f"{max(diffs[runtime, 'unpruned'], diffs[runtime, 'pruned']):.1e}"
                               if (runtime, "unpruned") in diffs else ""),
                "fallback": fallbacks.get(runtime, ""),
                "load": round(load, 2),
            })
    return rows
