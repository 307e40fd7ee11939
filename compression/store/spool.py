"""A local spool for runs the store could not take: PostgreSQL stayed down past the retries.

Each run is one JSON file in $COMPRESSION_HOME/spool/ (its row, its predictions, the store it was
meant for, without the password); the next RunStore opened on that store writes them and removes
the files. Every run carries its uid, so a run written both directly (a commit whose answer was
lost) and from the spool is kept once.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any, Iterator


def spool_dir() -> Path:
    from compression.paths import home_dir
    return home_dir() / "spool"


def put(where: str, row: dict[str, Any], predictions: tuple[int, bytes] | None) -> Path:
    """Keep one run for `where` (the store's URL without password); returns the file."""
    folder = spool_dir()
    folder.mkdir(parents=True, exist_ok=True)
    record = {"store": where, "row": row,
              "predictions": None if predictions is None else
              {"n": predictions[0], "data": base64.b64encode(predictions[1]).decode()}}
    path = folder / f"{row['uid']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a file
    return path


def pending(where: str) -> Iterator[tuple[Path, dict[str, Any], tuple[int, bytes] | None]]:
    """The spooled runs meant for `where`, oldest first."""
    folder = spool_dir()
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # another process is writing or removing it
        if record.get("store") != where:
            continue
        preds = record.get("predictions")
        yield path, record["row"], None if preds is None else (int(preds["n"]), base64.b64decode(preds["data"]))


def count(where: str) -> int:
    return sum(1 for _ in pending(where))
