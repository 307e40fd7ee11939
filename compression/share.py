"""Share links for reviews: a signed token that opens the story view of some runs (or a comparison
of two) read-only, without signing in, and nothing else.

A token is `<payload>.<signature>`: the payload (base64url JSON) names the link's number, its view,
its run ids and its expiry; the signature is HMAC-SHA256 over it with the server secret
($COMPRESSION_SECRET, else one kept in the store's settings table, made once: every app server on
one store shares it). Each link is also a row of the store's `shares` table (who made it, when, for
which runs, until when, revoked or not), so links are listed and can be revoked. An altered,
expired or revoked token is refused with one line and nothing of the data.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from compression import CompressionError, access
from compression.store.schema import settings, shares

VIEWS = ("story", "compare")
MAX_HOURS = 24 * 90  # a link lives at most 90 days
INVALID = "This share link is not valid (altered or incomplete): ask its sender for a new one."


class ShareRefused(CompressionError):
    """A token that opens nothing (one line, no data)."""


@dataclass(frozen=True)
class Share:
    id: int
    view: str                  # story | compare
    run_ids: list[int]
    expires_at: float
    created_by: str
    created_at: float
    title: str | None = None
    revoked_at: float | None = None
    revoked_by: str | None = None
    token: str = ""            # only when just made (create)

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= time.time() else "active"


def _secret(store) -> bytes:
    configured = os.environ.get("COMPRESSION_SECRET", "")
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    with store._tx() as conn:
        value = conn.execute(select(settings.c.value).where(settings.c.key == "share_secret")).scalar()
        if value is None:  # made once; a server racing here keeps the first one written
            stmt = store._insert_stmt(settings).values(key="share_secret", value=secrets.token_hex(32))
            conn.execute(stmt.on_conflict_do_nothing(index_elements=[settings.c.key]))
            value = conn.execute(select(settings.c.value).where(settings.c.key == "share_secret")).scalar()
    return bytes.fromhex(value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(store, payload: str) -> str:
    return _b64(hmac.new(_secret(store), payload.encode(), hashlib.sha256).digest())


def create(store, view: str, run_ids, *, hours: float = 72, title: str | None = None,
           user: access.User | None = None) -> Share:
    """Make a link to `view` of the runs (editors and admins); returns the Share with its token."""
    user = access.require("share", user=user)
    if view not in VIEWS:
        raise CompressionError(f"share view {view!r}: expected one of {', '.join(VIEWS)}")
    ids = [int(i) for i in run_ids]
    if not ids or (view == "compare" and len(ids) > 2):
        raise CompressionError(f"a {view} link needs " + ("one run (against its baseline) or two" if view == "compare"
                                                          else "at least one run") + f", got {ids}")
    if not 0 < hours <= MAX_HOURS:
        raise CompressionError(f"share link lifetime {hours!r} hours: expected more than 0 and at most {MAX_HOURS}")
    missing = [i for i in ids if store.get(i) is None]
    if missing:
        raise CompressionError(f"no run {missing[0]} in {store.where}")
    now = time.time()
    expires = float(int(now + hours * 3600))
    with store._tx() as conn:
        share_id = int(conn.execute(shares.insert().values(
            created_at=now, created_by=user.name, expires_at=expires, view=view, run_ids=json.dumps(ids),
            title=(title or "").strip()[:120] or None).returning(shares.c.id)).scalar_one())
    payload = _b64(json.dumps({"i": share_id, "v": view, "r": ids, "e": int(expires)}, separators=(",", ":")).encode())
    return Share(share_id, view, ids, expires, user.name, now, title, token=f"{payload}.{_sign(store, payload)}")


def open_link(store, token: str) -> Share:
    """The Share a token opens, or ShareRefused with one line (altered, expired, revoked)."""
    payload, _, signature = (token or "").strip().partition(".")
    if not payload or not signature or not hmac.compare_digest(signature, _sign(store, payload)):
        raise ShareRefused(INVALID)
    try:
        claims = json.loads(_unb64(payload))
        share_id, view, ids, expires = int(claims["i"]), str(claims["v"]), [int(i) for i in claims["r"]], float(claims["e"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ShareRefused(INVALID) from None
    row = _row(store, share_id)
    if row is None or row.view != view or row.run_ids != ids or int(row.expires_at) != int(expires):
        raise ShareRefused(INVALID)
    if row.revoked_at is not None:
        raise ShareRefused("This share link was revoked by its sender: ask them for a new one.")
    if row.expires_at <= time.time():
        when = dt.datetime.fromtimestamp(row.expires_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        raise ShareRefused(f"This share link expired on {when}: ask its sender for a new one.")
    return row


def _row(store, share_id: int) -> Share | None:
    with store._tx() as conn:
        r = conn.execute(select(shares).where(shares.c.id == share_id)).mappings().first()
    return None if r is None else _share(r)


def _share(r: Any) -> Share:
    return Share(int(r["id"]), r["view"], [int(i) for i in json.loads(r["run_ids"])], float(r["expires_at"]),
                 r["created_by"], float(r["created_at"]), r["title"], r["revoked_at"], r["revoked_by"])


def links(store, *, user: access.User | None = None) -> list[Share]:
    """Every link, newest first, for the users who may make links (viewers see none)."""
    if not access.allowed("share", user=user):
        return []
    with store._tx() as conn:
        rows = conn.execute(select(shares).order_by(shares.c.id.desc())).mappings().all()
    return [_share(r) for r in rows]


def revoke(store, share_id: int, *, user: access.User | None = None) -> Share:
    """Revoke a link: its maker (an editor) or an admin. Revoking twice is harmless."""
    row = _row(store, int(share_id))
    if row is None:
        raise CompressionError(f"no share link {share_id} in {store.where}")
    user = access.require("manage", owner=row.created_by, what=f"revoking share link {share_id}", user=user)
    if row.revoked_at is None:
        with store._tx() as conn:
            conn.execute(update(shares).where(shares.c.id == row.id).values(revoked_at=time.time(), revoked_by=user.name))
    return _row(store, row.id)
