"""Long work (training, fine-tuning, sweeps) in a background thread, with a live view and Stop.

Why a thread and not the script run: Streamlit stops a script run whenever the user touches a
widget, which would throw away a half-trained model. Here the work runs in a worker thread that
waits its turn in the device queue (one heavy job per device for all sessions), reports progress
into the Job object, and polls `job.should_stop()`. The page shows the job in a fragment that
refreshes twice a second; Stop sets an event and the worker finishes with what it has. The
worker stores its results itself, so leaving the page does not lose them.

    job = jobs.start("prune_job", "prune cnn 50%", lambda job: core_call(progress=job.progress,
                     should_stop=job.should_stop), device=sel.device)
    jobs.panel("prune_job", show_progress=..., show_result=...)
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import streamlit as st

from compression import CompressionError, access
from compression.device import device_queue
from compression.training import tick_sink

log = logging.getLogger("compression.app")


@dataclass
class Job:
    label: str
    device: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    status: str = "queued"          # queued | running | done | stopped | failed
    events: list[dict] = field(default_factory=list)  # progress entries, oldest first
    result: Any = None
    error: str | None = None
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    last_tick: dict | None = None   # what the work is doing now (compression.training.tick)
    _event_at: float = 0.0
    _span_start: dict = field(default_factory=dict, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    # worker side ---------------------------------------------------------------------------
    def progress(self, entry: dict) -> None:
        self.events.append(dict(entry))
        self._event_at = time.time()

    def tick(self, entry: dict) -> None:
        now = time.time()
        self._span_start.setdefault(entry["span"], now)
        self.last_tick = {**entry, "at": now}

    def should_stop(self) -> bool:
        return self._stop.is_set()

    # page side -----------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "failed")

    @property
    def fraction(self) -> float:
        """Share of the work done, from the last event's (step, steps) or (epoch, epochs)."""
        for e in reversed(self.events):
            for num, den in (("step", "steps"), ("epoch", "epochs"), ("done", "total")):
                if e.get(den):
                    return min(1.0, float(e[num]) / float(e[den]))
        return 0.0

    def now(self) -> tuple[str, float, float | None]:
        """(phase, fraction done, seconds left or None) from the newest news: a tick from inside a
        long call (training epoch k of n, evaluation) when it is newer than the last event, else
        the last event. Seconds left extrapolate the measured rate of the current phase (for a
        tick, since its call started; else since the job started)."""
        now = time.time()
        t = self.last_tick
        fresh = t is not None and t["at"] >= self._event_at
        if fresh and t.get("total"):
            fraction = min(1.0, float(t["done"]) / float(t["total"]))
            since = self._span_start.get(t["span"], now)
            return t["phase"], fraction, _left(now - since, fraction, "in this phase")
        fraction = self.fraction
        last = self.events[-1] if self.events else {}
        if "seconds_left" in last:  # the work's own estimate (a pipeline: from its steps done); None: unknown
            told = last["seconds_left"]
            left = None if told is None else _Left(max(0.0, float(told) - (now - self._event_at)))
            phase = t["phase"] if fresh else _phase(last)
            if left is not None and left == 0.0 and fraction < 1.0:
                left = None  # past its own estimate: say so rather than "about 0 s left"
            return phase, fraction, left
        if fresh:  # a phase without a count (measuring): the job's share and rate
            return t["phase"], fraction, _left(now - (self.started_at or now), fraction)
        phase = _phase(self.events[-1]) if self.events else ("waiting for the first step" if self.status == "running"
                                                            else self.status)
        return phase, fraction, _left(now - (self.started_at or now), fraction)

    def wait(self, timeout: float | None = None) -> "Job":
        if self._thread is not None:
            self._thread.join(timeout)
        return self


class _Left(float):
    """Seconds left, and what they are the rest of ('in this phase' for one call's ticks)."""
    scope = ""


def _left(elapsed: float, fraction: float, scope: str = "") -> float | None:
    if fraction <= 0.01 or elapsed <= 0.5:
        return None
    left = _Left(elapsed * (1 - fraction) / fraction)
    left.scope = scope
    return left


