"""Timing for the int8 kernel search (compression.quantization.kernels): interleaved rounds, batch-1
latency, how large a batch and how many images a model's size allows, and the search's progress
(each stage naming the candidate: a tick for the page's job bar, an entry for the CLI's line)."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch

TIMING_BATCH = 256
TIMING_MACS = 4e9          # MACs one timed call may cost (the timing batch shrinks for a large model)


def interleaved_ms(fns: dict[str, Callable[[], Any]], rounds: int = 7, calls: int = 2, warmup: int = 2) -> dict[str, float]:
    """Median ms per call of each function, timed in interleaved rounds (load drifts hit all alike)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[key].append((time.perf_counter() - start) / calls)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def batch1_latency_ms(kernel: Any, input_shape: tuple[int, ...], warmup: int = 10, repeats: int = 50) -> float:
    x = torch.randn(1, *input_shape)
    for _ in range(warmup):
        kernel.run(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        kernel.run(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def timing_batch(macs: float) -> int:
    """The batch the candidates are timed at: TIMING_BATCH, halved until one float32 call costs at
    most TIMING_MACS multiply-accumulates (a torchvision ResNet-18 on 32 x 32 images: 4)."""
    batch = TIMING_BATCH
    while batch > 1 and batch * macs > TIMING_MACS:
        batch //= 2
    return batch


def images_for(macs: float, budget: float, lo: int, hi: int) -> int:
    """How many images a check may run: `budget` MACs' worth, within [lo, hi]."""
    return int(max(lo, min(hi, budget // max(1.0, macs))))


class SearchSteps:
    """The search's progress: ticks (compression.training.tick: the page's job bar) and `progress`
    entries {"phase", "candidate", "step", "steps"} (the CLI's line), each naming the candidate."""

    def __init__(self, total: int, progress: Callable[[dict], None] | None):
        from compression.training import new_span
        self.span, self.total, self.done, self.progress = new_span(), total, 0, progress

    def __call__(self, phase: str, candidate: str | None = None) -> None:
        from compression.training import tick
        self.done += 1
        text = f"int8 kernel search: {phase}" + (f" {candidate}" if candidate else "")
        tick(self.span, text, self.done, self.total)
        if self.progress is not None:
            self.progress({"phase": text, "candidate": candidate, "step": self.done, "steps": self.total})
