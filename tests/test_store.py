import multiprocessing as mp
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


def test_round_trip(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.add(_result(7))
    row = store.get(run_id)
    assert row["config"] == {"ratio": 0.007} and row["simulated"] is True
    assert row["baseline"]["size_bytes"] == 40 and row["extra"] == {"writer": 7}
    assert row["code_version"] and row["created_at"] > 0


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "runs.sqlite")
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


def test_filters(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
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
