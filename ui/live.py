"""Live answers on a page: a slider's result in stages (compression.progressive), never blocking
the next slider move for longer than the first stage.

Per page, one StageCache shared by every session (plain keys: model, dataset, device, config; so
a value anyone saw before is instant) and one LatestRunner per session (its own background thread:
the newest slider value first, older ones cancelled). A script run asks for the current key, waits
up to FIRST_WAIT seconds for a first stage and draws whatever is ready; while a stage is still
pending, a small fragment polls the cache and reruns the page when the next stage lands (a
fragment that keeps drawing charts would flicker), and stops polling once the result is complete.

    entry = live.result("prune", key, lambda cancelled: staged_prune(..., cancelled=cancelled))
    # entry is None (nothing yet), or entry.latest the newest Stage, entry.error what ended it
"""

from __future__ import annotations

import time
from typing import Any, Callable, Hashable, Iterable, Iterator

import streamlit as st

from compression.device import heavy_job
from compression.progressive import Entry, LatestRunner, Stage, StageCache, Work, run_to_end

FIRST_WAIT = 1.5     # seconds a script run waits for the first stage before the page says it is measuring
POLL = 0.5           # seconds between looks at the cache while a stage is pending
_SETTLED = "live_settled_{}"  # session state: the rerun the poller asked for (an error is not retried)


@st.cache_resource
def stage_cache(page: str) -> StageCache:
    """The page's results by key, shared by every session (least recently used out first)."""
    return StageCache(max_entries=64)


def runner(page: str) -> LatestRunner:
    """This session's runner for the page (its background thread starts with the first request)."""
    key = f"live_runner_{page}"
    current = st.session_state.get(key)
    if not isinstance(current, LatestRunner) or current.cache is not stage_cache(page):
        current = st.session_state[key] = LatestRunner(stage_cache(page), name=f"live-{page}")
    return current


def result(page: str, key: Hashable, work: Work, *, first_wait: float = FIRST_WAIT) -> Entry | None:
    """Ask for `key` (computed by `work` unless known), wait up to `first_wait` seconds for its first
    stage, and poll for the next one while it is pending. The entry as it is now, or None."""
    cache, run = stage_cache(page), runner(page)
    settled = st.session_state.pop(_SETTLED.format(page), False)
    run.submit(key, work, retry_failed=not settled)
    entry = _wait_first(cache, key, first_wait)
    if entry is None or not entry.done:
        _poll(page, key, len(entry.stages) if entry else 0)
    return entry


def _wait_first(cache: StageCache, key: Hashable, seconds: float) -> Entry | None:
    """The key's entry once it has a stage (or an error), or None after `seconds`. Waits in slices,
    touching an empty placeholder between them: Streamlit ends a script run at its next element when
    a newer slider value came, so a superseded run does not sit out the whole wait."""
    ready = lambda e: e.stages or e.error is not None  # noqa: E731
    end = time.monotonic() + seconds
    slot = None
    while True:
        entry = cache.wait(key, ready, min(0.1, max(0.0, end - time.monotonic())))
        if entry is not None or time.monotonic() >= end:
            return entry
        slot = slot or st.empty()
        slot.empty()


def _poll(page: str, key: Hashable, shown: int) -> None:
    """Rerun the page when the key's next stage (or its error) has landed; nothing drawn."""

    @st.fragment(run_every=POLL)
    def poll() -> None:
        entry = stage_cache(page).get(key)
        if entry is None:
            if runner(page).wanted == key and not runner(page).busy():
                st.session_state[_SETTLED.format(page)] = False  # evicted or dropped: ask again
                st.rerun(scope="app")
            return
        if len(entry.stages) > shown or entry.error is not None:
            st.session_state[_SETTLED.format(page)] = entry.done
            st.rerun(scope="app")
    poll()


def on_device(stages: Iterable[Stage], label: str, device: str, view: Callable[[Stage], Any]) -> Iterator[Stage]:
    """`stages` with each value made a page's view: the first at once, the rest holding the device
    (compression.device.heavy_job: one heavy job at a time, so latency is timed on a quiet device;
    the first stage times nothing, so a running job does not hold it up)."""
    it = iter(stages)
    for stage in it:
        yield Stage(stage.name, {**view(stage), "stage": stage.name}, final=stage.final)
        if stage.final:
            return
        break
    with heavy_job(label, device):
        for stage in it:
            yield Stage(stage.name, {**view(stage), "stage": stage.name}, final=stage.final)


def precompute(page: str, key: Hashable, work: Work, *, cancelled: Callable[[], bool] = lambda: False) -> None:
    """Run `work` to its end here (a warm-start thread, ui.warm), into the page's cache, unless the
    key is known already or a session is computing it. A failure is not kept: the page computes it
    again when asked; `cancelled` ends it between steps (compression.progressive.Cancelled)."""
    run_to_end(stage_cache(page), key, work, cancelled=cancelled)


def stage_caption(n: int, of: int, *, classes: int | None = None, refining: bool = True) -> str:
    """'on a stratified sample of 500 of 10,000 test images, every class (refining…)': the preview
    subset (compression.preview_subset), the same images every time."""
    from compression.preview_subset import describe
    return f"on {describe(n, of, classes)}" + (" (refining…)" if refining else "")


def clear(page: str) -> None:
    """Forget every result of the page (tests)."""
    stage_cache(page).clear()

