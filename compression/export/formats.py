"""The export format registry: each format module registers what it writes, how its file is opened
in its own runtime, and what it refuses. The registry imports none of them (compression.export's
package imports the built-in ones, as torchvision.models' package imports its model modules)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from compression import CompressionError

if TYPE_CHECKING:
    from compression.export.source import Source


@dataclass
class Opened:
    """An exported file loaded in its own runtime."""
    run: Callable[[np.ndarray], list[np.ndarray]]    # (B, C, H, W) float32 -> outputs: the logits, or
    #                                                  every exit's logits (early exit), as numpy
    probe: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None  # module path -> its output,
    #                                                  for naming the first layer that diverges


@dataclass(frozen=True)
class ExportFormat:
    name: str                                        # what --format says: onnx, onnx-int8, pt2, safetensors
    suffix: str                                      # the file's ending: ".onnx", "-int8.onnx", ...
    title: str                                       # one line for the download menu
    runtime: str                                     # what the re-check loads it with, in words
    write: Callable[["Source", Path], dict]          # writes the file (and its sidecars); returns notes
    open: Callable[[Path, "Source"], Opened]         # the file loaded in its own runtime
    tolerance: str = "float"                         # float | int8 (compression.export.recheck.TOLERANCES)
    refuses: Callable[[dict, str], str | None] = lambda run, payload: None  # why a run (its dict, its
    #                                                  artifact's payload kind) cannot be exported so
    extra_files: Callable[[Path], list[Path]] = lambda path: []      # what is written beside the file


_FORMATS: dict[str, ExportFormat] = {}


def register_format(fmt: ExportFormat) -> ExportFormat:
    _FORMATS[fmt.name] = fmt
    return fmt


def format_names() -> list[str]:
    return list(_FORMATS)


def get_format(name: str) -> ExportFormat:
    if name not in _FORMATS:
        raise CompressionError(f"unknown export format {name!r}; choose one of {', '.join(_FORMATS)}")
    return _FORMATS[name]
