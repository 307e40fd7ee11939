"""Machine description, timing helpers and the table printer shared by the benchmarks."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


ALLOCATOR = {"state": "default"}


def steady_allocator() -> str:
    """Keep freed memory in the process (glibc: mmap threshold 64 MiB, trim threshold 1 GiB), so
    that no timed forward pays for fresh pages.

    With glibc's defaults, whether a large activation comes back as fresh pages depends on the
    process's history: measured 2026-11-30, the cnn at batch 64 took 2,329 page faults and 9.1 ms
    per forward in one process and 0 faults and 4.8 ms in another, while the pruned cnn took 0 in
    both, so a side-by-side ratio measured the allocator, not the models. Called once by
    `python -m benchmarks`; the app itself is left with the defaults. Returns what was set."""
    import ctypes
    import ctypes.util
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, 64 << 20) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
    except (OSError, AttributeError):
        ok = False
    ALLOCATOR["state"] = ("glibc mallopt: mmap_threshold 64 MiB, trim_threshold 1 GiB (no fresh pages per forward)"
                          if ok else "default (mallopt not available)")
    return ALLOCATOR["state"]


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if info.get("model name"):
        # "AMD EPYC" alone hides the generation, and int8 speed hangs on the dot-product instructions
        cpu = f"{info['model name']} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
        flags = set(info.get("flags", "").split())
        cpu += ", " + (" ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags)
                       or "no AVX2")
    from compression.device import describe_device, get_device
    return {"date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": cpu, "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "device": describe_device(get_device()),
            "allocator": ALLOCATOR["state"]}


def parts(available: list[str]) -> list[str]:
    """The parts of a benchmark to run: `python -m benchmarks NAME:part,part` sets BENCH_PARTS."""
    chosen = [s for s in os.environ.get("BENCH_PARTS", "").split(",") if s] or available
    unknown = [s for s in chosen if s not in available]
    if unknown:
        raise SystemExit(f"error: unknown part {unknown[0]!r}; choose from {', '.join(available)}")
    return chosen


def timed(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median seconds of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def table(rows: list[dict[str, Any]]) -> str:
    """A GitHub-markdown table of the rows (union of keys, in first-seen order)."""
    if not rows:
        return "(no rows)"
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
        return "" if v is None else str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def save(name: str, rows: list[dict[str, Any]], info: dict[str, Any]) -> Path:
    """results/NAME.json, or results/NAME.PARTS.json when only some parts ran (the full run's file
    is kept)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    chosen = os.environ.get("BENCH_PARTS", "")
    path = RESULTS_DIR / (f"{name}.{chosen.replace(',', '+')}.json" if chosen else f"{name}.json")
    path.write_text(json.dumps({"machine": info, "rows": rows}, indent=1, default=str) + "\n")
    return path
