"""A long job tells its end: the phase it is in, elapsed time and an estimate of the time left, from
ticks sent by the work itself (compression.training.tick) between its progress entries."""

import time

from compression.models import build_model
from compression.training import TrainConfig, fit, tick, tick_sink
from ui.jobs import Job, fmt_duration, status_line


def test_fit_ticks_its_phase_and_share_without_adding_progress_entries(fmnist, monkeypatch):
    import compression.training as training
    ticks, entries = [], []
    monkeypatch.setattr(training.time, "perf_counter", _fake_clock(step=0.3))  # every step looks 0.3 s long
    with tick_sink(ticks.append):
        fit(build_model("mlp"), fmnist, TrainConfig(epochs=2, subset=512, batch_size=128), progress=entries.append)
    assert [e["epoch"] for e in entries] == [1, 2]  # progress entries unchanged: one per epoch
    phases = [t["phase"] for t in ticks]
    assert "training epoch 1 of 2" in phases and "training epoch 2 of 2" in phases
    assert phases[-1] == "evaluating epoch 2 of 2"
    shares = [t["done"] / t["total"] for t in ticks]
    assert shares == sorted(shares) and shares[-1] == 1.0  # across both epochs, never backwards
    assert len({t["span"] for t in ticks}) == 1


def test_no_sink_no_ticks_and_a_sink_is_per_thread():
    tick(0, "nobody listens")  # nothing to assert but that it is a no-op
    got = []
    with tick_sink(got.append):
        tick(7, "a", 1, 4)
    tick(7, "after", 2, 4)
    assert got == [{"span": 7, "phase": "a", "done": 1, "total": 4}]


def test_status_line_has_phase_elapsed_and_time_left():
    job = Job(label="prune cnn", device="cpu", status="running", started_at=time.time() - 30)
    job.tick({"span": 1, "phase": "training epoch 1 of 4", "done": 0, "total": 100})
    job._span_start[1] = time.time() - 20  # the fit started 20 s ago ...
    job.tick({"span": 1, "phase": "training epoch 2 of 4", "done": 40, "total": 100})  # ... and is 40 % done
    fraction, text = status_line(job)
    assert fraction == 0.4
    assert "training epoch 2 of 4" in text and "40 %" in text and "30 s elapsed" in text
    assert "about 30 s left in this phase" in text  # 20 s for 40 %: 30 s for the other 60 %
    job.progress({"epoch": 2, "epochs": 4, "val_accuracy": 0.8})  # a newer entry wins over the tick
    phase, fraction, _ = job.now()
    assert phase == "epoch 2 of 4" and fraction == 0.5


def test_a_job_with_nothing_measured_yet_says_so():
    job = Job(label="distill", device="cpu", status="running", started_at=time.time())
    fraction, text = status_line(job)
    assert fraction == 0 and "waiting for the first step" in text and "estimating time left" in text


def test_durations_read_as_a_person_would():
    assert [fmt_duration(s) for s in (4.6, 59, 61, 3599, 3725)] == ["5 s", "59 s", "1 min 01 s", "59 min 59 s",
                                                                   "1 h 02 min"]


def _fake_clock(step):
    t = [0.0]

    def clock():
        t[0] += step
        return t[0]
    return clock
