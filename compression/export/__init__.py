"""Export a compressed model for deployment, and re-check the file in its own runtime.

The project's artifact container (compression.artifact) stays the stored format; from it a run is
exported as

    onnx          ONNX, opset 17, dynamic batch: the model as it runs (ONNX Runtime re-checks it)
    onnx-int8     int8 QDQ ONNX for 8-bit results: ONNX Runtime's int8 kernels
    pt2           a torch.export program: torch.export.load(path).module(), no code of ours
    safetensors   the state_dict + a JSON sidecar whose snippet rebuilds the model

Every file carries the input contract {mean, std, input_size, channels, classes} (ONNX metadata_props
"input_contract", the .pt2's extra file input_contract.json, the safetensors header and sidecar),
and every export is re-checked at once: the file loaded in its own runtime, run on the run's test
images against its stored predictions (compression.export.recheck).

    report = export_run(12, "onnx", "cnn.onnx")     # report["recheck"]["agreement"], ["ok"], ...

Formats register themselves (compression.export.formats); this package imports the built-in ones.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from compression import CompressionError
from compression.export import onnx_float, onnx_int8, program, safetensors_file  # noqa: F401  (register)
from compression.export.formats import ExportFormat, format_names, get_format, register_format
from compression.export.notes import weights_note
from compression.export.recheck import TOLERANCES, recheck
from compression.export.source import (Source, contract_of, download_name, exports_dir, source_of, source_of_preview,
                                       source_of_run)

FORMATS = tuple(format_names())

__all__ = ["FORMATS", "TOLERANCES", "ExportFormat", "Source", "contract_of", "download_name", "export", "export_run",
           "exports_dir", "format_names", "get_format", "offered", "recheck", "register_format", "saved_reports",
           "source_of", "source_of_preview", "source_of_run"]


def _report_path(source: Source, fmt: str) -> Path:
    return exports_dir(source.run_id, source.blob) / f"report-{fmt}.json"


def export(source: Source, fmt: str, out: str | Path | None = None, *, timing: bool = True,
           progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None) -> dict:
    """Write `source` as `fmt` to `out` (default: the app's exports folder, where the report is kept
    too) and re-check the file; the report (JSON-able)."""
    f = get_format(fmt)
    why = f.refuses(source.run, source.payload)
    if why:
        raise CompressionError(f"{source.label()}: {why}")
    path = Path(out) if out is not None else exports_dir(source.run_id, source.blob) / download_name(source.run, f.suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    (progress or (lambda e: None))({"phase": f"writing the {fmt} file", "done": 0, "total": source.images})
    started = time.perf_counter()
    notes = f.write(source, path)
    report: dict[str, Any] = {
        "run_id": source.run_id, "model": source.run["model"], "method": source.run["method"], "format": fmt,
        "file": str(path), "files": [str(p) for p in f.extra_files(path)], "size_bytes": path.stat().st_size,
        "title": f.title, "weights": weights_note(source, fmt), "input_contract": source.contract.to_json(),
        "notes": notes, "export_seconds": time.perf_counter() - started}
    report["recheck"] = recheck(source, f, path, timing=timing, progress=progress, should_stop=should_stop)
    report["ok"] = bool(report["recheck"]["ok"])
    report["warning"] = report["recheck"].get("warning")
    if out is None:
        _report_path(source, fmt).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return report


def export_run(run_id: int, fmt: str, out: str | Path | None = None, *, store: Any = None, **kwargs) -> dict:
    """Export a stored run (see `export`); a run whose artifact file is gone fails in one line."""
    return export(source_of_run(run_id, store=store), fmt, out, **kwargs)


def offered(run: dict, payload: str) -> dict[str, str | None]:
    """Format -> why it is not offered for this run (None: offered); `payload` is its artifact's kind."""
    return {name: get_format(name).refuses(run, payload) for name in format_names()}


def saved_reports(run_id: int | None, blob: bytes | None = None) -> dict[str, dict]:
    """Format -> the report of the file exported into the app's exports folder (for a stored run, or
    a preview's artifact bytes), while the file is there."""
    found = {}
    folder = exports_dir(run_id, blob)
    for name in format_names():
        path = folder / f"report-{name}.json"
        if path.is_file():
            try:
                report = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue
            if Path(report.get("file", "")).is_file():
                found[name] = report
    return found
