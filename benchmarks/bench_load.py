"""Load test, loopback only: N browser-less sessions (threads, each driving a streamlit AppTest of
a method page) start a method at the same moment: inline pruning at different ratios, inline
quantization at different bit widths, and background fine-tuning jobs (ui.jobs). They share the
process's st.cache_resource models and the device queue, as browser sessions of one server do.
Reports per session its wait until done, and overall completions, errors, the longest wait, and
whether the run store holds exactly one run per completed action (nothing lost, nothing doubled).
Bounded: 8 sessions, one action each, every wait capped at TIMEOUT_S, in an empty app data folder."""

from __future__ import annotations

import sys
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from compression.paths import REPO_ROOT

SESSIONS = 8
TIMEOUT_S = 300  # per session; the whole test is bounded by SESSIONS x this
MODEL = "mlp"


@dataclass(frozen=True)
class Action:
    kind: str      # prune (inline) | quantize (inline) | job (background fine-tuning through ui.jobs)
    value: float   # pruning ratio, or weight bits

    @property
    def page(self) -> str:
        return "pages/3_Quantization.py" if self.kind == "quantize" else "pages/1_Pruning.py"

    @property
    def stored_key(self) -> tuple[str, float]:
        """How its stored run is recognized: (method, ratio or bits)."""
        return ("quantize" if self.kind == "quantize" else "prune", self.value)


def plan(n: int) -> list[Action]:
    """n actions with distinct settings (each stores exactly one run), mixing the three kinds."""
    ratios = iter([0.15, 0.25, 0.45, 0.55, 0.65, 0.75, 0.85, 0.1, 0.3, 0.6, 0.7])
    bits = iter([2, 3, 4, 5, 6, 7, 8])
    out = []
    for i in range(n):
        kind = ("prune", "quantize", "job")[i % 3]
        out.append(Action(kind, float(next(bits)) if kind == "quantize" else next(ratios)))
    return out


def _drive(action: Action, barrier: threading.Barrier) -> dict:
    from streamlit.testing.v1 import AppTest

    row = {"session": action.kind, "setting": action.value, "errors": [], "saw_queue": False}
    at = AppTest.from_file(str(REPO_ROOT / action.page), default_timeout=TIMEOUT_S)
    at.session_state["keep_sidebar_model"] = MODEL
    if action.kind == "quantize":
        at.session_state["quant_bits"] = int(action.value)
    else:
        at.session_state["prune_ratio"] = action.value
        at.session_state["prune_epochs"] = 1 if action.kind == "job" else 0
    barrier.wait()  # every session starts at the same moment
    start = time.perf_counter()
    try:
        at.run()
        if action.kind == "job" and not at.exception:
            at.button(key="prune_run").click().run()
            job = at.session_state["prune_job"]
            while not job.finished and time.perf_counter() - start < TIMEOUT_S:
                row["saw_queue"] |= job.status == "queued"
                time.sleep(0.05)
            job.wait(max(1.0, TIMEOUT_S - (time.perf_counter() - start)))
            if job.status != "done":
                row["errors"].append(f"job {job.status}: {job.error}")
            at.run()
        elif not at.exception:  # an inline result is a preview: the user keeps it to store it
            live_key = "live_runner_quant" if action.kind == "quantize" else "live_runner_prune"
            runner = at.session_state[live_key] if live_key in at.session_state else None
            if runner is not None:  # both sliders answer in stages (ui.live): Keep comes with the full result
                runner.wait_idle(max(1.0, TIMEOUT_S - (time.perf_counter() - start)))
                at.run()
            keep = [b for b in at.button if b.label == "Keep this run"]
            if keep:
                keep[0].click().run()
            else:
                row["errors"].append("no Keep button beside the result")
        row["errors"] += [str(e.value)[:200] for e in at.exception] + [str(e.value)[:200] for e in at.error]
        row["completed"] = not row["errors"] and bool(at.metric)
    except Exception:
        row["errors"].append(traceback.format_exc(limit=3)[-300:])
        row["completed"] = False
    row["wait_s"] = time.perf_counter() - start
    return row


