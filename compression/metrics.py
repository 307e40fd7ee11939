"""Honest metrics: every number is measured on the model or the bytes in hand.

Keys (DESIGN.md): accuracy, accuracy_n, params, nonzero_params, size_bytes, macs, latency_ms,
simulated, baseline; Result.to_dict adds simulated_metrics (compression.honesty: which of size_bytes,
macs, latency_ms are simulated). `size_bytes` is the length of an artifact that was actually serialized;
`macs` come from torch's FLOP counter on the executed model (FLOPs / 2); `latency_ms` is the
median of timed batch-1 forward passes after warm-up, synchronized on CUDA/MPS.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
import dataclasses
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from compression.data import Dataset
from compression.device import synchronize
from compression.models import state_dict_bytes
from compression.timing import quiet
from compression.training import predict


def count_params(model: nn.Module) -> int:
    """Parameters stored by the model (buffers such as BatchNorm statistics not included)."""
    return sum(p.numel() for p in model.parameters())


def count_nonzero(model: nn.Module) -> int:
    return sum(int(torch.count_nonzero(p.detach())) for p in model.parameters())


@torch.inference_mode()
def count_macs(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> int:
    """Multiply-accumulates for one input, counted on the executed model (FLOPs / 2)."""
    was_training = model.training
    model.eval()
    x = torch.zeros(1, *input_shape, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() // 2


@torch.inference_mode()
def latency_ms(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu", *,
               batch_size: int = 1, warmup: int = 10, repeats: int = 50) -> float:
    """Median wall time of one forward pass, in milliseconds, after `warmup` untimed passes."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    x = torch.randn(batch_size, *input_shape, device=device)
    for _ in range(warmup):
        model(x)
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        synchronize(device)
        times.append(time.perf_counter() - start)
    model.train(was_training)
    return statistics.median(times) * 1000.0


def throughput(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu", *,
               batch_size: int = 256, repeats: int = 10) -> float:
    """Images per second at `batch_size` (median batch time)."""
    ms = latency_ms(model, input_shape, device, batch_size=batch_size, warmup=3, repeats=repeats)
    return batch_size / (ms / 1000.0)


def wilson_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% confidence interval of a proportion measured on n images (Wilson score)."""
    if n <= 0:
        return (0.0, 1.0)
    denom = 1 + z * z / n
    center = (accuracy + z * z / (2 * n)) / denom
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


@dataclass(frozen=True)
class Metrics:
    accuracy: float        # top-1 on the test split
    accuracy_n: int        # test images used
    params: int            # parameters stored by the deployed model
    nonzero_params: int
    size_bytes: int        # length of the serialized artifact
    macs: float            # per input (mean over the test set for dynamic models)
    latency_ms: float      # median batch-1 forward pass on `device`
    simulated: bool        # True when the stored/executed model does not realize the gain

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Metrics":
        return cls(**{f.name: d[f.name] for f in fields(cls)})


METRIC_KEYS = tuple(f.name for f in fields(Metrics))


@dataclass(frozen=True)
class Result:
    """One measured outcome: what was done (model, method, config) and what it gave."""
    model: str
    dataset: str
    method: str
    config: dict[str, Any]
    device: str
    metrics: Metrics
    baseline: Metrics | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # method-specific (per-layer tables, ...)
    predictions: Any = field(default=None, compare=False, repr=False)  # compression.predictions, if kept
    artifact: bytes | None = field(default=None, compare=False, repr=False)  # the file size_bytes counts, if kept

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON object: the DESIGN.md keys plus model, dataset, method, config, device, the extra
        entries (a family's tables; every compressed result's latency spread and its baseline re-timed
        beside it) and `runtime`, the runtime latency was timed on."""
        out = {"model": self.model, "dataset": self.dataset, "method": self.method,
               "config": self.config, "device": self.device, **self.metrics.to_dict(),
               "baseline": self.baseline.to_dict() if self.baseline else None}
        out.update({k: v for k, v in self.extra.items() if k not in out})
        from compression.honesty import simulated_metrics
        out["simulated_metrics"] = simulated_metrics(self)  # which gains are simulated (every result)
        out.setdefault("runtime", "eager")  # where latency was timed (compression.runtimes); measure() times eager
        return out


