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

from compression import CompressionError
from compression.device import device_queue

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
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    # worker side ---------------------------------------------------------------------------
    def progress(self, entry: dict) -> None:
        self.events.append(dict(entry))

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

    def wait(self, timeout: float | None = None) -> "Job":
        if self._thread is not None:
            self._thread.join(timeout)
        return self


def _work(job: Job, fn: Callable[[Job], Any]) -> None:
    try:
        with device_queue(job.device).run(job.label):
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
    """
    old = st.session_state.get(key)
    if isinstance(old, Job) and not old.finished:
        old.request_stop()
    job = Job(label=label, device=device)
    job._thread = threading.Thread(target=_work, args=(job, fn), name=f"job-{job.id}", daemon=True)
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
            st.progress(current.fraction, text=f"{current.label} — {current.fraction * 100:.0f} %")
            show_progress(current)
        st.button("Stop", key=f"{key}_stop", on_click=current.request_stop,
                  help="Stop after the current step; what was done so far is kept.")
    live()


def _show_finished(job: Job, show_result: Callable[[Job], None]) -> None:
    took = (job.finished_at or 0) - (job.started_at or job.queued_at)
    if job.status == "failed":
        st.error(job.error or "failed")
        return
    if job.status == "stopped":
        st.warning(f"Stopped after {took:.1f} s: showing what was done before Stop.")
    else:
        st.caption(f"{job.label}: finished in {took:.1f} s.")
    show_result(job)
