"""The int8 kernel choice on disk (compression/quantization/kernel_cache.py): a hit builds only the
chosen kernel, a changed weight or config measures again."""

import json

import pytest
import torch

from compression.models import load_pretrained
from compression.quantization import QuantConfig, quantize
from compression.quantization import kernel_cache, kernels

pytestmark = pytest.mark.skipif(not kernels.onnxruntime_available(), reason="onnxruntime not installed")
CANDIDATES = ("ort-dynamic", "ort-static")


@pytest.fixture
def built(monkeypatch):
    """The names of the kernels built, in order."""
    names, real = [], kernels.build_kernel

    def counting(name, *args, **kwargs):
        names.append(name)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(kernels, "build_kernel", counting)
    return names


def _select(model, fmnist, cfg, runner=None):
    return kernel_cache.cached_select_kernel(model, fmnist, cfg, candidates=CANDIDATES, limit=500, rounds=1,
                                             runner=runner)


def test_a_hit_builds_only_the_chosen_kernel_and_says_when_it_was_measured(home, fmnist, built):
    cfg = QuantConfig(bits=8)
    qm = quantize(load_pretrained("mlp"), cfg)
    first = _select(qm.model, fmnist, cfg)
    assert first["cached"] is False and first["chosen"] in CANDIDATES
    assert sorted(built) == sorted(["torch-fp32", "ort-fp32", *CANDIDATES])  # every candidate and reference
    assert (home / "cache" / "int8_kernels.json").is_file()  # beside baselines.json
    built.clear()
    runner: dict = {}
    again = _select(qm.model, fmnist, cfg, runner)
    assert built == [first["chosen"]]  # no candidate timed again: only the chosen one, to be timed
    assert again["cached"] is True and again["measured_at"] == first["measured_at"]
    assert again["candidates"] == first["candidates"] and again["accuracy"] == first["accuracy"]
    assert again["latency_ms"] > 0  # re-timed now, not read back
    # the runner gets the chosen kernel, and it computes what the quantized model computes
    runtime, run, what = runner["kernel"]
    x = next(iter(fmnist.batches("val", 256)))[0]
    with torch.inference_mode():
        agree = (run(x).argmax(1) == qm.model(x).argmax(1).numpy()).mean()
    assert runtime == "onnxruntime" and what == first["description"] and agree >= 0.99


def test_a_changed_weight_or_config_misses(home, fmnist, built):
    cfg = QuantConfig(bits=8)
    qm = quantize(load_pretrained("mlp"), cfg)
    _select(qm.model, fmnist, cfg)
    changed = quantize(load_pretrained("mlp"), cfg).model
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 0.5  # one weight
    built.clear()
    assert _select(changed, fmnist, cfg)["cached"] is False and len(built) == 2 + len(CANDIDATES)
    built.clear()
    per_tensor = QuantConfig(bits=8, granularity="tensor")
    assert _select(quantize(load_pretrained("mlp"), per_tensor).model, fmnist, per_tensor)["cached"] is False
    assert len(built) == 2 + len(CANDIDATES)
    table = json.loads((home / "cache" / "int8_kernels.json").read_text())
    assert len(table) == 3


def test_the_key_names_the_machine(home, fmnist, monkeypatch):
    cfg = QuantConfig(bits=8)
    model = quantize(load_pretrained("mlp"), cfg).model
    key = kernel_cache.kernel_key(model, fmnist, cfg)
    assert kernel_cache.machine()["cpu"] and kernel_cache.machine()["onnxruntime"]
    monkeypatch.setattr(kernel_cache, "cpu_model", lambda: "another CPU")
    assert kernel_cache.kernel_key(model, fmnist, cfg) != key
    monkeypatch.undo()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads != 1 else 2)
        assert kernel_cache.kernel_key(model, fmnist, cfg) != key
    finally:
        torch.set_num_threads(threads)


def test_a_corrupt_cache_file_is_measured_again(home, fmnist, built):
    (home / "cache").mkdir(parents=True, exist_ok=True)
    (home / "cache" / "int8_kernels.json").write_text("{not json")
    cfg = QuantConfig(bits=8)
    assert _select(quantize(load_pretrained("mlp"), cfg).model, fmnist, cfg)["cached"] is False
