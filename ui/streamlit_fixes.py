"""Two Streamlit (1.67) races that a person meets on the home page, mended here until Streamlit does.

**A white page after st.stop().** `fragments_dropped_on_stop()`: a page that calls st.stop() leaves
no fragment of an earlier run behind. Streamlit forgets the fragments a full run did not register again only when that run ends
normally. A page that stopped early (the home page once "Image folder…" was chosen and no folder
typed yet) kept the previous run's polling fragment (ui.live, run_every): its next rerun sent its
delta to the old layout's position (main block, child 14) in a page that now had one element, and
the browser showed a white page ("Bad delta path index 14 (should be between [0, 1])", seen in the
own-model browser test). app.py runs every page inside this context: on st.stop() the stale
fragments are dropped and the browser told to stop their timers, as Streamlit does itself for a
fragment's stale children.

**An upload that never starts.** `keep_file_url_responses()`: the browser asks the server where to
upload a chosen file (file_urls_request) and waits for the answer; the server puts the answer in the
session's outgoing queue, and a full script run that starts before the queue is sent clears it,
keeping only lifecycle messages. The answer was lost and the uploader waited forever with no upload
request (the own-model browser test: 45 MB of weights chosen while the home card's timing landed and
reran the page; in 1 of 3 tries no PUT was ever sent). The queue's clear keeps those answers here."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

_LOG = logging.getLogger(__name__)


def drop_stale_fragments() -> list[str]:
    """Forget the fragments registered by an earlier run and not by this one (a full run only);
    their ids. Streamlit's internals: a version without them leaves things as they are."""
    try:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
        ctx = get_script_run_ctx()
        if ctx is None or ctx.fragment_ids_this_run:  # outside a run, or a fragment's own rerun
            return []
        keep = frozenset(ctx.shared.new_fragment_ids.snapshot())
        storage = ctx.fragment_storage
        stale = [f for f in list(getattr(storage, "_fragments", {})) if f not in keep]
        storage.clear(new_fragment_ids=keep)
        if stale:
            msg = ForwardMsg()
            msg.stop_auto_rerun.fragment_ids.extend(stale)
            ctx.enqueue(msg)
        return stale
    except Exception as exc:  # an internal moved: st.stop() still stops
        _LOG.debug("stale fragments not dropped: %s", exc)
        return []


def keep_file_url_responses() -> bool:
    """Make the session queue's clear (at the start of each script run) keep the answers to upload
    requests, as it keeps lifecycle messages; idempotent. False when Streamlit's internals moved."""
    try:
        from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
    except ImportError:
        return False
    original = ForwardMsgQueue.clear
    if getattr(original, "keeps_file_urls", False):
        return True

    def clear(self, retain_lifecycle_msgs: bool = False, fragment_ids_this_run=None) -> None:
        kept = ([m for m in getattr(self, "_queue", []) if m.WhichOneof("type") == "file_urls_response"]
                if retain_lifecycle_msgs else [])  # flush() clears without retaining: it sends everything
        original(self, retain_lifecycle_msgs, fragment_ids_this_run)
        queue = getattr(self, "_queue", None)
        if kept and isinstance(queue, list):
            queue.extend(m for m in kept if not any(m is q for q in queue))

    clear.keeps_file_urls = True
    ForwardMsgQueue.clear = clear
    return True


@contextmanager
def fragments_dropped_on_stop() -> Iterator[None]:
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException
    try:
        yield
    except StopException:
        drop_stale_fragments()
        raise
