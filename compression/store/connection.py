"""The store's connection to its database: the engine, one transaction at a time, errors as one
line (an unreadable SQLite file, an unreachable PostgreSQL), and the schema brought up to date
once when a store is opened (compression.store.schema.migrate)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from compression import CompressionError
from compression.store.schema import engine_for, migrate, shown, sqlite_file, store_url

_migrated: set[str] = set()  # PostgreSQL stores this process has brought to the current schema


class StoreUnreachable(CompressionError):
    """The database server did not answer (down, restarting, network)."""


class StoreUnavailable(StoreUnreachable):
    """Unreachable past the retries: the run was kept in the local spool."""


def retry_seconds() -> float:
    """How long a write waits for an unreachable PostgreSQL: $COMPRESSION_STORE_RETRY_S, default 30."""
    text_ = os.environ.get("COMPRESSION_STORE_RETRY_S", "").strip()
    try:
        value = float(text_) if text_ else 30.0
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise CompressionError(f"COMPRESSION_STORE_RETRY_S={text_!r} out of range: seconds in [0, 3600]")
    return value


class StoreConnection:
    """What RunStore stands on: its URL, engine, transactions and errors."""

    def __init__(self, path: Path | str | None = None):
        env = os.environ.get("COMPRESSION_STORE", "").strip()
        if isinstance(path, str) and env and path == shown(store_url(env)):
            path = env  # a URL shown without its password (store.path): the configured one
        self.url = store_url(path)
        file = sqlite_file(self.url)
        self.dialect = "sqlite" if file is not None else "postgresql"
        # a Path for SQLite (as always); for PostgreSQL the URL without its password
        self.path: Any = file if file is not None else shown(self.url)
        self.where = str(self.path)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
        self.engine = engine_for(self.url)
        if self.url not in _migrated:
            with self._errors(opening=True):
                migrate(self.engine, self.where)
            if file is None:
                _migrated.add(self.url)
        self._opened()

    def _opened(self) -> None:
        """Called once the schema is current (RunStore writes its spool here)."""

    # ---- connections and errors ---------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, opening: bool = False) -> Iterator[None]:
        try:
            yield
        except CompressionError:
            raise
        except (SQLAlchemyError, sqlite3.DatabaseError) as exc:
            raise self._error(exc, opening) from None

    def _error(self, exc: Exception, opening: bool) -> CompressionError:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        detail = detail[0][:200] if detail else type(exc).__name__
        if self.dialect == "postgresql":
            from sqlalchemy.exc import InterfaceError, OperationalError
            if isinstance(exc, (OperationalError, InterfaceError)):
                return StoreUnreachable(f"run store {self.where} unreachable ({detail})")
        elif opening or "not a database" in detail or "malformed" in detail:
            return CompressionError(f"{self.where}: run store unreadable ({detail}); move it aside to start a new one")
        return CompressionError(f"{self.where}: run store error ({detail})")

    @contextlib.contextmanager
    def batch(self) -> Iterator["StoreConnection"]:
        """Many adds in one transaction, committed together (seeding a benchmark's thousands of
        runs): this thread's operations on this instance share it until the block ends."""
        with self._errors():
            with self.engine.connect() as conn:
                conn = conn.execution_options(immediate=True)
                with conn.begin():
                    self._batch = (threading.get_ident(), conn)
                    try:
                        yield self
                    finally:
                        self._batch = None

    @contextlib.contextmanager
    def _tx(self, *, immediate: bool = False):
        """One transaction: committed on success, rolled back on error. `immediate`: SQLite takes
        the write lock at the start (read then write without losing a concurrent change)."""
        batch = getattr(self, "_batch", None)
        if batch is not None and batch[0] == threading.get_ident():
            yield batch[1]
            return
        with self._errors():
            with self.engine.connect() as conn:
                if immediate:
                    conn = conn.execution_options(immediate=True)
                with conn.begin():
                    yield conn

    def _insert_stmt(self, table):
        return (sqlite_insert if self.dialect == "sqlite" else pg_insert)(table)

