"""Leaving the page mid-run does not corrupt the store (issue 9).

A pruning sweep (5 ratios, each stored by the worker as soon as it is measured) is started from
the page under AppTest and then (a) stopped mid-run, (b) abandoned: the session is thrown away
while the worker runs, and another session reads the store meanwhile. Afterwards the SQLite file
passes its integrity check and every finished result is in it exactly once."""

from __future__ import annotations

import gc
import sqlite3
import time

from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT
from compression.store import RunStore

RATIOS = [0.0, 0.2, 0.4, 0.6, 0.8]


def _start_sweep() -> tuple[AppTest, object]:
    at = AppTest.from_file(str(ROOT / "pages" / "1_Pruning.py"), default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.session_state["prune_mode"] = "Sweep"
    at.session_state["prune_sweep"] = RATIOS
    at.run()
    assert not at.exception
    assert at.multiselect(key="prune_sweep").value == RATIOS
    at.button(key="prune_run").click().run()
    assert not at.exception
    return at, at.session_state["prune_job"]


def _wait_for(predicate, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _intact(store: RunStore) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_stop_mid_run_keeps_each_finished_result_exactly_once(home):
    at, job = _start_sweep()
    _wait_for(lambda: len(job.events) >= 1 or job.finished)
    job.request_stop()  # what the Stop button does
    job.wait(180)
    assert job.status == "stopped"
    kept = [v["result"] for v in job.result]
    assert 1 <= len(kept) < len(RATIOS)  # stopped mid-run, after at least one ratio
    store = RunStore()
    _intact(store)
    stored = store.runs(method="prune")
    assert sorted(r["id"] for r in stored) == sorted(r["run_id"] for r in kept)  # every finished one, once
    assert [r["config"]["ratio"] for r in reversed(stored)] == RATIOS[:len(kept)]
    at.run()  # the page shows what was done before Stop
    assert not at.exception
    assert any("Stopped after" in w.value for w in at.warning)


def test_leaving_the_page_mid_run_loses_and_doubles_nothing(home):
    at, job = _start_sweep()
    _wait_for(lambda: len(job.events) >= 1 or job.finished)
    del at  # the user closes the tab: the session and its state are gone, the worker goes on
    gc.collect()
    other = AppTest.from_file(str(ROOT / "pages" / "6_Pareto_explorer.py"), default_timeout=180)
    other.run()  # another session reads the store while the worker writes to it
    assert not other.exception and not other.error
    job.wait(300)
    assert job.status == "done", job.error
    store = RunStore()
    _intact(store)
    stored = store.runs(method="prune")
    assert len(stored) == len(RATIOS) == len({r["id"] for r in stored})
    assert sorted(r["config"]["ratio"] for r in stored) == RATIOS
    assert sorted(r["id"] for r in stored) == sorted(v["result"]["run_id"] for v in job.result)
