"""Shared fixtures. Every test session gets its own app data folder (run store, caches) and no
network: downloads are disabled so a missing dataset fails fast instead of hanging."""

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_HOME = tempfile.mkdtemp(prefix="compression-test-home-")
os.environ["COMPRESSION_HOME"] = _HOME
os.environ["COMPRESSION_OFFLINE"] = "1"
os.environ.setdefault("COMPRESSION_DEVICE", "cpu")  # tests assert CPU-exact numbers
# the live preview's image count, measured from the model's speed in the app, fixed here so pages
# show the same count on a busy machine (tests/test_preview_subset.py measures it)
os.environ.setdefault("COMPRESSION_PREVIEW_IMAGES", "500")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs the suite in 2 worker processes (pytest-xdist) on a 2-core machine: one
    # intra-op thread each (and in what they start: app servers, cluster workers), so the two do
    # not fight over the cores; two threads that wait for each other make a forward many times slower
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fmnist():
    from compression.data import load_dataset
    return load_dataset("fashion-mnist")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh, empty app data folder for one test."""
    monkeypatch.setenv("COMPRESSION_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(autouse=True)
def _keep_main_module():
    """AppTest leaves sys.modules['__main__'] set to the page script; a later test that spawns
    processes (the run store's, a cluster's workers) would then re-run the page in every child.
    Put the real one back after every test."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


# ---- PostgreSQL: a throwaway server for the session (tests/pg_server.py) -----------------------

@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of this test session; skipped (with the reason) where none can run."""
    from tests import pg_server
    why = pg_server.unavailable()
    if why:
        pytest.skip(why)
    server = pg_server.Postgres().start()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, home, monkeypatch):
    """The run store of one test, on each database in turn: COMPRESSION_STORE names it, so RunStore()
    (and everything that opens the default store) uses it."""
    if request.param == "sqlite":
        monkeypatch.delenv("COMPRESSION_STORE", raising=False)
        return str(home / "runs.sqlite")
    url = request.getfixturevalue("postgres").new_database()
    monkeypatch.setenv("COMPRESSION_STORE", url)
    return url
