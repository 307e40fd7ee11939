"""Search against the grid on `mlp`: whose accuracy-vs-bytes front is better, at the same budget of trials.

`grid`: the budget grid (pruning, quantization and prune -> quantize points, one-shot: 22 points,
all it has; the grid sampler without a budget). `search`: as the app and CLI run it by default, the
budget solver's seeds first (without a budget: the best-predicted configuration at each halving
of the stored bytes, compression.budget.solve; none of them a grid point by construction), then
TPE alone, 24 evaluated trials in all, for seeds 0, 1, 2; and TPE alone with no seeds (`--no-grid`)
for comparison. Every trial is a real run: pruned or quantized, its file written, accuracy on all
10k test images.

Hypervolume: the area the front dominates in the box between the float32 model's bytes and
accuracy 10 % (chance on 10 classes), as a share of that box, once with bytes on a linear axis
and once on a log axis (on a linear axis everything under ~100 KB is squeezed into one corner).
Larger is better. The fronts are drawn to assets/benchmarks/search_vs_grid.png (Plotly, rendered
in headless Chromium) when Chromium is there.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import common
from compression.search import SearchConfig, front, hypervolume, iter_search

MODEL = "mlp"
SEEDS = (0, 1, 2)
TRIALS = 24
CHANCE = 0.1
ROOT = Path(__file__).resolve().parent.parent
FIGURE = ROOT / "assets" / "benchmarks" / "search_vs_grid.png"


def _study(cfg: SearchConfig, storage: str, name: str) -> tuple[list[dict], float]:
    start = time.perf_counter()
    rows = [{"accuracy": r["accuracy"], "cost": r["cost"], "spec": r["spec"]}
            for r in iter_search(MODEL, "fashion-mnist", cfg, study=name, device="cpu", storage=storage,
                                 store=True, executor=None)]
    return rows, time.perf_counter() - start


def _hv(rows: list[dict], ref_bytes: float) -> tuple[float, float]:
    box = ref_bytes * (1 - CHANCE)
    linear = hypervolume(rows, ref_cost=ref_bytes, ref_accuracy=CHANCE) / box
    logged = [{**r, "cost": math.log10(r["cost"])} for r in rows]
    lo = math.log10(min(r["cost"] for r in rows))
    log_box = (math.log10(ref_bytes) - lo) * (1 - CHANCE)
    # the log box starts at the cheapest point any study found (set by the caller for all studies alike)
    log_hv = hypervolume(logged, ref_cost=math.log10(ref_bytes), ref_accuracy=CHANCE) / log_box
    return linear, log_hv


def _draw(fronts: dict[str, list[dict]], ref_bytes: float, ref_acc: float) -> Path | None:
    from benchmarks.browser import browser_page, chromium_available
    if not chromium_available():
        return None
    import plotly.graph_objects as go
    fig = go.Figure()
    for name, rows in fronts.items():
        pts = front(rows)
        fig.add_scatter(x=[p["cost"] / 1024 for p in pts], y=[100 * p["accuracy"] for p in pts], name=name,
                        mode="lines+markers", line_shape="hv", text=[p["spec"] for p in pts])
    fig.add_scatter(x=[ref_bytes / 1024], y=[100 * ref_acc], name="float32 mlp", mode="markers",
                    marker={"symbol": "star", "size": 14})
    fig.update_layout(title=f"mlp on Fashion-MNIST: accuracy-vs-size fronts, grid (22 points) vs search "
                            f"({TRIALS} evaluated trials)", xaxis={"title": "stored size (KiB, log)", "type": "log"},
                      yaxis={"title": "test accuracy (%)", "range": [60, 92]}, width=1000, height=560,
                      template="plotly_white")
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "fronts.html"
        fig.write_html(html, include_plotlyjs=True, full_html=True)
        with browser_page(width=1020, height=580) as page:
            page.goto(html.as_uri())
            page.wait_for_selector(".main-svg", timeout=30_000)
            page.screenshot(path=str(FIGURE))
    return FIGURE


def run() -> list[dict]:
    from compression.data import load_dataset
    from compression.metrics import measure
    from compression.models import load_pretrained
    common.parts(["fronts"])
    with common.temporary_home("bench-frontier-") as tmp:
        storage = f"sqlite:///{tmp}/bench.sqlite"
        base = measure(load_pretrained(MODEL), load_dataset("fashion-mnist"))
        grid_cfg = SearchConfig(methods=("prune", "quantize"), trials=22, sampler="grid", seed=0)
        studies = {"grid": _study(grid_cfg, storage, "grid")}
        for seed in SEEDS:  # what the app and CLI do by default: the solver's seeds, then TPE
            cfg = SearchConfig(methods=("prune", "quantize"), trials=TRIALS, grid_first=True, seed=seed)
            studies[f"solver seeds then TPE, seed {seed}"] = _study(cfg, storage, f"search-{seed}")
        for seed in SEEDS:
            cfg = SearchConfig(methods=("prune", "quantize"), trials=TRIALS, grid_first=False, seed=seed)
            studies[f"TPE alone, seed {seed}"] = _study(cfg, storage, f"tpe-{seed}")
    cheapest = min(r["cost"] for rows, _ in studies.values() for r in rows)
    rows_out = []
    for name, (rows, seconds) in studies.items():
        rows_floor = rows + [{"accuracy": 0.0, "cost": cheapest, "spec": "(box corner)"}]  # same log box for all
        linear, logged = _hv(rows_floor, base.size_bytes)
        fits = [r for r in rows if r["accuracy"] >= base.accuracy - 0.01]
        smallest = min(fits, key=lambda r: r["cost"]) if fits else None
        rows_out.append({"study": name, "trials": len(rows), "front_points": len(front(rows)),
                         "hv_linear": round(linear, 4), "hv_log": round(logged, 4),
                         "smallest_within_1pt_bytes": smallest["cost"] if smallest else None,
                         "smallest_within_1pt": smallest["spec"] if smallest else None,
                         "seconds": round(seconds, 1)})
    groups = {f"solver seeds then TPE, {TRIALS} trials": "solver seeds then TPE,", f"TPE alone, {TRIALS} trials": "TPE alone,"}
    summary = []
    for label, prefix in groups.items():
        for key in ("hv_linear", "hv_log"):
            vals = [r[key] for r in rows_out if r["study"].startswith(prefix)]
            summary.append({"study": f"{label}, {len(vals)} seeds ({key})", "mean": round(statistics.mean(vals), 4),
                            "min": min(vals), "max": max(vals), "grid": rows_out[0][key],
                            "search_ge_grid_every_seed": all(v >= rows_out[0][key] for v in vals)})
    rows_out += summary
    path = _draw({n: rows for n, (rows, _) in studies.items() if n == "grid" or n.endswith("seed 0")},
                 base.size_bytes, base.accuracy)
    if path is not None:
        print(f"fronts drawn to {path.relative_to(ROOT)}")
    return rows_out
