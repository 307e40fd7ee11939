"""Run history in SQLite: every result, from the app and the CLI, survives restarts.

One connection per operation, WAL journal and a busy timeout, so several processes (and the
threads of one Streamlit server) can write at once without losing rows. The schema version is
kept in `PRAGMA user_version`; a newer file than this code understands is refused, not altered.
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

SCHEMA_VERSION = 1

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
    artifact_path TEXT                       -- downloadable compressed model, if kept
);
CREATE INDEX IF NOT EXISTS runs_model_dataset ON runs(model, dataset);
"""


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
            db.executescript(_SCHEMA)
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

    def add(self, result: Result, *, parent_id: int | None = None, artifact_path: str | None = None) -> int:
        """Store one result; returns its run id."""
        m = result.metrics
        row = {
            "created_at": time.time(), "model": result.model, "dataset": result.dataset,
            "method": result.method, "config": json.dumps(result.config, sort_keys=True, default=str),
            "device": result.device, "code_version": code_version(),
            **{k: getattr(m, k) for k in METRIC_KEYS},
            "baseline": json.dumps(result.baseline.to_dict()) if result.baseline else None,
            "extra": json.dumps(result.extra, default=str), "parent_id": parent_id,
            "artifact_path": artifact_path,
        }
        row["simulated"] = int(bool(row["simulated"]))
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self._connect() as db:
            return int(db.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", row).lastrowid)

    def runs(self, *, model: str | None = None, dataset: str | None = None,
             method: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored runs, newest first, as flat dicts (config, baseline and extra decoded)."""
        where, args = [], []
        for col, value in (("model", model), ("dataset", dataset), ("method", method)):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
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
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["simulated"] = bool(d["simulated"])
    for key in ("config", "extra"):
        d[key] = json.loads(d[key]) if d[key] else {}
    d["baseline"] = json.loads(d["baseline"]) if d["baseline"] else None
    return d
