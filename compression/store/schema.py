"""The run store's tables, its engines (SQLite file or PostgreSQL server) and its migrations.

One schema for both databases, written with SQLAlchemy Core. The version lives in SQLite's
`PRAGMA user_version` (as files written before PostgreSQL was supported keep it) and in the
`meta` table's "schema_version" row on PostgreSQL. Migrations run once, at open, under a lock:
SQLite's write lock (BEGIN IMMEDIATE), PostgreSQL's transaction-level advisory lock, so several
servers that start at once do not race (the bug of Optuna #1092 and MLflow #19299): one creates
and upgrades, the others wait and then find the current version. A store newer than this code is
refused, not altered.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy import (BigInteger, Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, Table, Text,
                        create_engine, event, inspect, text)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from compression import CompressionError

# 2: per-image predictions beside each run; 3: name, tags, starred, hidden, group_id;
# 4: owner and uid (a run written twice by a retry or a spool replay is kept once) on runs,
#    share links, settings (the share links' server secret)
SCHEMA_VERSION = 4
LOCK_KEY = 0x636F6D70  # "comp": the advisory lock every server takes to migrate

ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite: INTEGER PRIMARY KEY is the rowid
metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),        # unix time
    Column("model", Text, nullable=False),
    Column("dataset", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("config", Text, nullable=False),             # JSON
    Column("device", Text, nullable=False),
    Column("code_version", Text, nullable=False),
    Column("accuracy", Float, nullable=False),
    Column("accuracy_n", BigInteger, nullable=False),
    Column("params", BigInteger, nullable=False),
    Column("nonzero_params", BigInteger, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("macs", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("simulated", Integer, nullable=False),
    Column("baseline", Text),                           # JSON of the same metric keys
    Column("extra", Text, nullable=False),              # JSON: method-specific details
    Column("parent_id", ID, ForeignKey("runs.id")),     # previous step of a pipeline
    Column("artifact_path", Text),                      # downloadable compressed model, if kept
    Column("name", Text),                               # what the user called it (schema 3)
    Column("tags", Text),                               # JSON list of tags
    Column("starred", Integer, nullable=False, server_default="0"),  # the story view's runs
    Column("hidden", Integer, nullable=False, server_default="0"),   # left out of every list unless asked for
    Column("group_id", Text),                           # the sweep / search / pipeline that made it
    Column("owner", Text, nullable=False, server_default="local"),   # who made it (schema 4)
    Column("uid", Text),                                # unique per run: a retried write is kept once
    sqlite_autoincrement=True,
)
Index("runs_model_dataset", runs.c.model, runs.c.dataset)
Index("runs_group", runs.c.group_id)
Index("runs_uid", runs.c.uid, unique=True)

predictions = Table(
    "predictions", metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True, autoincrement=False),
    Column("n", Integer, nullable=False),               # test images, the first n of the split
    Column("data", LargeBinary, nullable=False),        # compression.predictions: class + top-1 probability
)

meta = Table(
    "meta", metadata,
    Column("key", Text, primary_key=True),
    Column("value", BigInteger, nullable=False),        # "changes": bumped by every update and delete
)

settings = Table(
    "settings", metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),              # "share_secret" (hex) when COMPRESSION_SECRET is unset
)

shares = Table(
    "shares", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("view", Text, nullable=False),               # "story" | "compare"
    Column("run_ids", Text, nullable=False),            # JSON list
    Column("title", Text),
    Column("revoked_at", Float),
    Column("revoked_by", Text),
    sqlite_autoincrement=True,
)

# columns added to an older runs table (SQLite and PostgreSQL add a column at a time)
_ADDED_COLUMNS = {"name": "TEXT", "tags": "TEXT", "starred": "INTEGER NOT NULL DEFAULT 0",
                  "hidden": "INTEGER NOT NULL DEFAULT 0", "group_id": "TEXT",
                  "owner": "TEXT NOT NULL DEFAULT 'local'", "uid": "TEXT"}


# ---------------------------------------------------------------------------------------------
# where the store is

def default_path() -> Path:
    from compression.paths import home_dir
    return home_dir() / "runs.sqlite"


def store_url(where: Path | str | None = None) -> str:
    """The SQLAlchemy URL of a store: `where` (a file path, sqlite:///FILE or postgresql://...), else
    $COMPRESSION_STORE, else runs.sqlite in the data folder. postgresql:// means psycopg 3."""
    if where is None:
        where = os.environ.get("COMPRESSION_STORE", "").strip() or default_path()
    text_ = str(where)
    if isinstance(where, Path) or "://" not in text_:
        return f"sqlite:///{Path(text_)}"
    scheme = text_.split("://", 1)[0]
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return "postgresql+psycopg://" + text_.split("://", 1)[1]
    if scheme == "sqlite":
        return text_
    raise CompressionError(f"run store {shown(text_)!r}: not understood; use a file path, sqlite:///FILE or "
                           "postgresql://USER@HOST/DATABASE")


def shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        u = make_url(url)
    except Exception:
        return url.split("@")[-1]
    if u.drivername == "postgresql+psycopg":
        u = u.set(drivername="postgresql")
    return u.render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


# ---------------------------------------------------------------------------------------------
# engines: one per URL and process (a forked child makes its own)

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(url: str) -> Engine:
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _make_engine(url)
        return engine


def _forget_engines() -> None:
    for engine in _engines.values():
        engine.dispose(close=False)  # the parent's connections stay the parent's
    _engines.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_engines)


