"""The Pareto explorer with a run store of 1,000 runs (synthetic rows shaped like real ones: three
models, seven methods, simulated gains, 3-step pipelines): the page's script run under AppTest
(first run in a fresh process, then reruns after changing the x-axis and a filter), the pure
parts on their own (reading the store, building the frame, the frontier, the figure), the HTML
report (seconds and bytes) and, when Chromium is there, in a real browser: opening the page with
50 and with 1,000 runs (chart drawn, script idle; and when its title first shows) and changing its
x-axis, beside the home page. Target (issue 8): the explorer renders 1,000 runs in under 2 s.
Part "compare": the page script with its compare view open on two runs with 10,000 stored
predictions each (and on a run against its baseline, evaluated on the page). Target: under 1 s.
Parts: core, apptest, browser, compare (`python -m benchmarks explorer:compare`)."""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from compression.metrics import Metrics, Result
from compression.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "pages" / "6_Pareto_explorer.py"

# the zoo's fp32 numbers (assets/models/*.json); latency is a typical CPU figure
BASELINES = {
    "mlp": Metrics(0.8980, 10000, 266610, 266610, 1069077, 266200, 0.060, False),
    "lenet5": Metrics(0.9073, 10000, 61706, 61706, 250309, 416520, 0.150, False),
    "cnn": Metrics(0.9229, 10000, 98554, 98554, 401569, 1994240, 0.400, False),
}
METHODS = ["prune", "quantize", "distill", "architecture", "early-exit", "width", "pipeline"]


def _metrics(rng: random.Random, base: Metrics, method: str) -> tuple[Metrics, dict]:
    """A plausible compressed result: a size/MACs factor and an accuracy cost that grows with it."""
    f = rng.uniform(0.03, 1.0)              # fraction of the baseline's cost kept
    simulated = method in ("prune", "quantize") and rng.random() < 0.3
    drop = 0.25 * (1 - f) ** 4 + abs(rng.gauss(0, 0.006))
    n = rng.choice([1000, 2000, 10000])
    acc = round(max(0.1, base.accuracy - drop) * n) / n
    size = base.size_bytes if simulated else int(base.size_bytes * f)
    macs = base.macs * (f if method in ("architecture", "early-exit", "width", "prune") else 1.0)
    config = {"prune": {"ratio": round(1 - f, 3), "structured": rng.random() < 0.5},
              "quantize": {"bits": rng.choice([2, 3, 4, 5, 6, 8]), "scheme": rng.choice(["uniform", "cluster"])},
              "distill": {"temperature": rng.choice([2, 4, 8]), "alpha": 0.5, "student_width": round(f, 2)},
              "architecture": {"kind": rng.choice(["depthwise", "low-rank"]), "rank": max(1, int(64 * f))},
              "early-exit": {"threshold": round(rng.uniform(0.5, 0.99), 2)},
              "width": {"multiplier": round(f, 2)},
              "pipeline": {"recipe": "deep-compression"}}[method]
    params = base.params if simulated else int(base.params * f)
    m = Metrics(acc, n, params, int(params * (1 - 0.5 * rng.random())) if simulated else params, size, macs,
                base.latency_ms * rng.uniform(0.3, 1.1), simulated)
    return m, config


def seed_store(path: Path | str, n: int = 1000, *, seed: int = 0, dataset: str = "fashion-mnist") -> list[int]:
    """Add `n` synthetic runs (a baseline run per model first, every tenth run a 3-step pipeline
    whose steps point at their parent) in one transaction; returns the run ids."""
    rng = random.Random(seed)
    store = RunStore(path)
    with store.batch():  # one transaction: a connection per add is ~30 ms on a busy disk
        ids = [store.add(Result(m, dataset, "baseline", {"limit": None}, "cpu", b, b)) for m, b in BASELINES.items()]
        while len(ids) < n:
            model = rng.choice(sorted(BASELINES))
            base = BASELINES[model]
            if len(ids) % 10 == 0 and len(ids) + 3 <= n:
                parent = None
                for step in ("prune", "quantize", "pipeline"):
                    m, config = _metrics(rng, base, step)
                    parent = store.add(Result(model, dataset, step, {**config, "step": step}, "cpu", m, base),
                                       parent_id=parent)
                    ids.append(parent)
                continue
            method = rng.choice(METHODS[:-1])
            m, config = _metrics(rng, base, method)
            ids.append(store.add(Result(model, dataset, method, config, "cpu", m, base)))
    return ids


