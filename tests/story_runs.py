"""Stored runs shaped like the ones the pages write (their configs as stored), for the tests of what
a stakeholder sees (issue 26): names, labels, the story, the parallel coordinates."""

import random

from compression.metrics import Metrics, Result
from compression.store import RunStore

CNN = Metrics(0.9229, 10000, 98554, 98554, 401569, 1994240, 0.400, False)  # the zoo cnn (assets/models/cnn.json)
PRUNE = {"method": "structured", "ratio": 0.5, "scope": "layer", "importance": "l1", "steps": 1, "finetune_epochs": 1,
         "finetune_lr": 0.001, "finetune_split": "val", "finetune_augment": False, "finetune_batch_size": 128,
         "finetune_distill": 0.0, "finetune_seed": 0, "finetune_subset": None, "finetune_monitor_images": 2000}
QUANT = {"method": "uniform", "bits": 8, "granularity": "channel", "symmetric": True, "activation_bits": None,
         "calibration_size": 512, "clipping": "auto", "qat_epochs": 0, "layer_bits": {}, "backend": "auto"}
PIPE = {"pipeline": "prune:unstructured:0.8:scope=global:steps=1:epochs=1,quantize:uniform:4", "step": 2,
        "step_kind": "quantize", "seed": 0, "subset": None}
STUDENT = {"student": "lenet5", "student_width": 1.0, "student_init": "scratch", "temperature": 4.0, "alpha": 0.7,
           "epochs": 10, "lr": 0.002, "batch_size": 128, "seed": 0, "train_subset": None, "teachers": []}


def _timed(ms: float, base_ms: float, spread: float = 0.004) -> dict:
    """The latency pair a run is stored with: its baseline timed beside it, both spreads."""
    return {"runtime": "eager", "latency_spread_ms": spread, "baseline_latency_ms": base_ms,
            "baseline_latency_spread_ms": spread}


def seed_story(path) -> dict[str, int]:
    """Five runs of the cnn shaped like real ones (stored configs as the pages write them); the
    first three starred, two of those named. Returns their ids by a short key."""
    store = RunStore(path)

    def add(key, method, config, acc, size, macs, ms, base_ms, *, sim=(), **kw):
        m = Metrics(acc, 10000, int(CNN.params * size / CNN.size_bytes), int(CNN.params * size / CNN.size_bytes),
                    size, macs, ms, bool(sim))
        extra = {**_timed(ms, base_ms), **({"simulated_metrics": list(sim)} if sim else {})}
        return key, store.add(Result("cnn", "fashion-mnist", method, config, "cpu", m,
                                     Metrics(**{**CNN.to_dict(), "latency_ms": base_ms}), extra), **kw)

    return dict([
        add("prune", "prune", PRUNE, 0.9104, 101873, 520000.0, 0.210, 0.402, starred=True,
            name="Half the channels, fine-tuned 1 epoch"),
        add("quant", "quantize", QUANT, 0.9221, 111541, 1994240.0, 0.395, 0.401, starred=True, name="8-bit cnn"),
        add("pipe", "pipeline", PIPE, 0.9012, 41233, 1994240.0, 0.398, 0.399, sim=("macs", "latency_ms"),
            starred=True),
        add("student", "distill", STUDENT, 0.8975, 250309, 416520.0, 0.160, 0.401),
        add("unstructured", "prune", {**PRUNE, "method": "unstructured", "ratio": 0.9, "finetune_epochs": 0},
            0.8310, 80441, 1994240.0, 0.399, 0.400, sim=("macs", "latency_ms")),
    ])


def realistic_runs(n: int, *, seed: int = 0) -> list[dict]:
    """`n` stored-run rows (RunStore.runs shape) of the cnn with the configs the pages store: prunes,
    quantizations, students, conversions, early exits, widths and pipelines, a few named."""
    rng = random.Random(seed)
    pipes = ["prune:unstructured:0.8:scope=global:steps=1:epochs=1,quantize:uniform:4",
             "prune:structured:0.5:scope=layer:steps=1:epochs=2,distill:2:T=4:alpha=0.7,quantize:uniform:8",
             "prune:unstructured:0.9:scope=global:steps=3:epochs=4,quantize:cluster-huffman:5"]
    makers = [
        lambda: ("prune", {**PRUNE, "method": rng.choice(["structured", "unstructured"]),
                           "ratio": rng.choice([0.3, 0.5, 0.7, 0.9]), "finetune_epochs": rng.choice([0, 1, 2])}),
        lambda: ("quantize", {**QUANT, "bits": rng.choice([2, 4, 8]), "granularity": rng.choice(["channel", "tensor"]),
                              "method": rng.choice(["uniform", "cluster"])}),
        lambda: ("distill", {**STUDENT, "temperature": rng.choice([2.0, 4.0, 8.0]),
                             "student_width": rng.choice([0.5, 1.0])}),
        lambda: ("architecture", {"convert": rng.choice(["depthwise", "low-rank"]), "rank": None, "energy": 0.9,
                                  "recover": "finetune", "recover_epochs": 3, "lr": 0.002, "seed": 0}),
        lambda: ("early-exit", {"criterion": "confidence", "thresholds": [rng.choice([0.5, 0.7, 0.9])]}),
        lambda: ("width", {"width": rng.choice([0.25, 0.5, 0.75])}),
        lambda: ("pipeline", {"pipeline": rng.choice(pipes), "step": 2, "seed": 0, "subset": None}),
    ]
    rows = []
    for i in range(n):
        method, config = makers[i % len(makers)]()
        f = rng.uniform(0.05, 1.0)
        rows.append({"id": i + 1, "created_at": 1.7e9 + i, "model": "cnn", "dataset": "fashion-mnist",
                     "method": method, "config": config, "device": "cpu",
                     "accuracy": round(0.92 - 0.1 * (1 - f) ** 3 - rng.uniform(0, 0.01), 4), "accuracy_n": 10000,
                     "params": int(CNN.params * f), "nonzero_params": int(CNN.params * f),
                     "size_bytes": int(CNN.size_bytes * f), "macs": CNN.macs * f, "latency_ms": 0.4 * f,
                     "simulated": False, "baseline": CNN.to_dict(), "extra": _timed(0.4 * f, 0.4),
                     "name": rng.choice([None, None, f"candidate {i + 1}"]), "tags": [], "starred": False,
                     "hidden": False, "code_version": "test"})
    return rows
