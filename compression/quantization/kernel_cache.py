"""The int8 kernel choice, kept on disk across restarts.

`select_kernel` builds ~5 candidates (ONNX export, calibration, quantization) and times them side by
side (bounded to ~10 s on a zoo model), every time the Quantization page shows an 8-bit result. The
choice depends only on the quantized weights, the config, the dataset and the machine, so it is
kept in `$COMPRESSION_HOME/cache/int8_kernels.json` (beside the baselines of
compression.metrics.baseline_metrics) under a key of:

  - the quantized model's weights (compression.models.state_dict_hash),
  - the config (every field), the candidates, the test-image limit and the timing rounds,
  - the dataset (name and source),
  - the machine: CPU model string, torch's intra-op threads, the torch and onnxruntime versions.

On a hit the candidates are not timed again: only the chosen kernel is built (its ONNX Runtime
session or torch module is what compression.runtimes.time_result times beside the baseline), its
batch-1 latency is timed now, and the report says `"cached": true` with `measured_at`, the UTC time
the candidates were timed. A miss measures, stores the report and says `"cached": false`. Only a
report with a chosen kernel is kept (a failure may be passing; it is measured again next time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from compression.data import Dataset
from compression.quantization.config import QuantConfig

CACHE_FILE = "int8_kernels.json"
_LOCK = threading.Lock()


def cache_path() -> Path:
    from compression.paths import home_dir
    return home_dir() / "cache" / CACHE_FILE


def cpu_model() -> str:
    """The CPU's model string (/proc/cpuinfo's 'model name'; elsewhere what platform says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the timings depend on besides the model: CPU, threads, library versions."""
    try:
        import onnxruntime
        ort = onnxruntime.__version__
    except ImportError:
        ort = None
    try:  # its version without importing it (an import takes seconds and warns)
        from importlib.metadata import version
        ao = version("torchao")
    except Exception:  # noqa: BLE001  absent
        ao = None
    return {"cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__, "onnxruntime": ort,
            "torchao": ao}


def kernel_key(model: nn.Module, dataset: Dataset, config: QuantConfig, *, candidates: Any = None,
               limit: int | None = None, rounds: int = 7) -> str:
    from compression.models import state_dict_hash
    from compression.quantization.kernels import CANDIDATES
    names = candidates or (CANDIDATES if config.backend == "auto" else (config.backend,))
    parts = {"weights": state_dict_hash(model), "config": dataclasses.asdict(config), "candidates": list(names), "limit": limit, "rounds": rounds,
             "dataset": [dataset.name, getattr(dataset, "source", None)], "machine": machine()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _read() -> dict[str, Any]:
    path = cache_path()
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}  # corrupt cache: measure again


def lookup(key: str) -> dict[str, Any] | None:
    return _read().get(key)


def remember(key: str, report: dict[str, Any]) -> None:
    path = cache_path()
    with _LOCK:
        table = _read()
        table[key] = report
        tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(table, indent=1))
        os.replace(tmp, path)


def known(model: nn.Module, dataset: Dataset, config: QuantConfig, *, candidates: Any = None,
          limit: int | None = None, rounds: int = 7) -> dict[str, Any] | None:
    """The stored report for these weights, config, dataset and machine, or None (nothing measured)."""
    return lookup(kernel_key(model, dataset, config, candidates=candidates, limit=limit, rounds=rounds))


def cached_select_kernel(model: nn.Module, dataset: Dataset, config: QuantConfig, *, candidates: Any = None,
                         limit: int | None = None, rounds: int = 7, runner: dict | None = None,
                         progress: Any = None) -> dict[str, Any]:
    """compression.quantization.kernels.select_kernel, its choice read from disk when this model,
    config, dataset and machine were measured before (see the module's docstring). `progress`: the
    search's stages, naming the candidate (a hit: one, building the kernel chosen before)."""
    from compression.quantization import kernels
    key = kernel_key(model, dataset, config, candidates=candidates, limit=limit, rounds=rounds)
    known = lookup(key)
    if known is not None and known.get("chosen") in kernels.DESCRIPTIONS:
        kernels.SearchSteps(1, progress)("building the kernel chosen before:", known["chosen"])
        with tempfile.TemporaryDirectory(prefix="ce-int8-") as tmp:
            kernel = kernels.build_kernel(known["chosen"], model, dataset, config, tmp)
        if runner is not None:  # the session / module in memory outlives the files
            runner["kernel"] = kernels.runner_of(kernel)
        return {**known, "cached": True, "latency_ms": kernels.batch1_latency_ms(kernel, dataset.input_shape)}
    report = kernels.select_kernel(model, dataset, config, candidates=candidates, limit=limit, rounds=rounds,
                                   runner=runner, progress=progress)
    report["measured_at"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if report.get("chosen"):
        try:
            remember(key, report)
        except OSError:  # a read-only or full disk: the choice is measured again next time
            pass
    return {**report, "cached": False}