@contextmanager
def _runtime_held() -> Iterator[None]:
    """Runtime.instance() and exists() answer with a stand-in (built as AppTest builds its own) while
    the class-wide singleton is None between two sessions' runs; each run's own mock still wins."""
    from unittest import mock

    from streamlit.runtime import Runtime
    from streamlit.runtime.caching.storage.dummy_cache_storage import MemoryCacheStorageManager
    from streamlit.runtime.dataframe_source_manager import DataframeSourceManager
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    stand_in = mock.MagicMock(spec=Runtime)
    stand_in.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    stand_in.dataframe_source_mgr = DataframeSourceManager()
    stand_in.cache_storage_manager = MemoryCacheStorageManager()
    with mock.patch.object(Runtime, "instance", classmethod(lambda cls: cls._instance or stand_in)), \
            mock.patch.object(Runtime, "exists", classmethod(lambda cls: True)):
        yield


def run_load(n: int = SESSIONS, home: str | None = None) -> dict:
    """Start n sessions at once; returns the per-session rows and the store check."""
    from compression.store import RunStore
    from ui import live

    main = sys.modules.get("__main__")
    live.clear("prune")   # results of an earlier run would be instant: every session measures its own
    live.clear("quant")
    actions = plan(n)
    # AppTest switches the global option `global.appTest` on for each run and back off at its end, and
    # widgets only record what AppTest needs (a selectbox's format_func) while it is on: with several
    # AppTests in threads, one session's run ending switched it off under another's, whose next run
    # then failed with KeyError for its own selectbox. Held on for the whole load, each run restores on.
    # Likewise AppTest sets the Runtime singleton to its own mock at a run's start and to None at its
    # end: a session whose script thread began just after another's run ended died with "Runtime
    # hasn't been created!" before drawing anything (seen in CI as "no Keep button"). Held for the load.
    from streamlit.testing.v1.util import patch_config_options
    from benchmarks.common import home_env, temporary_home
    with (home_env(home) if home else temporary_home("bench-load-home-")), patch_config_options({"global.appTest": True}), \
            _runtime_held():
        before = RunStore().count()
        barrier = threading.Barrier(n)
        rows: list[dict | None] = [None] * n

        def target(i: int) -> None:
            rows[i] = _drive(actions[i], barrier)
        threads = [threading.Thread(target=target, args=(i,), name=f"load-session-{i}") for i in range(n)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT_S + 60)
        wall = time.perf_counter() - started
        runs = RunStore().runs()
        after = RunStore().count()
    if main is not None:
        sys.modules["__main__"] = main  # AppTest leaves the page script there
    rows = [r or {"session": a.kind, "setting": a.value, "errors": ["thread did not finish"], "completed": False,
                  "wait_s": float("nan")} for r, a in zip(rows, actions)]
    stored = [("quantize", float(r["config"]["bits"])) if r["method"] == "quantize"
              else ("prune", float(r["config"]["ratio"])) for r in runs]
    expected = [a.stored_key for a, r in zip(actions, rows) if r["completed"]]
    return {"rows": rows, "wall_s": wall, "stored_runs": after - before, "stored": sorted(stored),
            "expected": sorted(expected)}


def run() -> list[dict]:
    out = run_load(SESSIONS)
    rows = [{"session": f"{i + 1}: {r['session']}", "setting": r["setting"], "completed": r["completed"],
             "wait s": r["wait_s"], "saw queue": r.get("saw_queue", False),
             "errors": "; ".join(r["errors"])[:120]} for i, r in enumerate(out["rows"])]
    done = sum(r["completed"] for r in out["rows"])
    errors = sum(bool(r["errors"]) for r in out["rows"])
    lost = len(out["expected"]) - len(set(out["expected"]) & set(out["stored"]))
    rows.append({"session": f"ALL ({SESSIONS} at once)", "setting": None,
                 "completed": f"{done}/{SESSIONS}", "wait s": max(r["wait_s"] for r in out["rows"]),
                 "saw queue": None,
                 "errors": f"{errors} sessions with errors; stored {out['stored_runs']} runs for {done} completed "
                           f"actions; lost {lost}; doubled {out['stored_runs'] - len(set(out['stored']))}; "
                           f"wall {out['wall_s']:.1f} s"})
    return rows
