"""The run store as a team shares it: migrations under a lock, owners and roles checked in the store,
`store copy` (nothing lost, checksummed), and PostgreSQL going away in the middle of a sweep."""

import dataclasses
import json
import multiprocessing as mp
import threading
import time

import pytest

from compression import CompressionError
from compression.access import AccessDenied, User, acting_as
from compression.metrics import Metrics, Result
from compression.store import SCHEMA_VERSION, RunStore, StoreUnavailable

M = Metrics(accuracy=0.9, accuracy_n=100, params=10, nonzero_params=5, size_bytes=40, macs=10.0,
            latency_ms=0.1, simulated=False)
VIEWER, ANA, BO, ADMIN = (User("v@example.com", "viewer"), User("ana@example.com", "editor"),
                          User("bo@example.com", "editor"), User("root@example.com", "admin"))


def _result(i: int) -> Result:
    return Result(model="mlp", dataset="fashion-mnist", method="prune", config={"ratio": i / 1000},
                  device="cpu", metrics=M, baseline=M, extra={"i": i})


def _predictions(k: int):
    import numpy as np
    from compression.predictions import Predictions
    return Predictions(np.arange(k, dtype=np.uint8) % 10, np.full(k, 0.5, np.float16))


def _open(url: str, barrier) -> None:
    barrier.wait(30)
    RunStore(url).count()


