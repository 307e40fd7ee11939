"""RunStore: every result, from the app and the CLI, kept in SQLite or PostgreSQL.

SQLite (the default, runs.sqlite in the data folder): a connection per operation, WAL journal and
a busy timeout, so several processes (and the threads of one Streamlit server) write at once
without losing rows. PostgreSQL (`COMPRESSION_STORE=postgresql://...`): a pool per process whose
connections are checked before use, so a restarted server is reconnected to. A result is written
with bounded retries while PostgreSQL is unreachable; past them it goes to a local spool that the
next RunStore on that store writes (compression.store.spool). Each run has a uid: a retried write
whose first commit went through is kept once.

Runs are kept on purpose: each can be named, tagged, starred (the runs a reviewer follows) or
hidden (left out of every list unless asked for), and deleted with its predictions and its
artifact file. Runs made together (one sweep, search, budget search or pipeline) share a
`group_id` such as "sweep:1a2b3c4d" or "search:mlp-60k" (`new_group_id`). Each run has an owner
(who made it); what the acting user may change is checked here (compression.access).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select, text, update

from compression import CompressionError, access
from compression.metrics import METRIC_KEYS, Result
from compression.run_labels import artifact_file, check_name, check_tag, check_tags
from compression.store import spool
from compression.store.connection import StoreConnection, StoreUnavailable, StoreUnreachable, retry_seconds
from compression.store.schema import predictions, runs
from compression.store.version import code_version

__all__ = ["RunStore", "StoreUnavailable", "StoreUnreachable", "retry_seconds"]


class RunStore(StoreConnection):
    """Runs kept in SQLite or PostgreSQL: RunStore() opens the configured store ($COMPRESSION_STORE,
    else runs.sqlite in the data folder); RunStore(path or URL) another."""

    def _opened(self) -> None:
        self._replay_spool()

    # ---- adding runs -------------------------------------------------------------------------------
    def add(self, result: Result, *, parent_id: int | None = None, artifact_path: str | None = None,
            group: str | None = None, name: str | None = None, tags=None, starred: bool = False) -> int:
        """Store one result; returns its run id. `group`: the group id of the sweep, search or
        pipeline that made it (new_group_id); `name`, `tags`, `starred` as `update` takes them.
        The acting user (compression.access) needs the editor role and becomes the run's owner."""
        user = access.require("store runs")
        m = result.metrics
        row = {
            "created_at": time.time(), "model": result.model, "dataset": result.dataset,
            "method": result.method, "config": json.dumps(result.config, sort_keys=True, default=str),
            "device": result.device, "code_version": code_version(),
            **{k: getattr(m, k) for k in METRIC_KEYS},
            "baseline": json.dumps(result.baseline.to_dict()) if result.baseline else None,
            "extra": json.dumps(result.extra, default=str), "parent_id": parent_id,
            "artifact_path": artifact_path, "group_id": group,
            "name": check_name(name) if name is not None else None,
            "tags": json.dumps(check_tags(tags)) if tags else None, "starred": int(bool(starred)),
            "owner": user.name, "uid": uuid.uuid4().hex,
        }
        row["simulated"] = int(bool(row["simulated"]))
        preds = getattr(result, "predictions", None)
        return self._write(row, None if preds is None else (preds.n, preds.to_bytes()))

    def _write(self, row: dict[str, Any], preds: tuple[int, bytes] | None) -> int:
        """Insert with bounded retries while PostgreSQL is unreachable, then spool."""
        deadline, delay = time.monotonic() + retry_seconds(), 0.25
        while True:
            try:
                with self._tx() as conn:  # one transaction: the run and its predictions together
                    return self._insert(conn, row, preds)
            except StoreUnreachable as exc:
                if time.monotonic() + delay > deadline:
                    kept = spool.put(self.where, row, preds)
                    raise StoreUnavailable(f"{exc}; the run is kept in {kept} and written when the store is "
                                           "next opened") from None
                time.sleep(delay)
                delay = min(2 * delay, 4.0)

    def _insert(self, conn, row: dict[str, Any], preds: tuple[int, bytes] | None) -> int:
        stmt = self._insert_stmt(runs).values(**row).on_conflict_do_nothing(index_elements=[runs.c.uid])
        new_id = conn.execute(stmt.returning(runs.c.id)).scalar()
        if new_id is None:  # kept already: a retry whose first commit went through, a replayed spool
            return int(conn.execute(select(runs.c.id).where(runs.c.uid == row["uid"])).scalar_one())
        if preds is not None:
            conn.execute(predictions.insert().values(run_id=new_id, n=preds[0], data=preds[1]))
        return int(new_id)

    def _replay_spool(self) -> None:
        for path, row, preds in spool.pending(self.where):
            try:
                with self._tx() as conn:
                    self._insert(conn, row, preds)
            except StoreUnreachable:
                return
            path.unlink(missing_ok=True)

    def predictions(self, run_id: int):
        """The run's per-image Predictions, or None when none were stored (runs from before they
        were kept: compression.compare.missing_predictions_reason says which)."""
        from compression.predictions import Predictions
        with self._tx() as conn:
            data = conn.execute(select(predictions.c.data).where(predictions.c.run_id == int(run_id))).scalar()
        return Predictions.from_bytes(bytes(data)) if data is not None else None

    def add_predictions(self, run_id: int, preds) -> None:
        """Keep predictions for a run that had none (re-evaluated from its artifact: derived data,
        any user who may compare may add them)."""
        values = {"run_id": int(run_id), "n": preds.n, "data": preds.to_bytes()}
        stmt = self._insert_stmt(predictions).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=[predictions.c.run_id], set_={"n": values["n"], "data": values["data"]})
        with self._tx() as conn:
            conn.execute(stmt)

    # ---- reading -------------------------------------------------------------------------------------
    def runs(self, *, model: str | None = None, dataset: str | None = None,
             method: str | None = None, limit: int | None = None, tag: str | None = None,
             starred: bool | None = None, group: str | None = None, owner: str | None = None,
             include_hidden: bool = False, kept: bool = False) -> list[dict[str, Any]]:
        """Stored runs, newest first, as flat dicts (config, baseline, extra and tags decoded).
        Hidden runs are left out unless `include_hidden`; `starred` True / False keeps only the
        starred / the others; `tag` only the runs with that tag; `group` one group's runs; `owner`
        the runs one person made; `kept` only the starred or named runs that have an artifact."""
        q = select(runs)
        for col, value in ((runs.c.model, model), (runs.c.dataset, dataset), (runs.c.method, method),
                           (runs.c.group_id, group), (runs.c.owner, owner)):
            if value is not None:
                q = q.where(col == value)
        if tag is not None:
            if self.dialect == "sqlite":
                q = q.where(text("EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE json_each.value = :tag)")
                            .bindparams(tag=tag.strip()))
            else:
                q = q.where(text("CAST(runs.tags AS jsonb) @> CAST(:tag AS jsonb)")
                            .bindparams(tag=json.dumps([tag.strip()])))
        if starred is not None:
            q = q.where(runs.c.starred == int(bool(starred)))
        if kept:
            q = q.where(((runs.c.starred == 1) | ((runs.c.name.is_not(None)) & (runs.c.name != "")))
                        & runs.c.artifact_path.is_not(None))
        if not include_hidden:
            q = q.where(runs.c.hidden == 0)
        q = q.order_by(runs.c.id.desc())
        if limit is not None:
            q = q.limit(int(limit))
        with self._tx() as conn:
            rows = conn.execute(q).mappings().all()
        return [_decode(r) for r in rows]

    def get(self, run_id: int) -> dict[str, Any] | None:
        with self._tx() as conn:
            row = conn.execute(select(runs).where(runs.c.id == _key(run_id))).mappings().first()
        return _decode(row) if row else None

    def count(self) -> int:
        """Every stored run, hidden ones included."""
        with self._tx() as conn:
            return int(conn.execute(select(func.count()).select_from(runs)).scalar())

    def owners(self, *, dataset: str | None = None) -> list[str]:
        """Everyone who made a run (of the dataset), sorted."""
        q = select(runs.c.owner).distinct()
        if dataset is not None:
            q = q.where(runs.c.dataset == dataset)
        with self._tx() as conn:
            return sorted(str(o) for o in conn.execute(q).scalars())

    def revision(self) -> tuple[int, int, int]:
        """(runs, newest id, updates and deletes so far): changes whenever what runs() returns
        can change, so a cache of the runs keyed by it is never stale."""
        with self._tx() as conn:
            n, newest = conn.execute(text("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM runs")).one()
            changes = conn.execute(text("SELECT value FROM meta WHERE key = 'changes'")).scalar()
        return int(n), int(newest), int(changes or 0)

    # ---- changing runs -------------------------------------------------------------------------------
    @staticmethod
    def _changed(conn) -> None:
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('changes', 1) "
                          "ON CONFLICT (key) DO UPDATE SET value = meta.value + 1"))

    def _row(self, conn, run_id: Any, *, lock: bool = False) -> dict[str, Any]:
        q = select(runs).where(runs.c.id == _key(run_id))
        row = conn.execute(q.with_for_update() if lock else q).mappings().first()
        if row is None:
            raise CompressionError(f"no run {run_id!r} in {self.where}")
        return dict(row)

    def update(self, run_id: int, *, name: str | None = None, tags=None, starred: bool | None = None,
               hidden: bool | None = None) -> dict[str, Any]:
        """Change what the user keeps about a run; None leaves a field as it is, name="" clears
        the name, `tags` replaces the list. Returns the run as runs() gives it. Refused with the
        bad value named: an unknown run id, a name too long or on several lines, a tag that is
        empty, has a comma or is too long; and refused (one line, the role needed) when the acting
        user may not: starring needs an editor, the rest the run's owner (an editor) or an admin."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check_name(name)
        if tags is not None:
            changes["tags"] = json.dumps(check_tags(tags)) if list(tags) else None
        for key, flag in (("starred", starred), ("hidden", hidden)):
            if flag is not None:
                if not isinstance(flag, (bool, int)) or isinstance(flag, int) and flag not in (0, 1):
                    raise CompressionError(f"{key} is true or false, got {flag!r}")
                changes[key] = int(bool(flag))
        with self._tx(immediate=True) as conn:
            row = self._row(conn, run_id, lock=True)
            if set(changes) - {"starred"}:
                verb = "hiding" if "hidden" in changes else "renaming" if "name" in changes else "tagging"
                access.require("manage", owner=row["owner"], what=f"{verb} run {row['id']}")
            elif changes:
                access.require("star runs", what=f"starring run {row['id']}")
            if changes:
                conn.execute(update(runs).where(runs.c.id == row["id"]).values(**changes))
                self._changed(conn)
                row = self._row(conn, row["id"])
        return _decode(row)

    def tag(self, run_id: int, *tags: str) -> dict[str, Any]:
        """Add tags to a run (those it has already are kept once); returns the run."""
        return self._retag(run_id, add=[check_tag(t) for t in tags])

    def untag(self, run_id: int, *tags: str) -> dict[str, Any]:
        """Remove tags from a run; a tag it does not have is refused (naming it)."""
        return self._retag(run_id, remove=[t.strip() for t in tags])

    def _retag(self, run_id: int, *, add=(), remove=()) -> dict[str, Any]:
        with self._tx(immediate=True) as conn:  # read and write in one transaction: no tag lost to a concurrent change
            row = self._row(conn, run_id, lock=True)
            access.require("manage", owner=row["owner"], what=f"tagging run {row['id']}")
            tags = _tags(row["tags"])
            for t in remove:
                if t not in tags:
                    raise CompressionError(f"run {row['id']} has no tag {t!r} (its tags: {', '.join(tags) or 'none'})")
            tags = check_tags([t for t in tags if t not in remove] + list(add))
            conn.execute(update(runs).where(runs.c.id == row["id"]).values(tags=json.dumps(tags) if tags else None))
            self._changed(conn)
            return _decode(self._row(conn, row["id"]))

    def tags(self, *, dataset: str | None = None, include_hidden: bool = False) -> list[str]:
        """Every tag in use (on the dataset's runs), sorted."""
        if self.dialect == "sqlite":
            sql = "SELECT DISTINCT json_each.value FROM runs, json_each(runs.tags) WHERE runs.tags IS NOT NULL"
        else:
            sql = "SELECT DISTINCT jsonb_array_elements_text(CAST(runs.tags AS jsonb)) FROM runs WHERE runs.tags IS NOT NULL"
        args: dict[str, Any] = {}
        if dataset is not None:
            sql += " AND dataset = :dataset"
            args["dataset"] = dataset
        if not include_hidden:
            sql += " AND hidden = 0"
        with self._tx() as conn:
            return sorted(str(r[0]) for r in conn.execute(text(sql), args))

    def delete(self, run_id: int) -> dict[str, Any]:
        """Remove a run, its predictions and its artifact file, and detach the runs that named it
        as their parent (their parent_id becomes NULL). The file is removed only when it lies
        under the app's data folder (or $COMPRESSION_ARTIFACTS) and no other run keeps it: a file
        of the user's elsewhere is never touched. Returns the deleted run (as runs() gives it) with
        "detached" (child run ids) and "artifact_removed" (True / False). The run's owner (an
        editor) or an admin may delete it."""
        with self._tx(immediate=True) as conn:
            row = self._row(conn, run_id, lock=True)
            key = row["id"]
            access.require("manage", owner=row["owner"], what=f"deleting run {key}")
            children = [int(i) for i in conn.execute(select(runs.c.id).where(runs.c.parent_id == key)).scalars()]
            conn.execute(update(runs).where(runs.c.parent_id == key).values(parent_id=None))
            conn.execute(sql_delete(predictions).where(predictions.c.run_id == key))
            conn.execute(sql_delete(runs).where(runs.c.id == key))
            shared = row["artifact_path"] is not None and conn.execute(
                select(runs.c.id).where(runs.c.artifact_path == row["artifact_path"]).limit(1)).first() is not None
            self._changed(conn)
        out = _decode(row)
        file = None if shared else self._owned_artifact(row["artifact_path"])
        removed = False
        if file is not None:
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
                removed = True
        from compression.export.source import exports_dir  # its exported files and re-check reports:
        exports = exports_dir(key)                         # a later run given the same id must not show them
        had_exports = exports.is_dir()
        if had_exports:
            shutil.rmtree(exports, ignore_errors=True)
        return {**out, "detached": children, "artifact_removed": removed,
                "exports_removed": had_exports and not exports.exists()}

    def _owned_artifact(self, path: str | None) -> Path | None:
        """The artifact file if it is the app's to remove: under the data folder or the artifacts
        folder, and not the store itself."""
        from compression.methods import artifact_dir
        from compression.paths import home_dir
        if not path:
            return None
        found = artifact_file(path)
        if found is None:
            return None
        p = found.resolve()
        if isinstance(self.path, Path):
            own = {Path(str(self.path.resolve()) + suffix) for suffix in ("", "-wal", "-shm", "-journal")}
            if p in own:
                return None
        return p if any(p.is_relative_to(d.resolve()) for d in (home_dir(), artifact_dir())) else None


def _key(run_id: Any) -> int:
    try:
        return int(run_id)
    except (TypeError, ValueError):
        raise CompressionError(f"run id {run_id!r} is not a number") from None


def _tags(text_: str | None) -> list[str]:
    return [str(t) for t in json.loads(text_)] if text_ else []


def _decode(row) -> dict[str, Any]:
    d = dict(row)
    d.pop("uid", None)
    d["simulated"] = bool(d["simulated"])
    d["tags"] = _tags(d.get("tags"))
    d["starred"], d["hidden"] = bool(d.get("starred")), bool(d.get("hidden"))
    d["owner"] = d.get("owner") or access.LOCAL
    for key in ("config", "extra"):
        d[key] = json.loads(d[key]) if d[key] else {}
    d["baseline"] = json.loads(d["baseline"]) if d["baseline"] else None
    return d
