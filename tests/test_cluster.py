"""Sweeps on a Dask cluster (compression.sweep): a LocalCluster of 2 worker processes measures
what the calling process measures and each point is stored once, by the caller; a worker killed
in the middle of a sweep loses and doubles nothing; an unreachable scheduler is one line on stderr
and exit status 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from compression import CompressionError
from compression.paths import REPO_ROOT as ROOT
from compression.store import RunStore
from compression.sweep import (DaskExecutor, InProcessExecutor, Job, connect_timeout, from_setting, run_job,
                               run_jobs)

RATIOS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes on this machine (each one torch thread), shared by this module. Each
    starts warming up at once (imports, the model, the dataset) while the first test measures the
    same points in this process."""
    executor = from_setting("local:2")
    assert isinstance(executor, DaskExecutor) and executor.workers() == 2
    warm = [executor.client.submit(run_job, Job("lenet5", None, "prune:unstructured:0.1", limit=500), pure=False,
                                   workers=[address], allow_other_workers=False)
            for address in _worker_pids(executor)]
    try:
        yield executor
    finally:
        del warm
        executor.close()


def _worker_pids(executor: DaskExecutor) -> dict[str, int]:
    return executor.client.run(os.getpid)  # {worker address: pid}


def test_a_sweep_on_two_workers_measures_what_in_process_measures(cluster, tmp_path):
    jobs = [Job("lenet5", None, f"prune:unstructured:{r}", limit=500, group="cluster sweep") for r in RATIOS]
    here = {p.index: p.result.result.metrics for p in run_jobs(jobs, executor=InProcessExecutor(), store=False)}
    store = RunStore(tmp_path / "runs.sqlite")
    points = list(run_jobs(jobs, executor=cluster, store=store))

    assert all(p.ok for p in points) and sorted(p.index for p in points) == list(range(len(RATIOS)))
    for p in points:
        m, h = p.result.result.metrics, here[p.index]
        assert (m.accuracy, m.accuracy_n, m.size_bytes, m.nonzero_params, m.params) == \
               (h.accuracy, h.accuracy_n, h.size_bytes, h.nonzero_params, h.params), RATIOS[p.index]
        assert p.result.result.config["ratio"] == RATIOS[p.index]
    workers = set(_worker_pids(cluster).values())
    assert os.getpid() not in workers and {p.result.worker_pid for p in points} <= workers  # ran on the workers
    stored = store.runs(method="prune")
    assert store.count() == len(RATIOS)  # each point once, written here
    assert sorted(r["config"]["ratio"] for r in stored) == sorted(RATIOS)
    assert {r["id"] for r in stored} == {p.result.result.extra["run_id"] for p in points}
    assert all(os.path.getsize(r["artifact_path"]) == r["size_bytes"] for r in stored)


def test_a_worker_killed_mid_sweep_loses_and_doubles_nothing(cluster, tmp_path):
    """SIGKILL one worker process while it runs a job (a fine-tuning point): Dask reruns its jobs on
    the other worker (or on the one its nanny restarts); the sweep completes and every point is
    stored exactly once."""
    client = cluster.client
    pids = _worker_pids(cluster)
    ratios = (0.5, 0.7, 0.9)
    jobs = [Job("lenet5", None, f"prune:unstructured:{r}:epochs=1", limit=200, subset=256, group="killed")
            for r in ratios]
    store = RunStore(tmp_path / "runs.sqlite")
    points, killed = [], None
    for p in run_jobs(jobs, executor=cluster, store=store):
        points.append(p)
        if killed is None:  # the first result is in: kill a worker that is running a job now
            busy = [a for a, keys in client.processing().items() if keys and a in pids]
            assert busy, "no job in flight when the first result arrived"
            victim = next((a for a in busy if pids[a] != p.result.worker_pid), busy[0])
            killed = pids[victim]
            os.kill(killed, signal.SIGKILL)
    assert killed is not None and len(points) == len(ratios)
    assert all(p.ok for p in points), [p.error for p in points]
    assert killed not in set(_worker_pids(cluster).values())  # that process is gone
    stored = store.runs(method="prune")
    assert store.count() == len(ratios)
    assert sorted(r["config"]["ratio"] for r in stored) == list(ratios)
    assert sorted(r["id"] for r in stored) == sorted(p.result.result.extra["run_id"] for p in points)
    assert all(r["config"]["finetune_epochs"] == 1 for r in stored)


def test_an_unreachable_scheduler_is_one_line_and_exit_status_2(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    env = {**os.environ, "COMPRESSION_HOME": str(tmp_path), "COMPRESSION_CLUSTER_TIMEOUT": "1"}
    env.pop("COMPRESSION_CLUSTER", None)
    out = subprocess.run([sys.executable, "-m", "compression", "prune", "--model", "lenet5", "--sweep", "0.5,0.9",
                          "--limit", "100", "--cluster", address, "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and out.stdout == "", out.stderr
    assert len(lines) == 1 and address in lines[0] and "cannot be reached" in lines[0], out.stderr
    runs = tmp_path / "runs.sqlite"
    assert not runs.exists() or RunStore(runs).count() == 0  # nothing ran


@pytest.mark.parametrize("text, seconds", [("", 5.0), ("0.5", 0.5), ("30", 30.0)])
def test_the_connect_timeout_comes_from_the_environment(monkeypatch, text, seconds):
    monkeypatch.setenv("COMPRESSION_CLUSTER_TIMEOUT", text)
    assert connect_timeout() == seconds


@pytest.mark.parametrize("text", ["soon", "0", "-1"])
def test_a_bad_connect_timeout_is_named(monkeypatch, text):
    monkeypatch.setenv("COMPRESSION_CLUSTER_TIMEOUT", text)
    with pytest.raises(CompressionError, match=f"COMPRESSION_CLUSTER_TIMEOUT='{text}'"):
        connect_timeout()


@pytest.mark.parametrize("page", ["pages/1_Pruning.py", "pages/3_Quantization.py"])
def test_the_sidebar_says_where_sweeps_run_and_why_not_a_cluster(page, home, monkeypatch):
    """Any page (not only Search) starts or joins the configured cluster, so its sweeps use it; an
    unreachable one is named in the sidebar and the page works in-process."""
    from streamlit.testing.v1 import AppTest

    from compression.paths import REPO_ROOT
    at = AppTest.from_file(str(REPO_ROOT / page), default_timeout=300)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.session_state["quant_bits"] = 4
    at.run()
    assert "Sweeps:** in-process" in " ".join(c.value for c in at.sidebar.caption)
    monkeypatch.setenv("COMPRESSION_CLUSTER", "tcp://127.0.0.1:9")
    monkeypatch.setenv("COMPRESSION_CLUSTER_TIMEOUT", "1")
    at.run()
    assert not at.exception
    line = " ".join(c.value for c in at.sidebar.caption)
    assert "COMPRESSION_CLUSTER=tcp://127.0.0.1:9 is not in use" in line and "cannot be reached" in line
