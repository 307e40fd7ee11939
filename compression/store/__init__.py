"""The run store: one API (RunStore) over SQLite, the embedded default (runs.sqlite in the data
folder), or PostgreSQL (`COMPRESSION_STORE=postgresql://USER@HOST/DATABASE`, several app servers
and CLIs sharing one history), through SQLAlchemy 2 and psycopg 3.

    schema      the tables, engines, schema versions and the migration lock
    connection  transactions, one-line errors, the schema brought up to date at open
    runs        RunStore: add, read, name, tag, star, hide, delete runs (owners and roles checked)
    spool       runs kept locally while PostgreSQL is down, written by the next start
    copy        `store copy`: a history moved from one store to another, every run checksummed
"""

from compression.store.runs import RunStore, StoreUnavailable, StoreUnreachable, retry_seconds
from compression.store.schema import SCHEMA_VERSION, default_path, shown, store_url
from compression.store.version import code_version, file_sha256

__all__ = ["RunStore", "StoreUnavailable", "StoreUnreachable", "SCHEMA_VERSION", "default_path", "store_url",
           "shown", "code_version", "file_sha256", "retry_seconds"]
