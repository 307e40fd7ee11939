"""The five compression families, by package name, and the one call that imports them.

Registries never import their clients (STYLE.md, "Registries point one way"): a family registers
what it brings when it is imported (its methods with compression.methods, the payload it writes
with compression.artifact). A registry that must be complete before a lookup (loading any artifact
file) calls `load_families()`, which imports the packages by the names below. This module imports
nothing of the project itself, so no registry depends on a family at import time and no import
circle runs through a registry.
"""

from __future__ import annotations

import importlib

FAMILIES = ("pruning", "distillation", "quantization", "architecture", "dynamic")


def load_families() -> None:
    """Import every family package (each registers itself; a no-op after the first call)."""
    for name in FAMILIES:
        importlib.import_module(f"compression.{name}")