def test_servers_starting_together_migrate_once(store_url):
    """Six processes open a new store at the same moment: one creates it, the others wait for the
    lock and find it current (no 'table already exists', no half-made schema)."""
    barrier = mp.get_context("fork").Barrier(6)
    procs = [mp.get_context("fork").Process(target=_open, args=(store_url, barrier)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 6
    from compression.store.schema import engine_for, read_version, store_url as url_of
    with engine_for(url_of(store_url)).connect() as conn:
        assert read_version(conn) == SCHEMA_VERSION


def test_a_newer_postgresql_store_is_refused(postgres):
    url = postgres.new_database()
    RunStore(url)
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = %s WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    from compression.store import connection
    connection._migrated.clear()  # as a server started after the change would
    with pytest.raises(CompressionError, match="newer than this code"):
        RunStore(url)


def test_owners_and_roles_are_checked_by_the_store(store_url):
    store = RunStore(store_url)
    with acting_as(VIEWER), pytest.raises(AccessDenied, match="keeping a run needs the editor role; you are v@example.com"):
        store.add(_result(0))
    assert store.count() == 0
    with acting_as(ANA):
        mine = store.add(_result(1))
    with acting_as(BO):
        theirs = store.add(_result(2))
    assert store.get(mine)["owner"] == "ana@example.com" and store.owners() == ["ana@example.com", "bo@example.com"]
    assert [r["id"] for r in store.runs(owner="bo@example.com")] == [theirs]

    with acting_as(ANA):
        assert store.update(mine, name="mine", hidden=True)["hidden"] is True  # an editor manages their own run
        for change in (lambda: store.update(theirs, name="x"), lambda: store.update(theirs, hidden=True),
                       lambda: store.tag(theirs, "t"), lambda: store.delete(theirs)):
            with pytest.raises(AccessDenied, match=f"run {theirs} .*it belongs to bo@example.com.* needs the admin role"):
                change()
        assert store.update(theirs, starred=True)["starred"] is True  # ... and may star any run
    with acting_as(VIEWER):
        for change in (lambda: store.update(mine, starred=False), lambda: store.delete(mine)):
            with pytest.raises(AccessDenied, match="needs the (editor|admin) role"):
                change()
    row = store.get(theirs)
    assert (row["name"], row["hidden"], row["tags"]) == (None, False, [])  # nothing a refusal touched changed
    with acting_as(ADMIN):
        assert store.delete(theirs)["id"] == theirs  # an admin deletes anyone's run
    assert store.get(mine)["starred"] is False and store.get(theirs) is None


def test_store_copy_moves_everything_and_proves_it(tmp_path, postgres):
    """SQLite -> PostgreSQL: every run, its predictions, names, tags, owners, parent links and share
    links; the same checksums read back; a second copy writes nothing."""
    from compression.cli import main
    source = RunStore(tmp_path / "laptop.sqlite")
    with acting_as(ANA):
        a = source.add(dataclasses.replace(_result(1), predictions=_predictions(50)))
        b = source.add(_result(2), parent_id=a, name="child", tags=["review"], starred=True)
    source.add(_result(3))
    source.delete(source.add(_result(4)))  # a gap in the ids
    from compression import share
    link = share.create(source, "story", [a, b], hours=1, user=ANA)
    target_url = postgres.new_database()

    lines = list(_copy(source.where, target_url))
    summary = lines[-1]
    assert (summary["runs"], summary["copied"], summary["already"], summary["predictions"], summary["shares"]) == (3, 3, 0, 1, 1)
    assert summary["verified"] is True and [line["to"] for line in lines[:-1]] == [a, b, 3]  # ids kept
    target = RunStore(target_url)
    from compression.store.copy import run_checksum
    for line in lines[:-1]:
        preds = target.predictions(line["to"])
        assert run_checksum(target.get(line["to"]), preds and preds.to_bytes()) == line["sha256"]
    got = target.get(b)
    assert (got["parent_id"], got["name"], got["tags"], got["starred"], got["owner"]) == (a, "child", ["review"], True, "ana@example.com")
    assert (target.predictions(a).predicted == _predictions(50).predicted).all()
    assert share.open_link(target, link.token).run_ids == [a, b]  # the link made on the laptop opens on the server
    assert target.add(_result(9)) == 4  # the id sequence continues after the highest copied id (not from 1)

    again = list(_copy(source.where, target_url))[-1]
    assert (again["copied"], again["already"], again["checksum"]) == (0, 3, summary["checksum"])
    assert target.count() == 4
    assert main(["store", "copy", "--from", str(tmp_path / "missing.sqlite"), "--to", target_url]) == 2


def _copy(source: str, target: str):
    from compression.commands.store import copy
    import argparse
    return copy(argparse.Namespace(source=source, target=target))


# ---- PostgreSQL going away ---------------------------------------------------------------------

@pytest.fixture
def own_postgres(monkeypatch, home):
    """A server of this test's own, to stop and start (the session's serves the other tests)."""
    from tests import pg_server
    why = pg_server.unavailable()
    if why:
        pytest.skip(why)
    server = pg_server.Postgres().start()
    url = server.new_database()
    monkeypatch.setenv("COMPRESSION_STORE", url)
    yield server, url
    server.close()


def test_a_write_waits_for_a_restarting_server_and_is_kept_once(own_postgres, monkeypatch):
    server, url = own_postgres
    monkeypatch.setenv("COMPRESSION_STORE_RETRY_S", "60")
    store = RunStore(url)
    store.add(_result(0))  # the pool holds a connection that the restart kills
    server.stop()
    threading.Timer(2.0, server.start).start()
    started = time.monotonic()
    run_id = store.add(dataclasses.replace(_result(1), predictions=_predictions(20)))
    assert time.monotonic() - started >= 1.5  # it waited for the server ...
    assert [r["id"] for r in store.runs()] == [run_id, 1] and store.predictions(run_id).n == 20  # ... and wrote once


def test_a_server_that_stays_down_leaves_the_runs_in_the_spool_for_the_next_start(own_postgres, monkeypatch, home):
    server, url = own_postgres
    monkeypatch.setenv("COMPRESSION_STORE_RETRY_S", "1")
    store = RunStore(url)
    server.stop()
    with pytest.raises(StoreUnavailable) as refused:
        store.add(dataclasses.replace(_result(1), predictions=_predictions(20)))
    message = str(refused.value)
    assert "\n" not in message and "unreachable" in message and "spool" in message
    spooled = sorted((home / "spool").glob("*.json"))
    assert len(spooled) == 1 and json.loads(spooled[0].read_text())["row"]["extra"] == json.dumps({"i": 1})
    server.start()
    again = RunStore(url)  # the next start writes what was spooled, once
    RunStore(url)
    assert [r["extra"] for r in again.runs()] == [{"i": 1}] and again.predictions(again.runs()[0]["id"]).n == 20
    assert not list((home / "spool").glob("*.json"))


def test_a_sweep_survives_a_postgresql_restart_in_the_middle(own_postgres, monkeypatch):
    """run_jobs (every sweep and search) stores each finished point; the server restarts while the
    sweep runs: every point is stored exactly once."""
    import compression.sweep as sweep
    server, url = own_postgres
    monkeypatch.setenv("COMPRESSION_STORE_RETRY_S", "60")
    RunStore(url)

    def fake_job(job, **_):
        if job.spec == "3":  # the server goes down while point 3 computes, and comes back 2 s later
            server.stop()
            threading.Timer(2.0, server.start).start()
        return sweep.JobResult(job, _result(int(job.spec)), b"artifact " + job.spec.encode())
    monkeypatch.setattr(sweep, "run_job", fake_job)
    jobs = [sweep.Job("mlp", "fashion-mnist", str(i)) for i in range(6)]
    points = list(sweep.run_jobs(jobs, executor=sweep.InProcessExecutor()))
    assert all(p.ok for p in points)
    stored = RunStore(url).runs()
    assert sorted(r["extra"]["i"] for r in stored) == list(range(6))  # each once
    assert sorted(p.result.result.extra["run_id"] for p in points) == sorted(r["id"] for r in stored)


def test_the_command_line_names_its_user_and_migrates(home, capsys, monkeypatch):
    """--user (any command) is the owner of what it stores; runs --owner lists one person's runs;
    store migrate says what it did."""
    from compression.cli import main
    monkeypatch.delenv("COMPRESSION_STORE", raising=False)
    path = home / "old.sqlite"
    assert main(["store", "migrate", "--store", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"store": str(path), "schema_before": 0, "schema": SCHEMA_VERSION,
                                                   "runs": 0, "changed": True}
    assert main(["store", "migrate", "--store", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False  # once
    store = RunStore()
    from compression.access import set_cli_user
    try:
        for who in ("ana", "bo"):
            set_cli_user(who)
            store.add(_result(len(who)))
    finally:
        set_cli_user(None)
    assert main(["runs", "--owner", "bo", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["owner"] == "bo"
    assert main(["runs", "--json", "--user", "two words"]) == 2
    assert "--user 'two words'" in capsys.readouterr().err
