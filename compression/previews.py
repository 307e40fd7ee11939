"""Previews: measured results that are shown but not stored until someone keeps them.

A slider move on a page (a pruning ratio without fine-tuning, a bit width, a conversion before
recovery) measures a real result, but nobody chose to keep it; storing every one filled the run
store with points nobody wanted (chance-level ones among them). A preview is the result with its
artifact bytes and per-image predictions as plain values (so a page can cache it); `keep` stores it
the way every other run is stored (compression.methods.save_run: the artifact file under the data
folder, the run row, its predictions).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from compression import CompressionError


def to_preview(result, artifact: bytes) -> dict[str, Any]:
    """A Result and its artifact as plain values: {"result": flat dict for display, "artifact":
    bytes, "record": what `keep` needs, "key": a digest of what was done}."""
    preds = getattr(result, "predictions", None)
    record = {"model": result.model, "dataset": result.dataset, "method": result.method,
              "config": result.config, "device": result.device, "metrics": result.metrics.to_dict(),
              "baseline": result.baseline.to_dict() if result.baseline else None,
              "extra": {k: v for k, v in result.extra.items() if k not in ("run_id", "artifact")},
              "predictions": preds.to_bytes() if preds is not None else None}
    return {"result": {k: v for k, v in result.to_dict().items() if k not in ("run_id", "artifact")},
            "artifact": artifact, "record": record, "key": preview_key(record)}


def preview_key(record: dict[str, Any]) -> str:
    """What was done (model, dataset, method, config, device, and the runtime latency was timed on
    when it is not eager): the same key for the same preview."""
    what = {k: record[k] for k in ("model", "dataset", "method", "config", "device")}
    runtime = (record.get("extra") or {}).get("runtime", "eager")
    if runtime != "eager":  # eager previews keep the keys they always had
        what["runtime"] = runtime
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def result_of(preview: dict[str, Any]):
    """The Result a preview was made from (predictions included)."""
    from compression.metrics import Metrics, Result
    from compression.predictions import Predictions
    try:
        r = preview["record"]
        return Result(model=r["model"], dataset=r["dataset"], method=r["method"], config=dict(r["config"]),
                      device=r["device"], metrics=Metrics.from_dict(r["metrics"]),
                      baseline=Metrics.from_dict(r["baseline"]) if r["baseline"] else None,
                      extra=dict(r["extra"]),
                      predictions=Predictions.from_bytes(r["predictions"]) if r["predictions"] else None)
    except (KeyError, TypeError) as exc:
        raise CompressionError(f"not a preview (missing {exc})") from None


def keep(preview: dict[str, Any], *, store: Any = True, **kwargs) -> int:
    """Store the preview as a run with its artifact file; returns the run id. Keyword arguments go to
    compression.methods.save_run (parent_id, out_dir)."""
    from compression.methods import save_run
    if not isinstance(preview.get("artifact"), (bytes, bytearray)):
        raise CompressionError("this preview has no artifact bytes to keep")
    return save_run(result_of(preview), bytes(preview["artifact"]), store=store, **kwargs)
