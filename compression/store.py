"""Run history in SQLite: every result, from the app and the CLI, survives restarts.

One connection per operation, WAL journal and a busy timeout, so several processes (and the
threads of one Streamlit server) can write at once without losing rows. The schema version is
kept in `PRAGMA user_version`; an older file is upgraded in place, a newer file than this code
understands is refused, not altered.

Runs are kept on purpose: each can be named, tagged, starred (the runs a reviewer follows) or
hidden (left out of every list unless asked for), and deleted with its predictions and its
artifact file. Runs made together (one sweep, search, budget search or pipeline) share a
`group_id` such as "sweep:1a2b3c4d" or "search:mlp-60k" (`new_group_id`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

from compression import CompressionError, __version__
from compression.metrics import METRIC_KEYS, Result
from compression.paths import REPO_ROOT, home_dir
from compression.run_labels import artifact_file, check_name, check_tag, check_tags

# 2: per-image predictions beside each run; 3: name, tags, starred, hidden, group_id (older files
# are upgraded in place: the new table by CREATE IF NOT EXISTS, the new columns by ALTER TABLE)
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at    REAL    NOT NULL,          -- unix time
    model         TEXT    NOT NULL,
    dataset       TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    config        TEXT    NOT NULL,          -- JSON
    device        TEXT    NOT NULL,
    code_version  TEXT    NOT NULL,
    accuracy      REAL    NOT NULL,
    accuracy_n    INTEGER NOT NULL,
    params        INTEGER NOT NULL,
    nonzero_params INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    macs          REAL    NOT NULL,
    latency_ms    REAL    NOT NULL,
    simulated     INTEGER NOT NULL,
    baseline      TEXT,                      -- JSON of the same metric keys
    extra         TEXT    NOT NULL,          -- JSON: method-specific details
    parent_id     INTEGER REFERENCES runs(id),  -- previous step of a pipeline
    artifact_path TEXT,                      -- downloadable compressed model, if kept
    name          TEXT,                      -- what the user called it (schema 3)
    tags          TEXT,                      -- JSON list of tags
    starred       INTEGER NOT NULL DEFAULT 0,  -- kept on purpose: the story view's runs
    hidden        INTEGER NOT NULL DEFAULT 0,  -- left out of every list unless asked for
    group_id      TEXT                       -- the sweep / search / pipeline that made it
);
CREATE INDEX IF NOT EXISTS runs_model_dataset ON runs(model, dataset);
CREATE TABLE IF NOT EXISTS predictions (
    run_id        INTEGER PRIMARY KEY REFERENCES runs(id),
    n             INTEGER NOT NULL,          -- test images, the first n of the split
    data          BLOB    NOT NULL           -- compression.predictions: class + top-1 probability per image
);
CREATE TABLE IF NOT EXISTS meta (
    key           TEXT PRIMARY KEY,
    value         INTEGER NOT NULL           -- "changes": bumped by every update and delete
);
"""
# schema 3's columns, added to an older file's runs table (SQLite adds a column at a time)
_V3_COLUMNS = {"name": "TEXT", "tags": "TEXT", "starred": "INTEGER NOT NULL DEFAULT 0",
               "hidden": "INTEGER NOT NULL DEFAULT 0", "group_id": "TEXT"}
