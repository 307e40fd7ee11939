import dataclasses
import multiprocessing as mp
import re
import sqlite3

import pytest

from compression import CompressionError
from compression.metrics import Metrics, Result
from compression.store import SCHEMA_VERSION, RunStore

M = Metrics(accuracy=0.9, accuracy_n=100, params=10, nonzero_params=5, size_bytes=40, macs=10.0,
            latency_ms=0.1, simulated=True)


def _result(i: int) -> Result:
    return Result(model="mlp", dataset="fashion-mnist", method="prune", config={"ratio": i / 1000},
                  device="cpu", metrics=M, baseline=M, extra={"writer": i})


def _writer(path: str, start: int, count: int) -> None:
    store = RunStore(path)
    for i in range(start, start + count):
        store.add(_result(i))


def test_round_trip(store_url):
    store = RunStore(store_url)
    run_id = store.add(_result(7))
    row = store.get(run_id)
    assert row["config"] == {"ratio": 0.007} and row["simulated"] is True
    assert row["baseline"]["size_bytes"] == 40 and row["extra"] == {"writer": 7}
    assert row["code_version"] and row["created_at"] > 0
    assert row["owner"] and "uid" not in row  # the CLI's (OS) user; the uid stays inside the store


def test_concurrent_writers_lose_nothing(store_url):
    path = store_url
    RunStore(path)
    procs = [mp.get_context("fork").Process(target=_writer, args=(path, k * 1000, 40)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    rows = RunStore(path).runs()
    assert len(rows) == 160
    assert sorted(r["extra"]["writer"] for r in rows) == sorted(k * 1000 + i for k in range(4) for i in range(40))


def test_filters(store_url):
    store = RunStore(store_url)
    store.add(_result(1))
    store.add(Result("cnn", "fashion-mnist", "quantize", {}, "cpu", M))
    assert [r["model"] for r in store.runs(model="cnn")] == ["cnn"]
    assert len(store.runs(dataset="fashion-mnist")) == 2 and store.count() == 2


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(CompressionError, match="newer"):
        RunStore(path)


def test_corrupt_file_gives_a_message(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CompressionError, match="runs.sqlite"):
        RunStore(path)


# ---- runs kept on purpose (schema 3): name, tags, star, hide, delete, groups -----------------------

_V2_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, model TEXT NOT NULL,
    dataset TEXT NOT NULL, method TEXT NOT NULL, config TEXT NOT NULL, device TEXT NOT NULL,
    code_version TEXT NOT NULL, accuracy REAL NOT NULL, accuracy_n INTEGER NOT NULL,
    params INTEGER NOT NULL, nonzero_params INTEGER NOT NULL, size_bytes INTEGER NOT NULL,
    macs REAL NOT NULL, latency_ms REAL NOT NULL, simulated INTEGER NOT NULL, baseline TEXT,
    extra TEXT NOT NULL, parent_id INTEGER REFERENCES runs(id), artifact_path TEXT);
CREATE INDEX runs_model_dataset ON runs(model, dataset);
CREATE TABLE predictions (run_id INTEGER PRIMARY KEY REFERENCES runs(id), n INTEGER NOT NULL, data BLOB NOT NULL);
PRAGMA user_version = 2;
"""


def _predictions():
    import numpy as np
    from compression.predictions import Predictions
    return Predictions(np.array([1, 2, 3], np.uint8), np.array([0.5, 0.6, 0.7], np.float16))


def test_a_version_2_file_is_upgraded_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as db:  # a file as schema-2 code wrote it
        db.executescript(_V2_SCHEMA)
        for i in (1, 2):
            db.execute("INSERT INTO runs (created_at, model, dataset, method, config, device, code_version, "
                       "accuracy, accuracy_n, params, nonzero_params, size_bytes, macs, latency_ms, simulated, "
                       "baseline, extra, parent_id) VALUES (1.0, 'mlp', 'fashion-mnist', 'prune', ?, 'cpu', "
                       "'0.1', 0.8, 100, 10, 5, 40, 10.0, 0.1, 0, NULL, '{}', ?)",
                       (f'{{"ratio": 0.{i}}}', 1 if i == 2 else None))
        db.execute("INSERT INTO predictions VALUES (1, 3, ?)", (_predictions().to_bytes(),))
    store = RunStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        cols = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
    assert {"name", "tags", "starred", "hidden", "group_id", "owner", "uid"} <= cols
    rows = store.runs()
    assert [r["config"] for r in rows] == [{"ratio": 0.2}, {"ratio": 0.1}] and rows[0]["parent_id"] == 1
    assert all(r["tags"] == [] and r["starred"] is False and r["hidden"] is False and r["name"] is None
               and r["group_id"] is None and r["owner"] == "local" for r in rows)  # made before owners: local
    store.update(1, name="first", tags=["kept"], starred=True)  # the new columns work on the old rows
    assert RunStore(path).get(1)["name"] == "first" and store.runs(tag="kept")[0]["id"] == 1
    assert store.predictions(1) is not None  # the predictions table is untouched


def test_name_tags_star_and_hide(store_url):
    store = RunStore(store_url)
    a, b, c = (store.add(_result(i)) for i in range(3))
    row = store.update(a, name="  8-bit mlp, 4x smaller ", tags=["review", "int8", "review"], starred=True)
    assert row["name"] == "8-bit mlp, 4x smaller" and row["tags"] == ["review", "int8"] and row["starred"] is True
    store.tag(b, "review")
    assert [r["id"] for r in store.runs(tag="review")] == [b, a]
    assert [r["id"] for r in store.runs(tag="int8")] == [a] and store.runs(tag="nope") == []
    assert [r["id"] for r in store.runs(starred=True)] == [a]
    assert store.untag(a, "int8")["tags"] == ["review"] and store.tags() == ["review"]
    assert store.update(a, name="")["name"] is None  # "" clears the name, None leaves it
    assert store.update(a, starred=False)["starred"] is False

    before = store.revision()
    store.update(c, hidden=True)
    assert store.revision() != before  # a cache keyed by it sees the change
    assert c not in [r["id"] for r in store.runs()]  # hidden runs are left out by default ...
    assert c in [r["id"] for r in store.runs(include_hidden=True)]  # ... and there when asked for
    assert store.get(c)["hidden"] is True and store.count() == 3
    store.update(c, hidden=False)
    assert c in [r["id"] for r in store.runs()]


@pytest.mark.parametrize("change, named", [
    (dict(tags=["a,b"]), "'a,b'"), (dict(tags=[" "]), "' '"), (dict(tags=["x" * 33]), "x" * 33),
    (dict(tags="review"), "'review'"), (dict(name="x" * 81), "81 characters"), (dict(name="two\nlines"), "two"),
    (dict(starred="yes"), "'yes'"), (dict(hidden=2), "2"),
])
def test_update_refuses_bad_values_naming_them(store_url, change, named):
    store = RunStore(store_url)
    run_id = store.add(_result(1))
    with pytest.raises(CompressionError, match=re.escape(named)):
        store.update(run_id, **change)
    row = store.get(run_id)
    assert row["tags"] == [] and row["name"] is None and not row["starred"] and not row["hidden"]


def test_unknown_run_ids_are_named(store_url):
    store = RunStore(store_url)
    store.add(_result(1))
    for call in (lambda: store.update(99, starred=True), lambda: store.delete(99), lambda: store.tag(99, "a")):
        with pytest.raises(CompressionError, match="no run 99"):
            call()
    with pytest.raises(CompressionError, match="'abc'"):
        store.delete("abc")
    with pytest.raises(CompressionError, match="no tag 'b'"):
        store.untag(1, "b")


def test_delete_removes_predictions_and_the_artifact_under_the_data_folder_only(home, tmp_path, store_url):
    store = RunStore()  # in the data folder
    (home / "artifacts").mkdir(parents=True)
    ours = home / "artifacts" / "mlp-1.cxp"
    ours.write_bytes(b"\x01" * 10)
    theirs = tmp_path / "users-own-model.pt"  # a file of the user's, outside the data folder
    theirs.write_bytes(b"\x02" * 10)
    parent = store.add(dataclasses.replace(_result(1), predictions=_predictions()), artifact_path=str(ours))
    child = store.add(_result(2), parent_id=parent)
    outside = store.add(_result(3), artifact_path=str(theirs))
    relative = store.add(_result(4), artifact_path="artifacts/rel.cxp")
    (home / "artifacts" / "rel.cxp").write_bytes(b"x")
    assert store.predictions(parent) is not None

    from compression.export.source import exports_dir
    (exports_dir(parent)).mkdir(parents=True)
    (exports_dir(parent) / "model.onnx").write_bytes(b"o")  # exported from the run, with its re-check
    gone = store.delete(parent)
    assert gone["id"] == parent and gone["detached"] == [child] and gone["artifact_removed"] is True
    assert gone["exports_removed"] is True and not exports_dir(parent).exists() and exports_dir(child).parent.is_dir()
    assert store.get(parent) is None and store.predictions(parent) is None and not ours.exists()
    assert store.get(child)["parent_id"] is None  # the child stays, detached

    assert store.delete(outside)["artifact_removed"] is False and theirs.exists()  # never the user's file
    assert store.delete(relative)["artifact_removed"] is True and not (home / "artifacts" / "rel.cxp").exists()
    assert [r["id"] for r in store.runs()] == [child]


def test_a_file_kept_by_another_run_is_not_removed(home, store_url):
    store = RunStore()
    (home / "a.cxp").write_bytes(b"x")
    first = store.add(_result(1), artifact_path=str(home / "a.cxp"))
    store.add(_result(2), artifact_path=str(home / "a.cxp"))
    assert store.delete(first)["artifact_removed"] is False and (home / "a.cxp").exists()


def test_groups(store_url):
    from compression.run_labels import new_group_id
    store = RunStore(store_url)
    gid = new_group_id("sweep")
    assert gid.startswith("sweep:") and len(gid) == len("sweep:") + 8 and new_group_id("sweep") != gid
    assert new_group_id("search", "mlp-60k") == "search:mlp-60k"
    with pytest.raises(CompressionError, match="'bogus'"):
        new_group_id("bogus")
    ids = [store.add(_result(i), group=gid) for i in range(3)]
    store.add(_result(9))
    assert sorted(r["id"] for r in store.runs(group=gid)) == ids


def test_the_runs_of_one_sweep_share_a_group_id(home, monkeypatch, store_url):
    """run_jobs (every sweep, search and budget search) stores the jobs of one call under one group;
    a search passes its study's group to each of its batches."""
    import compression.sweep as sweep

    def fake_job(job, **_):  # what a worker sends back, without running a method
        return sweep.JobResult(job, _result(int(job.spec)), b"artifact " + job.spec.encode())
    monkeypatch.setattr(sweep, "run_job", fake_job)
    jobs = [sweep.Job("mlp", "fashion-mnist", str(i)) for i in range(3)]
    points = list(sweep.run_jobs(jobs, executor=sweep.InProcessExecutor()))
    store = RunStore()
    rows = [store.get(p.result.result.extra["run_id"]) for p in points]
    (group,) = {r["group_id"] for r in rows}
    assert group.startswith("sweep:") and sorted(r["id"] for r in store.runs(group=group)) == [r["id"] for r in rows]
    again = list(sweep.run_jobs(jobs[:2], executor=sweep.InProcessExecutor()))  # another sweep, another group
    assert store.get(again[0].result.result.extra["run_id"])["group_id"] not in (None, group)
    one = list(sweep.run_jobs(jobs[:1], executor=sweep.InProcessExecutor()))  # a single job is no sweep
    assert store.get(one[0].result.result.extra["run_id"])["group_id"] is None
    for batch in (jobs[:2], jobs[2:]):  # a search: its batches, one group
        list(sweep.run_jobs(batch, executor=sweep.InProcessExecutor(), group="search:my-study"))
    assert len(store.runs(group="search:my-study")) == 3


def test_save_run_keeps_a_run_on_purpose_and_refuses_bad_tags_before_writing(home, store_url):
    """What a page's "Keep this run" calls: the artifact under the data folder, the run named,
    tagged and starred; a refused tag writes nothing."""
    from compression.methods import save_run
    run_id = save_run(_result(1), b"\x01" * 40, name="kept on purpose", tags=["review"], starred=True)
    row = RunStore().get(run_id)
    assert (row["name"], row["tags"], row["starred"]) == ("kept on purpose", ["review"], True)
    assert (home / "artifacts").exists() and open(row["artifact_path"], "rb").read() == b"\x01" * 40
    files = sorted((home / "artifacts").rglob("*.cxp"))
    with pytest.raises(CompressionError, match="'a,b'"):
        save_run(_result(2), b"\x02", tags=["a,b"])
    assert sorted((home / "artifacts").rglob("*.cxp")) == files and RunStore().count() == 1


def test_the_sidebar_offers_the_newest_kept_runs_first(home):
    """'Start from' lists the model's starred or named runs with an artifact, newest first (it
    listed the 20 oldest)."""
    from ui.sidebar import starting_points
    store = RunStore()
    ids = [store.add(_result(i), artifact_path=f"artifacts/{i}.cxp") for i in range(25)]
    for i in ids:
        store.update(i, starred=True)
    plain = store.add(_result(99))  # not kept: not offered
    offered = [r["id"] for r in starting_points("mlp", "fashion-mnist")]
    assert offered == sorted(ids, reverse=True)[:20] and plain not in offered


def test_kept_runs_are_the_starred_or_named_ones_with_an_artifact(store_url):
    store = RunStore(store_url)
    starred = store.add(_result(1), artifact_path="artifacts/a.cxp")
    named = store.add(_result(2), artifact_path="artifacts/b.cxp")
    no_file = store.add(_result(3))
    plain = store.add(_result(4), artifact_path="artifacts/c.cxp")
    store.update(starred, starred=True)
    store.update(named, name="the small one")
    store.update(no_file, starred=True)
    assert [r["id"] for r in store.runs(kept=True)] == [named, starred] and plain > named