def _phase(e: dict) -> str:
    """A progress entry in words: 'epoch 2 of 5', 'step 3 of 8', or its phase/stage name."""
    name = e.get("phase") or e.get("stage") or ""
    for num, den, word in (("epoch", "epochs", "epoch"), ("step", "steps", "step")):
        if e.get(den):
            count = f"{word} {e[num]:g} of {e[den]}" if isinstance(e[num], (int, float)) else ""
            return f"{name}: {count}" if name and name not in ("measured", "quantized") else count
    return str(name)


def fmt_duration(seconds: float) -> str:
    """'45 s', '3 min 05 s', '1 h 02 min'."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def status_line(job: Job) -> tuple[float, str]:
    """The progress bar's fraction and text: label, phase, share, elapsed, time left."""
    phase, fraction, left = job.now()
    elapsed = time.time() - (job.started_at or time.time())
    scope = f" {left.scope}" if getattr(left, "scope", "") else ""
    tail = f"about {fmt_duration(left)} left{scope}" if left is not None else "estimating time left…"
    return fraction, f"{job.label} — {phase + ' · ' if phase else ''}{fraction * 100:.0f} % · " \
                     f"{fmt_duration(elapsed)} elapsed · {tail}"


def _work(job: Job, fn: Callable[[Job], Any], user: access.User) -> None:
    try:
        with access.acting_as(user), device_queue(job.device).run(job.label), tick_sink(job.tick):
            job.status, job.started_at = "running", time.time()
            job.result = fn(job)
        job.status = "stopped" if job.should_stop() else "done"
    except CompressionError as exc:
        job.status, job.error = "failed", str(exc)
    except Exception as exc:  # logged with traceback on the server, short message on the page
        log.exception("job %s (%s) failed", job.id, job.label)
        job.status, job.error = "failed", f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        job.finished_at = time.time()


def start(key: str, label: str, fn: Callable[[Job], Any], *, device: str) -> Job:
    """Start `fn(job)` in a worker thread and keep the job in st.session_state[key].

    A job already running under `key` is asked to stop first (its partial result is kept by fn).
    The acting user must be allowed to run jobs (compression.access: refused with one line); the
    worker acts as them (the owner of what it stores).
    """
    user = access.require("run jobs")
    old = st.session_state.get(key)
    if isinstance(old, Job) and not old.finished:
        old.request_stop()
    job = Job(label=label, device=device)
    job._thread = threading.Thread(target=_work, args=(job, fn, user), name=f"job-{job.id}", daemon=True)
    st.session_state[key] = job
    job._thread.start()
    return job


def get(key: str) -> Job | None:
    job = st.session_state.get(key)
    return job if isinstance(job, Job) else None


def queue_position(job: Job) -> int:
    """0 when running or finished, else 1 + the number of jobs ahead of it."""
    running, waiting = device_queue(job.device).status()
    for i, ticket in enumerate(waiting):
        if ticket.label == job.label:
            return i + 1 + (running is not None)
    return 0


def panel(key: str, show_progress: Callable[[Job], None], show_result: Callable[[Job], None]) -> None:
    """Show the job under `key`: live progress with a Stop button while it runs, then its result."""
    job = get(key)
    if job is None:
        return
    if job.finished:
        _show_finished(job, show_result)
        return

    @st.fragment(run_every=0.5)
    def live() -> None:
        current = get(key)
        if current is None:
            return
        if current.finished:
            st.rerun(scope="app")  # redraw the whole page with the result
        if current.status == "queued":
            running, _ = device_queue(current.device).status()
            st.info(f"Queued (position {queue_position(current)}) — {current.device} is busy"
                    + (f" with: {running.label}" if running else ""))
        else:
            fraction, text = status_line(current)
            st.progress(fraction, text=text)
            if current.events:  # a chart of nothing (axes -1..6) says less than the bar
                show_progress(current)
            else:
                st.caption("The chart starts with the first measured step.")
        st.button("Stop", key=f"{key}_stop", on_click=current.request_stop,
                  help="Stop after the current step; what was done so far is kept.")
    live()


def _show_finished(job: Job, show_result: Callable[[Job], None]) -> None:
    took = (job.finished_at or 0) - (job.started_at or job.queued_at)
    if job.status == "failed":
        st.error(job.error or "failed")
        return
    if job.status == "stopped":
        st.warning(f"Stopped after {fmt_duration(took)}: showing what was done before Stop.")
    else:
        st.caption(f"{job.label}: finished in {fmt_duration(took) if took >= 60 else f'{took:.1f} s'}.")
    show_result(job)
