"""python -m compression export RUN_ID --format onnx|onnx-int8|pt2|safetensors [--out FILE] [--no-timing] [--json]

Writes a stored run's model (a pipeline's final step included: its run id) as a file that runs
without this project, then re-checks the file in its own runtime on the run's test images:
accuracy, agreement with the run's stored predictions, the largest logit difference, the file's
bytes and its batch-1 / batch-256 latency there. A file past the tolerance is still written, and
the command ends with exit status 2 and a one-line warning naming the first diverging layer.
Without --out the file goes to the app's exports folder ($COMPRESSION_HOME/exports/run-ID/)."""

from __future__ import annotations

from compression import CompressionError
from compression.cli import int_range


def register(subs) -> None:
    from compression.export import format_names
    p = subs.add_parser("export", help="export a stored run as ONNX, int8 ONNX, a torch.export program or "
                                       "safetensors, and re-check the file in its own runtime")
    p.add_argument("run_id", type=int_range(1), help="a run id (python -m compression runs)")
    p.add_argument("--format", choices=format_names(), default="onnx", help="what to write (default: onnx)")
    p.add_argument("--out", default=None, help="the file to write (default: the app's exports folder)")
    p.add_argument("--no-timing", action="store_true", help="re-check accuracy and agreement only, no latency")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(run=run)


def summary(report: dict) -> dict:
    """The report as one readable line's fields."""
    rc = report["recheck"]
    lat = rc.get("latency_ms") or {}
    out = {"run": report["run_id"], "format": report["format"], "file": report["file"],
           "bytes": f"{report['size_bytes']:,}", "weights": report["weights"],
           "re-checked": f"{rc['runtime']} on {rc['images']:,} test images",
           "file_accuracy": f"{rc['accuracy'] * 100:.2f} % (run {rc['run_accuracy'] * 100:.2f} %)",
           "agreement": f"{rc['agreement'] * 100:.2f} % with {rc['reference']}",
           "max_logit_diff": f"{rc['max_logit_diff']:.3g}"}
    if lat:
        out["latency"] = ", ".join(f"{k.replace('_', ' ')} {v:.3f} ms" for k, v in lat.items())
    out["verdict"] = "ok" if report["ok"] else "DOES NOT MATCH"
    return out


def run(args):
    from compression.export import export_run
    report = export_run(args.run_id, args.format, args.out, timing=not args.no_timing)
    yield report if args.json else summary(report)
    if not report["ok"]:
        raise CompressionError(report["warning"])