def measure(model: nn.Module, dataset: Dataset, *, device: torch.device | str = "cpu",
            artifact: bytes | None = None, simulated: bool = False, limit: int | None = None,
            macs: float | None = None, predictions: list | None = None, latency: bool = True,
            logits: torch.Tensor | None = None) -> Metrics:
    """Measure a model: accuracy on the test split (first `limit` images), counts, bytes, speed.

    `latency=False` leaves latency_ms NaN for a caller that times it itself (compression.methods
    times a result interleaved with its baseline on the chosen runtime).
    `artifact` is the serialized form the user would download; the dense state_dict by default.
    `predictions`, a list, receives the per-image Predictions (to keep beside the run). `logits`:
    the model's logits on those test images when the caller computed them already (in stages:
    compression.progressive), so they are not computed twice.
    """
    from compression.training import new_span, tick
    device = torch.device(device)
    model = model.to(device)
    tick(new_span(), "measuring: accuracy on the test set, size, latency")
    labels = dataset.test.head(limit).labels
    if logits is None:
        logits = predict(model, dataset, "test", device=device, limit=limit)
    elif logits.shape[0] != labels.shape[0]:
        raise ValueError(f"logits for {logits.shape[0]} images, the test split has {labels.shape[0]}")
    if predictions is not None:
        from compression.predictions import Predictions
        predictions.append(Predictions.from_logits(logits))
    artifact = artifact if artifact is not None else state_dict_bytes(model)
    return Metrics(
        accuracy=float((logits.argmax(1) == labels).float().mean()),
        accuracy_n=int(labels.shape[0]),
        params=count_params(model),
        nonzero_params=count_nonzero(model),
        size_bytes=len(artifact),
        macs=macs if macs is not None else count_macs(model, dataset.input_shape, device),
        latency_ms=latency_ms(model, dataset.input_shape, device) if latency else float("nan"),
        simulated=simulated,
    )


def baseline_metrics(name: str, dataset: Dataset, device: torch.device | str = "cpu", *,
                     limit: int | None = None) -> Metrics:
    """Metrics of a zoo model as shipped, cached on disk per checkpoint, dataset and device."""
    from compression.models import checkpoint_path, load_pretrained
    from compression.store import file_sha256
    from compression.paths import home_dir

    device = torch.device(device)
    model = load_pretrained(name, device)  # a missing checkpoint fails here, with its message
    key = "|".join([name, file_sha256(checkpoint_path(name)), dataset.name, dataset.source,
                    device.type, torch.__version__, str(limit)])
    cache = home_dir() / "cache" / "baselines.json"
    try:
        table = json.loads(cache.read_text()) if cache.is_file() else {}
    except (OSError, ValueError):
        table = {}  # corrupt cache: measure again
    if key in table and not table[key].get("latency_busy"):
        return Metrics.from_dict(table[key])
    if key in table:  # kept while other programs were busy: time the latency again, not the rest
        metrics = dataclasses.replace(Metrics.from_dict(table[key]), latency_ms=float("nan"))
    else:
        metrics = measure(model, dataset, device=device, limit=limit, latency=False)
    ms, load = quiet(lambda: latency_ms(model, dataset.input_shape, device), alone=True)
    metrics = dataclasses.replace(metrics, latency_ms=ms)
    # a busy timing is kept marked, so the next use times it again (it is never a run's reference:
    # every result is stored with its baseline timed beside it, compression.methods.with_timed_baseline)
    table[key] = {**metrics.to_dict(), **({"latency_busy": load["latency_busy"]} if "latency_busy" in load else {})}
    tmp = cache.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(table, indent=1))
    os.replace(tmp, cache)
    return metrics