def _apptest_rows(home: str) -> list[dict]:
    from streamlit.testing.v1 import AppTest

    rows = []
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    start = time.perf_counter()
    at.run()
    rows.append({"what": "page script, first run (fresh AppTest)", "seconds": time.perf_counter() - start,
                 "ok": not at.exception})
    times = []
    for _ in range(5):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    rows.append({"what": "page script, rerun (median of 5)", "seconds": statistics.median(times), "ok": not at.exception})
    for x in ("params", "macs", "latency_ms", "size_bytes"):
        start = time.perf_counter()
        at.selectbox(key="explorer_x").set_value(x).run()
        rows.append({"what": f"change x-axis to {x}", "seconds": time.perf_counter() - start, "ok": not at.exception})
    start = time.perf_counter()
    at.multiselect(key="explorer_methods").set_value(["prune", "quantize"]).run()
    rows.append({"what": "filter methods to prune + quantize", "seconds": time.perf_counter() - start, "ok": not at.exception})
    return rows


def _core_rows(path: Path) -> list[dict]:
    from benchmarks.common import timed
    from compression.report import report_html
    from compression.charts.pareto import explorer_frame, frontier_ids, pareto_chart, table_frame

    store = RunStore(path)
    runs = store.runs(dataset="fashion-mnist")
    df = explorer_frame(runs)
    front = frontier_ids(df, "size_bytes")
    rows = [{"what": "read 1,000 runs from SQLite", "seconds": timed(lambda: store.runs(dataset="fashion-mnist"))},
            {"what": "build the frame (CI, labels, hover)", "seconds": timed(lambda: explorer_frame(runs))},
            {"what": "frontier over size_bytes", "seconds": timed(lambda: frontier_ids(df, "size_bytes"))},
            {"what": "figure (plotly) + its JSON", "seconds": timed(lambda: pareto_chart(df, frontier=front).to_json())},
            {"what": "table frame", "seconds": timed(lambda: table_frame(df, front))}]
    start = time.perf_counter()
    text = report_html(runs)
    rows.append({"what": "HTML report (4 charts, plotly.js inline)", "seconds": time.perf_counter() - start,
                 "bytes": len(text.encode())})
    return rows


def _browser_rows() -> list[dict]:
    """Real browser, side by side: the explorer with 50 and with 1,000 stored runs, and the home
    page as the machine's yardstick (a busy machine slows all three alike)."""
    from benchmarks.browser import (browser_page, chromium_available, select_option, streamlit_server, wait_for_points,
                                    wait_until_idle)

    if not chromium_available():
        return [{"what": "browser: skipped (Chromium or playwright not installed)"}]
    rows = []
    for n in (50, 1000):
        home = tempfile.mkdtemp(prefix="bench-explorer-browser-")
        seed_store(Path(home) / "runs.sqlite", n)
        with streamlit_server(env={"COMPRESSION_HOME": home}) as url, browser_page() as page:
            def visit(path: str, ready, first=None) -> float:
                start = time.perf_counter()
                page.goto(url + path)
                if first is not None:  # when the page's first element shows (the app is up)
                    first()
                    shell.append(time.perf_counter() - start)
                ready()
                wait_until_idle(page)
                return time.perf_counter() - start

            def chart() -> None:
                wait_for_points(page, 120_000)  # SVG markers, or WebGL past 1,000 runs
            def title() -> None:
                page.get_by_role("heading", name="Pareto explorer").wait_for(timeout=120_000)
            shell: list[float] = []
            visit("/Pareto_explorer", chart)  # warm-up: the server imports, plotly.js is fetched once
            opens = [visit("/Pareto_explorer", chart, title) for _ in range(5)]
            rows.append({"what": f"browser: open the explorer ({n:,} runs) -> chart drawn, median of 5",
                         "seconds": statistics.median(opens),
                         "title shown s": statistics.median(shell)})
            start = time.perf_counter()
            select_option(page, "x-axis", "MACs per image")
            page.locator(".js-plotly-plot .xtitle", has_text="MACs per image").wait_for(timeout=120_000)
            wait_until_idle(page)
            rows.append({"what": f"browser: change the x-axis ({n:,} runs) -> new chart drawn",
                         "seconds": time.perf_counter() - start})
            if n == 50:
                visit("/", lambda: page.get_by_text("Test accuracy").first.wait_for(timeout=120_000))
                homes = [visit("/", lambda: page.get_by_text("Test accuracy").first.wait_for(timeout=120_000))
                         for _ in range(3)]
                rows.append({"what": "browser: open the home page (yardstick), median of 3",
                             "seconds": statistics.median(homes)})
    return rows


