"""Where search studies live: beside the runs on a PostgreSQL store (Optuna's RDB storage on the same
database), else search.sqlite in the data folder."""

from __future__ import annotations

import os

from sqlalchemy import text

from compression.store.schema import LOCK_KEY, engine_for, sqlite_file, store_url

_prepared: set[str] = set()


def study_storage_url(configured: str | None = None) -> str:
    """The Optuna storage URL for the store `configured` (default $COMPRESSION_STORE)."""
    configured = (configured if configured is not None else os.environ.get("COMPRESSION_STORE", "")).strip()
    url = store_url(configured) if configured else None
    if url is None or sqlite_file(url) is not None:
        from compression.paths import home_dir
        return f"sqlite:///{home_dir() / 'search.sqlite'}"
    if url not in _prepared:
        _create_optuna_tables(url)
        _prepared.add(url)
    return url


def _create_optuna_tables(url: str) -> None:
    """Optuna creates its tables on first use; two servers doing that at once race (Optuna #1092).
    Here it happens once, under the store's migration lock."""
    import optuna
    engine = engine_for(url)
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        optuna.storages.RDBStorage(url).remove_session()
