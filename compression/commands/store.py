"""python -m compression store migrate [--store URL] [--json]
   python -m compression store copy --from URL --to URL [--json]

`migrate` brings a store to this code's schema (servers do it themselves at start, once, under a
lock; run it by hand before a deploy to see what changed). `copy` moves a history from one store
to another, e.g. `--from sqlite:///.compression/runs.sqlite --to postgresql://USER@HOST/DB`: one line
per run (its id in both stores and its checksum), then the counts and a checksum of the whole
history; every run is read back from the target and checked. Stores are a file path,
sqlite:///FILE or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (default $COMPRESSION_STORE)."""

from __future__ import annotations

from compression import CompressionError


def register(subs) -> None:
    p = subs.add_parser("store", help="the run store: migrate its schema, copy a history to another store")
    which = p.add_subparsers(dest="store_command", metavar="{migrate,copy}")
    which.required = True
    m = which.add_parser("migrate", help="bring a store to this code's schema (once, under a lock)")
    m.add_argument("--store", default=None, help="the store (default: $COMPRESSION_STORE, else runs.sqlite in "
                                                 "the data folder)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(run=migrate)
    c = which.add_parser("copy", help="copy every run (predictions, names, tags, owners, share links) to "
                                      "another store, checksummed")
    c.add_argument("--from", dest="source", required=True, help="the store to copy from (left unchanged)")
    c.add_argument("--to", dest="target", required=True, help="the store to copy to (created or migrated)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=copy)


def migrate(args):
    from sqlalchemy.exc import SQLAlchemyError

    from compression.store import RunStore, shown, store_url
    from compression.store.schema import engine_for, migrate as run_migration, sqlite_file
    url = store_url(args.store)
    file = sqlite_file(url)
    where = str(file) if file is not None else shown(url)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    try:
        before, after = run_migration(engine_for(url), where)
    except SQLAlchemyError as exc:
        raise CompressionError(f"store migrate: {where}: {str(getattr(exc, 'orig', exc)).splitlines()[0]}") from None
    store = RunStore(url)
    if store.dialect == "postgresql":  # the search studies' tables too (Optuna's), under the same lock
        from compression.store.optuna import study_storage_url
        study_storage_url(url)
    yield {"store": store.where, "schema_before": before, "schema": after, "runs": store.count(),
           "changed": before != after}


def copy(args):
    from compression.store import RunStore
    from compression.store.copy import copy_store
    source, target = RunStore(_existing(args.source)), RunStore(args.target)
    yield from copy_store(source, target)


def _existing(where: str) -> str:
    """--from must name a store that exists (a mistyped file would be created empty)."""
    from compression.store.schema import sqlite_file, store_url
    file = sqlite_file(store_url(where))
    if file is not None and not file.is_file():
        raise CompressionError(f"store copy: --from {where!r}: no such file")
    return where