def seed_compare(path: Path | str, *, seed: int = 0) -> tuple[int, int]:
    """Two mlp runs on all 10,000 fashion-mnist test images, with predictions right on about 88%
    and 85% of them (their errors partly shared): the compare view's worst case on this dataset."""
    import numpy as np

    from compression.data import load_dataset
    from compression.predictions import Predictions
    labels = load_dataset("fashion-mnist").test.labels.numpy()
    rng = np.random.default_rng(seed)
    store = RunStore(path)
    ids = []
    for method, wrong in (("prune", 0.12), ("quantize", 0.15)):
        pred = labels.copy()
        flip = rng.random(labels.size) < wrong
        pred[flip] = (labels[flip] + rng.integers(1, 10, int(flip.sum()))) % 10
        base = BASELINES["mlp"]
        m = Metrics(float((pred == labels).mean()), labels.size, base.params, base.params // 4,
                    base.size_bytes // 4, base.macs, base.latency_ms, method == "prune")
        run_id = store.add(Result("mlp", "fashion-mnist", method, {"ratio": 0.9} if method == "prune" else {"bits": 4},
                                  "cpu", m, base))
        store.add_predictions(run_id, Predictions(pred.astype(np.uint8), rng.random(labels.size).astype(np.float16)))
        ids.append(run_id)
    return ids[0], ids[1]


def _compare_rows() -> list[dict]:
    from streamlit.testing.v1 import AppTest

    home = tempfile.mkdtemp(prefix="bench-explorer-compare-")
    os.environ["COMPRESSION_HOME"] = home
    a, b = seed_compare(Path(home) / "runs.sqlite")
    rows = []
    at = AppTest.from_file(str(PAGE), default_timeout=300)
    at.query_params["cmp"] = f"{a},{b}"
    start = time.perf_counter()
    at.run()
    rows.append({"what": "compare view, 2 runs x 10,000 predictions: page script, first run (fresh AppTest)",
                 "seconds": time.perf_counter() - start, "ok": not at.exception and bool(at.get("image"))})
    times = []
    for _ in range(5):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    rows.append({"what": "compare view: page script, rerun (median of 5)", "seconds": statistics.median(times),
                 "ok": not at.exception})
    start = time.perf_counter()
    at.selectbox(key="explorer_cmp_b").set_value(a)
    at.selectbox(key="explorer_cmp_a").set_value(b).run()
    rows.append({"what": "compare view: swap the two runs (a new comparison, not cached)",
                 "seconds": time.perf_counter() - start, "ok": not at.exception and bool(at.get("image"))})
    start = time.perf_counter()
    at.selectbox(key="explorer_cmp_b").set_value("base").run()
    rows.append({"what": "compare view: a run against its baseline (the mlp evaluated on 10,000 images)",
                 "seconds": time.perf_counter() - start, "ok": not at.exception and bool(at.get("image"))})
    start = time.perf_counter()
    at.radio(key="explorer_cmp_kind").set_value("both").run()
    rows.append({"what": "compare view: show both kinds of flips", "seconds": time.perf_counter() - start,
                 "ok": not at.exception})
    return rows


def run() -> list[dict]:
    from benchmarks.common import parts
    chosen = parts(["core", "apptest", "browser", "compare"])
    home = tempfile.mkdtemp(prefix="bench-explorer-")
    saved = os.environ.get("COMPRESSION_HOME")
    os.environ["COMPRESSION_HOME"] = home
    try:
        rows = []
        if {"core", "apptest", "browser"} & set(chosen):
            start = time.perf_counter()
            ids = seed_store(Path(home) / "runs.sqlite", 1000)
            rows = [{"what": f"seed the store with {len(ids):,} runs", "seconds": time.perf_counter() - start}]
        if "core" in chosen:
            rows += _core_rows(Path(home) / "runs.sqlite")
        if "apptest" in chosen:
            rows += _apptest_rows(home)
        if "browser" in chosen:
            rows += _browser_rows()
        if "compare" in chosen:
            rows += _compare_rows()
    finally:
        if saved is None:
            os.environ.pop("COMPRESSION_HOME", None)
        else:
            os.environ["COMPRESSION_HOME"] = saved
    return rows
