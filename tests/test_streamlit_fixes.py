"""ui.stop: a page that stops early (st.stop()) drops the fragments its previous run registered and
this run did not, and tells the browser to stop their timers; a stale polling fragment's rerun
otherwise drew into the old layout and the browser showed a white page."""

from types import SimpleNamespace

import pytest
from streamlit.runtime.fragment import MemoryFragmentStorage
from streamlit.runtime.scriptrunner_utils import script_run_context
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.runtime.scriptrunner_utils.thread_safe_set import ThreadSafeSet

from ui import streamlit_fixes as stop


def _ctx(monkeypatch, registered_now, fragment_ids_this_run=None):
    storage = MemoryFragmentStorage()
    for key in ("old-poll", "kept"):
        storage.register(key, lambda: None)
    now = ThreadSafeSet()
    for key in registered_now:
        now.check_and_add(key)
    sent = []
    ctx = SimpleNamespace(fragment_ids_this_run=fragment_ids_this_run, fragment_storage=storage,
                          shared=SimpleNamespace(new_fragment_ids=now), enqueue=sent.append)
    monkeypatch.setattr(script_run_context, "get_script_run_ctx", lambda *a, **k: ctx)
    return storage, sent


def test_a_full_run_that_stops_drops_the_fragments_it_did_not_register(monkeypatch):
    storage, sent = _ctx(monkeypatch, registered_now={"kept"})
    with pytest.raises(StopException), stop.fragments_dropped_on_stop():
        raise StopException()
    assert storage.contains("kept") and not storage.contains("old-poll")
    assert [list(m.stop_auto_rerun.fragment_ids) for m in sent] == [["old-poll"]]


def test_a_fragment_rerun_or_a_run_that_ends_normally_drops_nothing(monkeypatch):
    storage, sent = _ctx(monkeypatch, registered_now=set(), fragment_ids_this_run=["kept"])
    with pytest.raises(StopException), stop.fragments_dropped_on_stop():
        raise StopException()
    storage2, sent2 = _ctx(monkeypatch, registered_now=set())
    with stop.fragments_dropped_on_stop():
        pass
    for s in (storage, storage2):
        assert s.contains("kept") and s.contains("old-poll")
    assert sent == sent2 == []


def test_a_script_run_starting_keeps_the_answer_to_an_upload_request():
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
    assert stop.keep_file_url_responses() and stop.keep_file_url_responses()  # idempotent
    queue = ForwardMsgQueue()
    answer = ForwardMsg()
    answer.file_urls_response.response_id = "r1"
    answer.file_urls_response.file_urls.add(file_id="f", upload_url="/_stcore/upload_file/s/f")
    queue.enqueue(answer)
    status = ForwardMsg()
    status.session_status_changed.run_on_save = False
    queue.enqueue(status)
    queue.clear(retain_lifecycle_msgs=True)  # a full run starting (AppSession._clear_queue)
    kinds = [m.WhichOneof("type") for m in queue.flush()]
    assert kinds.count("file_urls_response") == 1 and "session_status_changed" in kinds
    assert queue.flush() == []  # sent once: flush's own clear keeps nothing
