"""`store copy`: move a run history from one store to another (a laptop's runs.sqlite to the team's
PostgreSQL), nothing lost, and prove it: each run's checksum is computed on the source, the run is
written with its predictions, read back from the target and checksummed again.

A run's checksum is the SHA-256 of its content as runs() returns it (every column but the id, its
parent's id and the internal uid: those are the store's own numbering) plus its predictions. Ids are
kept when the target has no runs yet; otherwise new ids are given and parent links follow them.
Copying again writes nothing twice (each run keeps a uid: the source's, or one derived from it).
Share links and the share secret come along, so links made before still open.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator

from sqlalchemy import select, text

from compression import CompressionError
from compression.store.runs import RunStore, _decode
from compression.store.schema import predictions, runs, settings, shares

BATCH = 500


def run_checksum(row: dict[str, Any], preds: bytes | None) -> str:
    """SHA-256 of a run's content (a runs() row, or a raw row: decoded here) and its predictions."""
    d = _decode(row) if isinstance(row.get("config"), str) else dict(row)
    for key in ("id", "parent_id", "uid"):
        d.pop(key, None)
    h = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode())
    h.update(b"\x00" + (hashlib.sha256(preds).digest() if preds is not None else b"none"))
    return h.hexdigest()


def _raw_batches(store: RunStore) -> Iterator[list[tuple[dict, bytes | None]]]:
    last = 0
    while True:
        with store._tx() as conn:
            rows = [dict(r) for r in conn.execute(select(runs).where(runs.c.id > last).order_by(runs.c.id)
                                                  .limit(BATCH)).mappings()]
            if not rows:
                return
            ids = [r["id"] for r in rows]
            preds = {i: (int(n), bytes(data)) for i, n, data in conn.execute(
                select(predictions.c.run_id, predictions.c.n, predictions.c.data).where(predictions.c.run_id.in_(ids)))}
        yield [(r, preds.get(r["id"])) for r in rows]
        last = ids[-1]


def copy_store(source: RunStore, target: RunStore) -> Iterator[dict[str, Any]]:
    """Yield one line per run ({"run_id", "to", "sha256", "copied"}) and then the summary
    ({"runs", "copied", "already", "predictions", "shares", "checksum", "verified"})."""
    if source.url == target.url:
        raise CompressionError(f"store copy: --from and --to are the same store ({source.where})")
    keep_ids = target.count() == 0
    mapping: dict[int, int] = {}
    sums: dict[int, str] = {}
    copied = already = n_preds = dangling = 0
    for batch in _raw_batches(source):
        lines = []
        with target._tx() as conn:
            for row, preds in batch:
                checksum = run_checksum(row, preds and preds[1])
                new = dict(row)
                new["uid"] = row.get("uid") or f"copy-{row['id']}-{checksum[:24]}"
                new["owner"] = row.get("owner") or "local"
                if row["parent_id"] is not None and row["parent_id"] not in mapping:
                    dangling += 1  # its parent was deleted before deletes detached children
                new["parent_id"] = mapping.get(row["parent_id"])
                if not keep_ids:
                    new.pop("id")
                exists = conn.execute(select(runs.c.id).where(runs.c.uid == new["uid"])).scalar()
                to = int(exists) if exists is not None else target._insert(conn, new, preds)
                mapping[row["id"]] = to
                copied += exists is None
                already += exists is not None
                n_preds += preds is not None
                sums[row["id"]] = checksum
                lines.append({"run_id": row["id"], "to": to, "sha256": checksum, "copied": exists is None})
            if copied:
                target._changed(conn)
        yield from lines
    n_shares = _copy_shares(source, target, mapping)
    if keep_ids and target.dialect == "postgresql":
        with target._tx() as conn:  # explicit ids: the sequence continues after the highest
            conn.execute(text("SELECT setval(pg_get_serial_sequence('runs', 'id'), COALESCE(MAX(id), 1)) FROM runs"))
    _verify(target, mapping, sums)
    yield {"runs": len(sums), "copied": copied, "already": already, "predictions": n_preds, "shares": n_shares,
           "dangling_parents": dangling, "checksum": hashlib.sha256("".join(sums.values()).encode()).hexdigest(),
           "verified": True, "from": source.where, "to": target.where}


def _verify(target: RunStore, mapping: dict[int, int], sums: dict[int, str]) -> None:
    """Read every run back from the target: the source's checksum, or the copy failed."""
    back = {v: k for k, v in mapping.items()}
    for batch in _raw_batches(target):
        for row, preds in batch:
            src_id = back.get(row["id"])
            if src_id is not None and run_checksum(row, preds and preds[1]) != sums[src_id]:
                raise CompressionError(f"store copy: run {src_id} reads back differently from {target.where} "
                                       f"(as run {row['id']}); the source is unchanged")


def _copy_shares(source: RunStore, target: RunStore, mapping: dict[int, int]) -> int:
    with source._tx() as conn:
        rows = [dict(r) for r in conn.execute(select(shares).order_by(shares.c.id)).mappings()]
        secret = conn.execute(select(settings.c.value).where(settings.c.key == "share_secret")).scalar()
    n = 0
    with target._tx() as conn:
        if secret is not None and conn.execute(select(settings.c.value).where(settings.c.key == "share_secret")).scalar() is None:
            conn.execute(settings.insert().values(key="share_secret", value=secret))
        for row in rows:
            ids = [mapping.get(i) for i in json.loads(row["run_ids"])]
            if None in ids:
                continue
            taken = conn.execute(select(shares.c.id).where(shares.c.id == row["id"])).scalar() is not None
            if taken:
                continue  # copied before (or the target's own link under that number)
            conn.execute(shares.insert().values(**{**row, "run_ids": json.dumps(ids)}))
            n += 1
        if n and target.dialect == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('shares', 'id'), COALESCE(MAX(id), 1)) FROM shares"))
    return n
