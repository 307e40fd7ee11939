"""Damaged files: a clear message, the rest keeps working, nothing stored is lost."""

import signal
import subprocess
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

from compression import CompressionError
from compression.paths import REPO_ROOT as ROOT
from compression.metrics import Metrics, Result
from compression.store import RunStore

WRITER = """
import sys
from compression.metrics import Metrics, Result
from compression.store import RunStore
m = Metrics(0.9, 100, 10, 5, 40, 10.0, 0.1, False)
store = RunStore(sys.argv[1])
i = 0
while True:
    store.add(Result("mlp", "fashion-mnist", "prune", {"i": i}, "cpu", m, extra={"pad": "x" * 5000}))
    i += 1
    if i == 20:
        print("ready", flush=True)
"""


def test_store_survives_a_writer_killed_mid_write(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up, possibly inside a transaction
    proc.wait(10)
    store = RunStore(path)
    rows = store.runs()
    ids = sorted(r["config"]["i"] for r in rows)
    assert len(rows) >= 20 and ids == list(range(len(ids)))  # every committed row intact, in order
    store.add(Result("mlp", "fashion-mnist", "prune", {"i": -1}, "cpu", Metrics(0.9, 100, 10, 5, 40, 10.0, 0.1, False)))
    assert store.count() == len(rows) + 1  # and it still takes writes


def test_home_page_survives_an_unreadable_store(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "runs.sqlite").write_bytes(b"garbage" * 1000)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    assert any("runs.sqlite" in e.value for e in at.error)
    assert any(m.label == "Test accuracy" for m in at.metric)  # the rest of the page still works


def test_corrupt_user_checkpoint_is_a_message_and_the_app_keeps_working(home):
    import io
    import torch
    from compression.evaluate import add_user_model
    from compression.models import checkpoint_path, load_pretrained
    buf = io.BytesIO()
    torch.save(load_pretrained("mlp").state_dict(), buf)
    add_user_model("mlp", buf.getvalue(), name="fragile", filename="f.pt")
    path = checkpoint_path("fragile")
    path.write_bytes(path.read_bytes()[:1000])  # half-written
    with pytest.raises(CompressionError, match="truncated or corrupt"):
        load_pretrained("fragile")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["keep_sidebar_model"] = "fragile"
    at.run()
    assert not at.exception and any("truncated or corrupt" in e.value for e in at.error)
    at.sidebar.selectbox(key="sidebar_model").set_value("mlp").run()
    assert not at.exception and any(m.label == "Test accuracy" for m in at.metric)


def test_corrupt_dataset_cache_is_rebuilt(home):
    from compression.data import _load_cached, load_dataset
    _load_cached.cache_clear()
    load_dataset("fashion-mnist")
    caches = list((home / "cache" / "datasets").glob("fashion-mnist-*.pt"))
    assert len(caches) == 1
    caches[0].write_bytes(b"broken")
    _load_cached.cache_clear()
    data = load_dataset("fashion-mnist")
    assert len(data.test) == 10000 and caches[0].stat().st_size > 50_000_000
