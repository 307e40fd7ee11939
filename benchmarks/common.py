"""Machine description, timing helpers and the table printer shared by the benchmarks."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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
    from compression.device import describe_device, get_device, steady_allocator
    return {"date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": cpu, "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "device": describe_device(get_device()),
            "allocator": steady_allocator()}


@contextlib.contextmanager
def home_env(home: str) -> Iterator[str]:
    """COMPRESSION_HOME set to `home` for the block; the previous setting put back after."""
    saved = os.environ.get("COMPRESSION_HOME")
    os.environ["COMPRESSION_HOME"] = str(home)
    try:
        yield str(home)
    finally:
        if saved is None:
            os.environ.pop("COMPRESSION_HOME", None)
        else:
            os.environ["COMPRESSION_HOME"] = saved


@contextlib.contextmanager
def temporary_home(prefix: str = "bench-") -> Iterator[str]:
    """An empty app data folder (run store, artifacts, studies) as COMPRESSION_HOME for the block;
    the previous setting is put back and the folder removed after."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix=prefix) as home, home_env(home):
        yield home


def parts(available: list[str], extra: list[str] = ()) -> list[str]:
    """The parts of a benchmark to run: `python -m benchmarks NAME:part,part` sets BENCH_PARTS
    (default: `available`; `extra` parts run only when named)."""
    chosen = [s for s in os.environ.get("BENCH_PARTS", "").split(",") if s] or available
    unknown = [s for s in chosen if s not in [*available, *extra]]
    if unknown:
        raise SystemExit(f"error: unknown part {unknown[0]!r}; choose from {', '.join([*available, *extra])}")
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


def save(name: str, rows: list[dict[str, Any]], info: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """results/NAME.json, or results/NAME.PARTS.json when only some parts ran (the full run's file
    is kept)."""
    folder = Path(os.environ.get("BENCH_RESULTS_DIR") or RESULTS_DIR)  # set by --repeat for its runs
    folder.mkdir(exist_ok=True)
    chosen = os.environ.get("BENCH_PARTS", "")
    path = folder / (f"{name}.{chosen.replace(',', '+')}.json" if chosen else f"{name}.json")
    path.write_text(json.dumps({"machine": info, "rows": rows, **(extra or {})}, indent=1, default=str) + "\n")
    return path


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def aggregate(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows of several runs of one benchmark (same rows, same order) -> one row each: every number
    is the median over the runs, followed by `KEY range` ("min .. max") where the runs disagree;
    other values are kept, or joined with " / " where they differ."""
    if len({len(r) for r in runs}) != 1:
        raise ValueError(f"runs have different row counts: {[len(r) for r in runs]}")
    out = []
    for rows in zip(*runs):
        merged: dict[str, Any] = {}
        for key in dict.fromkeys(k for r in rows for k in r):
            values = [r.get(key) for r in rows]
            numbers = [v for v in values if _is_number(v)]
            if numbers and len(numbers) == len(values):
                merged[key] = statistics.median(numbers)
                if min(numbers) != max(numbers):
                    merged[f"{key} range"] = f"{min(numbers):,.3f} .. {max(numbers):,.3f}"
            else:
                shown = list(dict.fromkeys("" if v is None else str(v) for v in values))
                merged[key] = values[0] if len(shown) == 1 else " / ".join(shown)
        out.append(merged)
    return out
