"""Shared fixtures. Every test session gets its own app data folder (run store, caches) and no
network: downloads are disabled so a missing dataset fails fast instead of hanging."""

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_HOME = tempfile.mkdtemp(prefix="compression-test-home-")
os.environ["COMPRESSION_HOME"] = _HOME
os.environ["COMPRESSION_OFFLINE"] = "1"
os.environ.setdefault("COMPRESSION_DEVICE", "cpu")  # tests assert CPU-exact numbers


@pytest.fixture(scope="session")
def fmnist():
    from compression.data import load_dataset
    return load_dataset("fashion-mnist")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh, empty app data folder for one test."""
    monkeypatch.setenv("COMPRESSION_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