def default_path() -> Path:
    return home_dir() / "runs.sqlite"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit when run from a checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class RunStore:
    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise CompressionError(
                    f"{self.path}: run store schema {version} is newer than this code ({SCHEMA_VERSION}); upgrade the app")
            if version < SCHEMA_VERSION:
                self._upgrade(db)

    def _upgrade(self, db: sqlite3.Connection) -> None:
        """Create what is missing and add schema 3's columns to an older runs table, in one
        transaction that holds the write lock (two processes opening an old file: one upgrades)."""
        db.execute("BEGIN IMMEDIATE")
        if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return  # another process upgraded it while this one waited for the lock
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        have = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
        for col, decl in _V3_COLUMNS.items():
            if col not in have:
                db.execute(f"ALTER TABLE runs ADD COLUMN {col} {decl}")
        db.execute("CREATE INDEX IF NOT EXISTS runs_group ON runs(group_id)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            raise CompressionError(f"{self.path}: run store unreadable ({exc}); move it aside to start a new one") from None
        db.row_factory = sqlite3.Row
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except sqlite3.DatabaseError as exc:
            raise CompressionError(f"{self.path}: run store error ({exc})") from None
        finally:
            db.close()

    def add(self, result: Result, *, parent_id: int | None = None, artifact_path: str | None = None,
            group: str | None = None, name: str | None = None, tags=None, starred: bool = False) -> int:
        """Store one result; returns its run id. `group`: the group id of the sweep, search or
        pipeline that made it (new_group_id); `name`, `tags`, `starred` as `update` takes them."""
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
        }
        row["simulated"] = int(bool(row["simulated"]))
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        preds = getattr(result, "predictions", None)
        with self._connect() as db:  # one transaction: the run and its predictions together
            run_id = int(db.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", row).lastrowid)
            if preds is not None:
                db.execute("INSERT INTO predictions (run_id, n, data) VALUES (?, ?, ?)",
                           (run_id, preds.n, preds.to_bytes()))
            return run_id

    def predictions(self, run_id: int):
        """The run's per-image Predictions, or None when none were stored (runs from before they
        were kept: compression.compare.missing_predictions_reason says which)."""
        from compression.predictions import Predictions
        with self._connect() as db:
            row = db.execute("SELECT data FROM predictions WHERE run_id = ?", (run_id,)).fetchone()
        return Predictions.from_bytes(bytes(row[0])) if row else None

    def add_predictions(self, run_id: int, predictions) -> None:
        """Keep predictions for a run that had none (re-evaluated from its artifact)."""
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO predictions (run_id, n, data) VALUES (?, ?, ?)",
                       (run_id, predictions.n, predictions.to_bytes()))

    def runs(self, *, model: str | None = None, dataset: str | None = None,
             method: str | None = None, limit: int | None = None, tag: str | None = None,
             starred: bool | None = None, group: str | None = None,
             include_hidden: bool = False) -> list[dict[str, Any]]:
        """Stored runs, newest first, as flat dicts (config, baseline, extra and tags decoded).
        Hidden runs are left out unless `include_hidden`; `starred` True / False keeps only the
        starred / the others; `tag` only the runs with that tag; `group` one group's runs."""
        where, args = [], []
        for col, value in (("model", model), ("dataset", dataset), ("method", method), ("group_id", group)):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE json_each.value = ?)")
            args.append(tag.strip())
        if starred is not None:
            where.append("starred = ?")
            args.append(int(bool(starred)))
        if not include_hidden:
            where.append("hidden = 0")
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as db:
            rows = db.execute(sql, args).fetchall()
        return [_decode(r) for r in rows]

    def get(self, run_id: int) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _decode(row) if row else None

    def count(self) -> int:
        """Every stored run, hidden ones included."""
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def revision(self) -> tuple[int, int, int]:
        """(runs, newest id, updates and deletes so far): changes whenever what runs() returns
        can change, so a cache of the runs keyed by it is never stale."""
        with self._connect() as db:
            n, newest = db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM runs").fetchone()
            row = db.execute("SELECT value FROM meta WHERE key = 'changes'").fetchone()
        return int(n), int(newest), int(row[0]) if row else 0

    @staticmethod
    def _changed(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO meta (key, value) VALUES ('changes', 1) "
                   "ON CONFLICT(key) DO UPDATE SET value = value + 1")

    def _row(self, db: sqlite3.Connection, run_id: Any) -> sqlite3.Row:
        try:
            key = int(run_id)
        except (TypeError, ValueError):
            raise CompressionError(f"run id {run_id!r} is not a number") from None
        row = db.execute("SELECT * FROM runs WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise CompressionError(f"no run {run_id!r} in {self.path}")
        return row

    def update(self, run_id: int, *, name: str | None = None, tags=None, starred: bool | None = None,
               hidden: bool | None = None) -> dict[str, Any]:
        """Change what the user keeps about a run; None leaves a field as it is, name="" clears
        the name, `tags` replaces the list. Returns the run as runs() gives it. Refused with the
        bad value named: an unknown run id, a name too long or on several lines, a tag that is
        empty, has a comma or is too long."""
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
        with self._connect() as db:
            row = self._row(db, run_id)
            if changes:
                sets = ", ".join(f"{k} = :{k}" for k in changes)
                db.execute(f"UPDATE runs SET {sets} WHERE id = :id", {**changes, "id": row["id"]})
                self._changed(db)
                row = db.execute("SELECT * FROM runs WHERE id = ?", (row["id"],)).fetchone()
        return _decode(row)

    def tag(self, run_id: int, *tags: str) -> dict[str, Any]:
        """Add tags to a run (those it has already are kept once); returns the run."""
        return self._retag(run_id, add=[check_tag(t) for t in tags])

    def untag(self, run_id: int, *tags: str) -> dict[str, Any]:
        """Remove tags from a run; a tag it does not have is refused (naming it)."""
        return self._retag(run_id, remove=[t.strip() for t in tags])

    def _retag(self, run_id: int, *, add=(), remove=()) -> dict[str, Any]:
        with self._connect() as db:  # read and write in one transaction: no tag lost to a concurrent change
            db.execute("BEGIN IMMEDIATE")
            row = self._row(db, run_id)
            tags = _tags(row["tags"])
            for t in remove:
                if t not in tags:
                    raise CompressionError(f"run {row['id']} has no tag {t!r} (its tags: {', '.join(tags) or 'none'})")
            tags = check_tags([t for t in tags if t not in remove] + list(add))
            db.execute("UPDATE runs SET tags = ? WHERE id = ?", (json.dumps(tags) if tags else None, row["id"]))
            self._changed(db)
            return _decode(db.execute("SELECT * FROM runs WHERE id = ?", (row["id"],)).fetchone())

    def tags(self, *, dataset: str | None = None, include_hidden: bool = False) -> list[str]:
        """Every tag in use (on the dataset's runs), sorted."""
        sql = "SELECT DISTINCT json_each.value FROM runs, json_each(runs.tags) WHERE runs.tags IS NOT NULL"
        args: list[Any] = []
        if dataset is not None:
            sql += " AND dataset = ?"
            args.append(dataset)
        if not include_hidden:
            sql += " AND hidden = 0"
        with self._connect() as db:
            return sorted(str(r[0]) for r in db.execute(sql, args))

    def delete(self, run_id: int) -> dict[str, Any]:
        """Remove a run, its predictions and its artifact file, and detach the runs that named it
        as their parent (their parent_id becomes NULL). The file is removed only when it lies
        under the app's data folder (compression.paths.home_dir()) and no other run keeps it: a
        file of the user's elsewhere is never touched. Returns the deleted run (as runs() gives
        it) with "detached" (child run ids) and "artifact_removed" (True / False)."""
        with self._connect() as db:
            row = self._row(db, run_id)
            key = row["id"]
            children = [int(r[0]) for r in db.execute("SELECT id FROM runs WHERE parent_id = ?", (key,))]
            db.execute("UPDATE runs SET parent_id = NULL WHERE parent_id = ?", (key,))
            db.execute("DELETE FROM predictions WHERE run_id = ?", (key,))
            db.execute("DELETE FROM runs WHERE id = ?", (key,))
            shared = row["artifact_path"] is not None and db.execute(
                "SELECT 1 FROM runs WHERE artifact_path = ? LIMIT 1", (row["artifact_path"],)).fetchone() is not None
            self._changed(db)
        out = _decode(row)
        file = None if shared else self._owned_artifact(row["artifact_path"])
        removed = False
        if file is not None:
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
                removed = True
        return {**out, "detached": children, "artifact_removed": removed}

    def _owned_artifact(self, path: str | None) -> Path | None:
        """The artifact file if it is the app's to remove: under the data folder, not the store."""
        if not path:
            return None
        found = artifact_file(path)
        if found is None:
            return None
        p, home = found.resolve(), home_dir().resolve()
        own = {Path(str(self.path.resolve()) + suffix) for suffix in ("", "-wal", "-shm", "-journal")}
        return None if p in own or not p.is_relative_to(home) else p


def _tags(text: str | None) -> list[str]:
    return [str(t) for t in json.loads(text)] if text else []


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["simulated"] = bool(d["simulated"])
    d["tags"] = _tags(d.get("tags"))
    d["starred"], d["hidden"] = bool(d.get("starred")), bool(d.get("hidden"))
    for key in ("config", "extra"):
        d[key] = json.loads(d[key]) if d[key] else {}
    d["baseline"] = json.loads(d["baseline"]) if d["baseline"] else None
    return d
