"""Share links: signed, listed, revocable; an altered, expired or revoked token opens nothing."""

import base64
import json
import time

import pytest

from compression import CompressionError, share
from compression.access import AccessDenied, User, acting_as
from compression.metrics import Metrics, Result
from compression.store import RunStore

M = Metrics(accuracy=0.9, accuracy_n=100, params=10, nonzero_params=5, size_bytes=40, macs=10.0,
            latency_ms=0.1, simulated=False)
VIEWER, ANA, BO, ADMIN = (User("v@example.com", "viewer"), User("ana@example.com", "editor"),
                          User("bo@example.com", "editor"), User("root@example.com", "admin"))


@pytest.fixture
def store(store_url, monkeypatch):
    monkeypatch.delenv("COMPRESSION_SECRET", raising=False)
    s = RunStore(store_url)
    for i in range(3):
        s.add(Result("mlp", "fashion-mnist", "prune", {"ratio": i / 10}, "cpu", M, M))
    return s


def _forge(token: str, **change) -> str:
    """The same token with its payload changed (the signature left as it was)."""
    payload, _, signature = token.partition(".")
    claims = {**json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))), **change}
    forged = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


def test_a_link_opens_its_runs_and_nothing_altered_opens(store):
    link = share.create(store, "story", [1, 2], hours=2, user=ANA, title="for the board")
    opened = share.open_link(store, link.token)
    assert (opened.view, opened.run_ids, opened.created_by, opened.status) == ("story", [1, 2], "ana@example.com", "active")
    assert opened.expires_at - time.time() == pytest.approx(2 * 3600, abs=5)
    for bad in (_forge(link.token, r=[1, 2, 3]), _forge(link.token, e=int(time.time()) + 10**6),
                _forge(link.token, v="compare"), link.token[:-2] + ("AA" if not link.token.endswith("AA") else "BB"),
                link.token.partition(".")[0], "", "garbage.garbage"):
        with pytest.raises(share.ShareRefused) as refused:
            share.open_link(store, bad)
        assert str(refused.value) == share.INVALID  # one line, nothing of the data


def test_expired_and_revoked_links_say_so_in_one_line(store, monkeypatch):
    link = share.create(store, "compare", [1, 3], hours=1, user=ANA)
    later = time.time() + 3601
    monkeypatch.setattr(share.time, "time", lambda: later)
    with pytest.raises(share.ShareRefused, match=r"^This share link expired on \d{4}-\d\d-\d\d \d\d:\d\d UTC"):
        share.open_link(store, link.token)
    monkeypatch.undo()
    other = share.create(store, "story", [2], hours=1, user=BO)
    with pytest.raises(AccessDenied, match="revoking share link .*belongs to bo@example.com.* needs the admin role"):
        share.revoke(store, other.id, user=ANA)
    assert share.open_link(store, other.token).run_ids == [2]  # the refused revoke changed nothing
    assert share.revoke(store, other.id, user=BO).status == "revoked"
    with pytest.raises(share.ShareRefused, match="^This share link was revoked"):
        share.open_link(store, other.token)
    listed = share.links(store, user=ADMIN)
    assert [(s.id, s.created_by, s.status, s.revoked_by) for s in listed] == [
        (other.id, "bo@example.com", "revoked", "bo@example.com"), (link.id, "ana@example.com", "active", None)]
    assert share.links(store, user=VIEWER) == []


def test_who_may_make_links_and_what_a_link_needs(store):
    with pytest.raises(AccessDenied, match="making a share link needs the editor role; you are v@example.com"):
        share.create(store, "story", [1], user=VIEWER)
    for args, named in ((("story", [99]), "no run 99"), (("compare", [1, 2, 3]), r"one run \(against its baseline\) or two"), (("table", [1]), "'table'"),
                        (("story", []), "at least one run")):
        with pytest.raises(CompressionError, match=named):
            share.create(store, *args, user=ANA)
    with pytest.raises(CompressionError, match="lifetime 0"):
        share.create(store, "story", [1], hours=0, user=ANA)
    with acting_as(ADMIN):
        assert share.create(store, "story", [1]).created_by == "root@example.com"


def test_a_new_server_secret_voids_every_link(store, monkeypatch):
    link = share.create(store, "story", [1], user=ANA)
    monkeypatch.setenv("COMPRESSION_SECRET", "rotated")
    with pytest.raises(share.ShareRefused):
        share.open_link(store, link.token)
    fresh = share.create(store, "story", [1], user=ANA)
    assert share.open_link(store, fresh.token).id == fresh.id
