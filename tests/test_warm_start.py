"""The warm start never holds up a user (ui.warm, compression.cancel): it begins when the server
starts (app.py's st.App lifespan), its work ends at the next evaluation batch or timing round once
a user's job waits for the device, gives the device up at once, and starts again when it is idle."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest
import torch

from compression.cancel import Cancelled, cancel_when, checkpoint
from compression.data import Dataset, Split
from compression.device import heavy_job
from compression.progressive import Stage, StageCache, run_to_end
from compression.timing import interleaved
from compression.training import predict

ROOT = Path(__file__).resolve().parents[1]


def test_checkpoint_is_a_no_op_without_a_predicate_and_raises_inside_cancel_when():
    checkpoint()
    flag = {"stop": False}
    with cancel_when(lambda: flag["stop"]):
        checkpoint()
        flag["stop"] = True
        with pytest.raises(Cancelled):
            checkpoint()
    checkpoint()  # the predicate is gone with the block


def test_the_predicate_belongs_to_its_thread_only():
    seen = []
    with cancel_when(lambda: True):
        other = threading.Thread(target=lambda: (checkpoint(), seen.append("ran")))
        other.start()
        other.join()
    assert seen == ["ran"]


def _tiny_dataset(n: int = 64) -> Dataset:
    g = torch.Generator().manual_seed(0)
    split = Split(torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g))
    return Dataset("tiny", ("a", "b", "c"), split, split, split, mean=(0.5,), std=(0.25,), source="test")


def test_an_evaluation_and_a_timing_end_at_their_next_batch_or_round():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    data = _tiny_dataset()
    checks = []
    with cancel_when(lambda: checks.append(1) or len(checks) > 1):
        with pytest.raises(Cancelled):
            predict(model, data, "test", batch_size=8)  # the first batch runs, the second check ends it
    assert len(checks) == 2
    calls = []
    assert predict(model, data, "test", batch_size=8).shape == (64, 3)  # outside the block: all of it

    def fn():
        calls.append(1)
    calls.clear()
    with cancel_when(lambda: len(calls) >= 5):
        with pytest.raises(Cancelled):
            interleaved({"a": fn}, rounds=100, calls=1, warmup=5)
    assert len(calls) == 5  # the warm-up only: no timed round ran


def test_run_to_end_keeps_nothing_of_cancelled_work():
    cache = StageCache()

    def work(cancelled):
        yield Stage("subset", 1)
        if cancelled():
            raise Cancelled()
        yield Stage("full", 2, final=True)
    with pytest.raises(Cancelled):
        run_to_end(cache, "k", work, cancelled=lambda: True)
    assert cache.get("k") is None and cache.claim("k")  # dropped and released: a page computes it


def test_warm_work_gives_the_device_up_to_a_user_and_finishes_after(monkeypatch):
    from ui import warm
    monkeypatch.setattr(warm, "QUIET", 0.2)
    monkeypatch.setitem(warm._STATE, "yielded", [])
    device = "cpu"
    holding, tries = threading.Event(), []

    def background(cancelled):  # the first try would hold the device for 20 s unless cancelled
        tries.append(time.monotonic())
        with heavy_job("warm test", device):
            holding.set()
            end = time.monotonic() + (20 if len(tries) == 1 else 0.1)
            while time.monotonic() < end:
                checkpoint()
                time.sleep(0.01)
        return "done"

    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", warm.yielding("test step", device, background)))
    thread.start()
    assert holding.wait(10)
    asked = time.monotonic()
    with heavy_job("a user's slider", device):
        waited = time.monotonic() - asked
        holding.clear()
        time.sleep(0.3)  # the user's work: the warm step must not start again meanwhile
        assert not holding.is_set()
    assert waited < 5, f"the user waited {waited:.1f} s for the device"
    assert holding.wait(10)  # started again once the device was idle
    thread.join(10)
    assert out == {"value": "done"} and warm._STATE["yielded"] == ["test step"] and len(tries) == 2


def test_streamlit_run_finds_the_server_app_with_the_warm_start_lifespan():
    from streamlit.web.server.app_discovery import discover_asgi_app
    found = discover_asgi_app(ROOT / "app.py")
    assert found.is_asgi_app and found.import_string.endswith(":app")
    tree = ast.parse((ROOT / "app.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "App"]
    assert [kw.arg for kw in calls[0].keywords] == ["lifespan"]
    assert ast.unparse(calls[0].keywords[0].value) == "warm.lifespan"
