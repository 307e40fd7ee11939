"""Export + re-check (compression.export): every file loaded in its own runtime and run on the test
images, against the run's stored predictions.

Parts: `zoo` (every zoo model as it is, onnx + pt2), `families` (one result of each family on cnn,
resnet and vit: prune structured:0.5 fine-tuned 1 epoch on 2,000 images, quantize uniform:8, distill:1 on 2,000 training images,
architecture low-rank:energy=0.9, early-exit thresholds=0.9 on the _exits model; onnx + pt2 +
safetensors, and onnx-int8 for the 8-bit cnn and resnet), `speed` (a stored cnn run exported to
ONNX and re-checked on all 10,000 test images, wall time of the whole command path).

Columns: `agreement` with the run's stored predictions (targets: float >= 99.9 %, int8 >= 99 %),
`accuracy` of the file and its change in points against the run (int8: within 0.3), `bytes` of the
file (int8: at most 0.3x the float ONNX), the largest logit difference, and batch-1 / batch-256
median latency in the file's own runtime (timings: run on a quiet machine; `load` is the 1-minute
load average when the row started; BENCH_EXPORT_TIMING=0 leaves the timings out,
BENCH_EXPORT_METHODS=prune,quantize runs only those families).
"""

from __future__ import annotations

import os
import time

from benchmarks import common

TIMING = os.environ.get("BENCH_EXPORT_TIMING", "1") != "0"  # 0: accuracy, agreement and bytes only (a busy machine)
# pruning fine-tuned (1 epoch on 2,000 images): one-shot structured 0.5 leaves resnet at chance, whose
# constant predictions would agree with anything
FAMILIES = [("prune", "structured:0.5:epochs=1"), ("quantize", "uniform:8"), ("distill", "1"),
            ("architecture", "low-rank:energy=0.9"), ("early-exit", "thresholds=0.9")]
FLOAT_FORMATS = ("onnx", "pt2", "safetensors")
METHODS = [m for m in os.environ.get("BENCH_EXPORT_METHODS", "").split(",") if m]  # families: only these methods


def _row(model: str, what: str, report: dict) -> dict:
    rc = report["recheck"]
    lat = rc.get("latency_ms") or {}
    return {"model": model, "run": what, "format": report["format"], "bytes": report["size_bytes"],
            "agreement %": rc["agreement"] * 100, "accuracy %": rc["accuracy"] * 100,
            "change (points)": rc["accuracy_change_points"], "max |logit diff|": rc["max_logit_diff"],
            "ok": report["ok"], "batch 1 (ms)": lat.get("batch_1"), "batch 256 (ms)": lat.get("batch_256"),
            "export + re-check (s)": report["export_seconds"] + rc["seconds"], "images": rc["images"],
            "load": round(os.getloadavg()[0], 2)}


def _zoo_source(name: str, data):
    """A zoo model as a source: its checkpoint in the artifact container, its predictions measured now."""
    from compression.artifact import write_artifact
    from compression.export import source_of
    from compression.models import load_pretrained, state_dict_bytes
    from compression.predictions import Predictions
    from compression.refs import architecture_for, parse
    from compression.training import accuracy_on, predict
    model = load_pretrained(name, "cpu").eval()
    blob = write_artifact(state_dict_bytes(model), "dense", architecture_for(parse(name), data))
    preds = Predictions.from_logits(predict(model, data))
    run = {"id": None, "model": name, "dataset": data.name, "method": "evaluate", "config": {},
           "accuracy": accuracy_on(model, data), "accuracy_n": len(data.test), "extra": {}}
    return source_of(run, blob, preds)


def zoo(_data) -> list[dict]:
    from compression.data import load_dataset
    from compression.export import export
    from compression.models import model_card, zoo_names
    rows = []
    with common.temporary_home("bench-export-") as home:
        for name in zoo_names():  # the assets' models (the temporary home has no user models)
            source = _zoo_source(name, load_dataset(model_card(name)["dataset"]))
            for fmt in ("onnx", "pt2"):
                rows.append(_row(name, "zoo checkpoint", export(source, fmt, f"{home}/{name}.{fmt}", timing=TIMING)))
                print(rows[-1], flush=True)
    return rows


def families(data) -> list[dict]:
    from compression.export import export, source_of
    from compression.methods import compress
    rows = []
    with common.temporary_home("bench-export-") as home:
        for model in ("cnn", "resnet", "vit"):
            for method, spec in [f for f in FAMILIES if not METHODS or f[0] in METHODS]:
                name = f"{model}_exits" if method == "early-exit" else model
                run = compress(name, data, method, spec, device="cpu", subset=2000 if method in ("distill", "prune") else None)
                r = run.result
                source = source_of({**r.to_dict(), "id": None, "extra": r.extra}, run.artifact, r.predictions)
                formats = [*FLOAT_FORMATS, *(["onnx-int8"] if method == "quantize" and model != "vit" else [])]
                for fmt in formats:
                    report = export(source, fmt, f"{home}/{name}-{method}.{fmt}", timing=TIMING)
                    rows.append(_row(name, f"{method} {spec}", report))
                    print(rows[-1], flush=True)
                if method == "quantize" and model != "vit":
                    fp, q = rows[-4], rows[-1]
                    q["int8 / float bytes"] = q["bytes"] / fp["bytes"]
                    q["float ONNX batch 256 (ms)"] = fp["batch 256 (ms)"]
    return rows


def speed(data) -> list[dict]:
    """The whole command: a stored cnn run (all 10,000 test images) exported to ONNX and re-checked."""
    from compression.export import export_run
    from compression.methods import run_method
    with common.temporary_home("bench-export-") as home:
        result = run_method("cnn", data, "prune", "structured:0.5", device="cpu")
        start = time.perf_counter()
        report = export_run(result.extra["run_id"], "onnx", f"{home}/cnn.onnx")
        wall = time.perf_counter() - start
    row = _row("cnn", "prune structured:0.5 (stored run)", report)
    row["wall (s), target < 10"] = wall
    return [row]


def run() -> list[dict]:
    from compression.data import load_dataset
    data = load_dataset("fashion-mnist")
    rows = []
    for part in common.parts(["speed", "zoo", "families"]):
        rows += {"zoo": zoo, "families": families, "speed": speed}[part](data)
    return rows
