"""python -m benchmarks [--repeat N] [NAME[:PART,PART] ...]: run benchmarks/bench_<NAME>.py (all
when none is named), or only the named parts of it where it has parts. With --repeat N each named
benchmark runs in N separate processes, one after another, and the saved rows hold the median of
every number with its range: timings here move between processes (the same cnn's batch-1 time came
out 0.22 ms in one process and 0.45 ms in another), so one process should not decide a target."""

import os

import importlib
import pkgutil
import sys
from pathlib import Path

from benchmarks.common import aggregate, machine, save, table
from compression.device import steady_allocator


def _shown(path: Path) -> Path:
    root = Path(__file__).resolve().parent.parent
    return path.relative_to(root) if path.is_relative_to(root) else path


def _repeat(requested: list[str], n: int, info: dict) -> None:
    import json
    import subprocess
    import tempfile
    for request in requested:
        name, _, chosen = request.partition(":")
        runs = []
        for k in range(n):
            with tempfile.TemporaryDirectory() as tmp:
                print(f"## {request}: run {k + 1} of {n} (separate process)", flush=True)
                subprocess.run([sys.executable, "-m", "benchmarks", request], check=True, stdout=subprocess.DEVNULL,
                               env={**os.environ, "BENCH_RESULTS_DIR": tmp})
                runs.append(json.loads(next(Path(tmp).glob("*.json")).read_text())["rows"])
        rows = aggregate(runs)
        print(table(rows) + "\n", flush=True)
        os.environ["BENCH_PARTS"] = chosen
        path = save(name, rows, {**info, "runs": n}, {"per_run": runs})
        print(f"(median of {n} processes, saved to {_shown(path)})\n", flush=True)


def main(argv: list[str]) -> int:
    repeat = 1
    if argv[:1] == ["--repeat"]:
        if len(argv) < 2 or not argv[1].isdigit() or not 1 <= int(argv[1]) <= 20:
            print(f"error: --repeat takes a number of runs in [1, 20], got {argv[1] if len(argv) > 1 else None!r}",
                  file=sys.stderr)
            return 2
        repeat, argv = int(argv[1]), argv[2:]
    here = Path(__file__).resolve().parent
    available = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)])
                       if m.name.startswith("bench_"))
    requested = argv or available
    names = [r.partition(":")[0] for r in requested]
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"error: unknown benchmark {unknown[0]!r}; choose from {', '.join(available)}", file=sys.stderr)
        return 2
    steady_allocator()
    info = machine()
    print(f"# Benchmarks — {info['date']} — {info['cpu']} ({info['cores']} cores, "
          f"{info['torch_threads']} torch threads) — torch {info['torch']} — device {info['device']}\n"
          f"# allocator: {info['allocator']}\n")
    if repeat > 1:
        _repeat(requested, repeat, info)
        return 0
    for name, request in zip(names, requested):
        os.environ["BENCH_PARTS"] = request.partition(":")[2]
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"## {name}\n\n{(module.__doc__ or '').strip()}\n", flush=True)
        rows = module.run()
        print(table(rows) + "\n", flush=True)
        print(f"(saved to {_shown(save(name, rows, info))})\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
