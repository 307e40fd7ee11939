"""Per zoo model, on the default device: evaluation throughput over all 10k test images (batch
1000), batch-256 throughput, batch-1 latency (median of 200 after warm-up); and the time to load
Fashion-MNIST (decoding the IDX files vs reading the cached tensors)."""

from __future__ import annotations

import os
import tempfile
import time


from benchmarks.common import timed
from compression.data import _load_cached, load_dataset
from compression.device import get_device
from compression.metrics import latency_ms, throughput
from compression.models import load_pretrained, model_card, zoo_names
from compression.training import predict


def run() -> list[dict]:
    device = get_device()
    rows = []
    home = os.environ.get("COMPRESSION_HOME")
    os.environ["COMPRESSION_HOME"] = tempfile.mkdtemp(prefix="bench-home-")  # empty decoded cache
    _load_cached.cache_clear()
    start = time.perf_counter()
    data = load_dataset("fashion-mnist")
    first = time.perf_counter() - start
    _load_cached.cache_clear()
    start = time.perf_counter()
    data = load_dataset("fashion-mnist")
    cached = time.perf_counter() - start
    if home:
        os.environ["COMPRESSION_HOME"] = home
    rows.append({"what": "load fashion-mnist (70k images)", "first load s": first, "cached load s": cached})
    for name in zoo_names():
        if model_card(name)["dataset"] != "fashion-mnist":
            continue
        model = load_pretrained(name, device)
        eval_s = timed(lambda: predict(model, data, "test", device=device), repeats=3)
        rows.append({
            "what": name,
            "eval 10k images s": eval_s,
            "eval images/s": len(data.test) / eval_s,
            "batch-256 images/s": throughput(model, data.input_shape, device, repeats=20),
            "batch-1 latency ms": latency_ms(model, data.input_shape, device, warmup=20, repeats=200),
            "device": device.type,
        })
    return rows
