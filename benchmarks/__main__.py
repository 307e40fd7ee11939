"""python -m benchmarks [NAME[:PART,PART] ...]: run benchmarks/bench_<NAME>.py (all when none is
named), or only the named parts of it where it has parts."""

import os

import importlib
import pkgutil
import sys
from pathlib import Path

from benchmarks.common import machine, save, steady_allocator, table


def main(argv: list[str]) -> int:
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
    for name, request in zip(names, requested):
        os.environ["BENCH_PARTS"] = request.partition(":")[2]
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"## {name}\n\n{(module.__doc__ or '').strip()}\n", flush=True)
        rows = module.run()
        print(table(rows) + "\n", flush=True)
        print(f"(saved to {save(name, rows, info).relative_to(here.parent)})\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