def _make_engine(url: str) -> Engine:
    file = sqlite_file(url)
    if file is None:  # PostgreSQL: a pool whose connections are checked before use (a restarted server)
        return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8,
                             connect_args={"connect_timeout": 5, "application_name": "compression-explorer"})
    # SQLite: a connection per operation (as before: closing checkpoints the WAL, a replaced file is seen)
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30.0})

    @event.listens_for(engine, "connect")
    def _connect(dbapi, _record):
        dbapi.isolation_level = None  # transactions begin where we say (below), as BEGIN or BEGIN IMMEDIATE
        _wal(dbapi)
        dbapi.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN")
    return engine


def _wal(dbapi, tries: int = 60) -> None:
    """Switch a new SQLite file to WAL. Switching needs the file to itself, and SQLite answers "database
    is locked" at once (its busy timeout does not cover it) while another process creates or migrates
    the store: wait for that one (servers starting together), up to about 30 s."""
    import sqlite3
    import time
    for attempt in range(tries):
        try:
            if str(dbapi.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            dbapi.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.5)


# ---------------------------------------------------------------------------------------------
# versions and migrations

def read_version(conn) -> int:
    if conn.dialect.name == "sqlite":
        return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if not inspect(conn).has_table("meta"):
        return 0
    value = conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
    return int(value or 0)


def _write_version(conn, version: int) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
    else:
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('schema_version', :v) "
                          "ON CONFLICT (key) DO UPDATE SET value = :v"), {"v": version})


def migrate(engine: Engine, where: str) -> tuple[int, int]:
    """Bring the store to SCHEMA_VERSION once, under the lock; returns (version before, after).
    Refuses a store newer than this code."""
    with engine.connect() as conn:
        conn = conn.execution_options(immediate=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
            before = read_version(conn)
            if before > SCHEMA_VERSION:
                raise CompressionError(f"{where}: run store schema {before} is newer than this code "
                                       f"({SCHEMA_VERSION}); upgrade the app")
            if before == SCHEMA_VERSION:
                return before, before  # another server migrated it while this one waited for the lock
            metadata.create_all(conn, checkfirst=True)  # new tables (and every table of a new store)
            have = {c["name"] for c in inspect(conn).get_columns("runs")}
            for col, decl in _ADDED_COLUMNS.items():
                if col not in have:
                    conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {col} {decl}")
            for index in runs.indexes:
                index.create(conn, checkfirst=True)
            _write_version(conn, SCHEMA_VERSION)
    return before, SCHEMA_VERSION
