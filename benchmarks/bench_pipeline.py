"""Pipelines on `mlp` (LeNet-300-100, Fashion-MNIST), all 10k test images, full training split:
the three named recipes step by step (accuracy, stored bytes, x fewer bytes than the fp32
state_dict, wall time of the step), then what each part of Deep Compression's storage contributes,
measured side by side on the same pruned model: its sparse float file, 5-bit clustering without
keeping the zeros, with them but fixed-width codes, and the full recipe's Huffman-coded file.
Every final file is loaded back and its predictions compared with the pipeline's model."""

from __future__ import annotations

import time

import torch

from compression.device import get_device
from compression.evaluate import dataset_for
from compression.metrics import baseline_metrics
from compression.models import load_pretrained
from compression.pipeline import (RECIPES, step_spec, PipelineConfig, architecture_of, load_artifact, recipe_steps,
                                  run_pipeline, write_artifact)
from compression.quantization import QuantConfig, quantize
from compression.training import accuracy_on, predict

MODEL = "mlp"


def _row(what: str, accuracy: float, size: int, base, seconds: float | None = None, **more) -> dict:
    return {"what": what, "accuracy %": round(100 * accuracy, 2),
            "change (points)": round(100 * (accuracy - base.accuracy), 2), "bytes": size,
            "x fewer bytes": round(base.size_bytes / size, 2),
            **({"seconds": round(seconds, 1)} if seconds is not None else {}), **more}


def run() -> list[dict]:
    device = get_device()
    data = dataset_for(MODEL)
    base = baseline_metrics(MODEL, data, device)
    rows = [_row(f"{MODEL} fp32 state_dict", base.accuracy, base.size_bytes, base)]
    model = load_pretrained(MODEL, device)
    pruned = None
    for recipe in RECIPES:
        cfg = PipelineConfig(recipe_steps(recipe))
        start = time.perf_counter()
        outcomes = []
        for outcome in run_pipeline(MODEL, data, cfg, device=device, model=model):
            m = outcome.result.metrics
            rows.append(_row(f"{recipe} step {outcome.index}: {step_spec(outcome.step)}", m.accuracy, m.size_bytes, base,
                             time.perf_counter() - start, simulated=m.simulated))
            outcomes.append(outcome)
            start = time.perf_counter()
        final = outcomes[-1]
        same = torch.equal(predict(load_artifact(final.artifact), data), predict(final.model.cpu(), data))
        rows[-1]["file loads with same predictions"] = same
        if recipe == "deep-compression":
            pruned = outcomes[0].model
    rows += _storage_ablation(pruned, data, base, device)
    return rows


def _storage_ablation(pruned, data, base, device) -> list[dict]:
    """The same pruned model stored four ways (no retraining between them)."""
    arch = architecture_of(MODEL)
    rows = []
    for what, cfg in [("pruned, 5-bit clusters incl. the zeros, Huffman", QuantConfig("cluster-huffman", 5)),
                      ("pruned, 5-bit clusters, zeros kept + gaps, fixed width",
                       QuantConfig("cluster", 5, keep_zeros=True)),
                      ("pruned, 5-bit clusters, zeros kept + gaps, Huffman (Deep Compression)",
                       QuantConfig("cluster-huffman", 5, keep_zeros=True))]:
        qm = quantize(pruned, cfg, dataset=data, device=device)
        size = len(write_artifact(qm.artifact, "quantized", arch))
        rows.append(_row(what, accuracy_on(qm.model, data, "test", device), size, base,
                         nonzero=int(sum(int(torch.count_nonzero(p)) for p in qm.model.parameters()))))
    return rows
