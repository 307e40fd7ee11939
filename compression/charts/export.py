"""The explorer's CSV: every shown run as one row, numbers rounded to what they mean (accuracy in %
with 2 decimals, ratios to 3 significant digits, latency in ms to the microsecond), times in ISO
8601 UTC, the whole config as JSON, and what the user keeps about each run (name, tags, star, group)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Sequence

import pandas as pd

from compression.charts.format import run_changes
from compression.honesty import sanity_flag
from compression.charts.story import sig
from compression.run_labels import describe


def iso_utc(unix: float) -> str:
    """2026-12-02T08:10:00Z."""
    return dt.datetime.fromtimestamp(float(unix), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _round_or_none(v, digits: int):
    return None if v is None or v != v else round(float(v), digits)


def _int_or_none(v):
    return None if v is None or v != v else int(v)


def csv_frame(df: pd.DataFrame, frontier: Sequence[int] = ()) -> pd.DataFrame:
    """The explorer's frame (explorer_frame rows) as the downloadable table."""
    on = set(int(i) for i in frontier)
    rows = []
    for r in df.to_dict("records"):
        base = r["baseline"] if isinstance(r.get("baseline"), dict) else {}
        created = r["created"].timestamp() if hasattr(r.get("created"), "timestamp") else r["created_at"]

        changes = run_changes(r)

        def times(key):  # the ratio the words beside it say; None where no ratio is given
            c = changes.get(key)
            return sig(c.ratio) if c is not None and c.ratio is not None else None

        def words(key):
            c = changes.get(key)
            return c.text if c is not None else ""
        rows.append({
            "run": int(r["id"]), "name": r.get("name") or "", "tags": ",".join(r.get("tags") or []),
            "starred": bool(r.get("starred")), "hidden": bool(r.get("hidden")), "group": r.get("group_id") or "",
            "created (UTC)": iso_utc(created), "model": r["model"], "dataset": r["dataset"], "method": r["method"],
            "description": describe(r["method"], r["config"]),  # what it did, as every view says it
            "config (JSON)": json.dumps(r["config"], sort_keys=True, default=str),
            "accuracy (%)": round(r["accuracy"] * 100, 2),
            "95% CI low (%)": round(r["ci_low"] * 100, 2), "95% CI high (%)": round(r["ci_high"] * 100, 2),
            "test images": int(r["accuracy_n"]), "warning": sanity_flag(r),
            "accuracy change (points)": round((r["accuracy"] - base["accuracy"]) * 100, 2)
            if base.get("accuracy") is not None else None,
            "stored size (bytes)": int(r["size_bytes"]), "x smaller than baseline": times("size_bytes"),
            "size vs baseline": words("size_bytes"),
            "params": int(r["params"]), "nonzero params": int(r["nonzero_params"]),
            "MACs / image": int(round(r["macs"])), "x fewer MACs": times("macs"),
            "latency (ms)": round(float(r["latency_ms"]), 3),
            "baseline latency (ms)": _round_or_none(r.get("baseline_latency_ms"), 3),
            "x faster (batch 1)": times("latency_ms"), "latency vs baseline": words("latency_ms"),
            "device": r["device"], "simulated": bool(r["simulated"]), "on frontier": int(r["id"]) in on,
            "parent run": _int_or_none(r.get("parent_id")),
        })
    out = pd.DataFrame(rows)
    if not out.empty:
        out["parent run"] = out["parent run"].astype("Int64")  # 12, not 12.0
    return out
