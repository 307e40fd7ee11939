"""Where things live: the app's data folder and the committed assets."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
MODELS_DIR = ASSETS_DIR / "models"  # zoo checkpoints (<name>.pt) and model cards (<name>.json)


def home_dir() -> Path:
    """The app's data folder: $COMPRESSION_HOME, default ./.compression (run store, caches)."""
    path = Path(os.environ.get("COMPRESSION_HOME") or ".compression")
    path.mkdir(parents=True, exist_ok=True)
    return path
