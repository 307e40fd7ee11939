import math

import torch

from compression.metrics import (Result, count_macs, count_nonzero, count_params, latency_ms, measure,
                                 wilson_interval)
from compression.models import build_model, load_pretrained, state_dict_bytes, state_dict_hash


def test_lenet5_macs_equal_the_hand_count():
    # conv1: 6 filters of 1x5x5 at every one of 28x28 outputs (padding 2)
    conv1 = 6 * (1 * 5 * 5) * 28 * 28
    # conv2: 16 filters of 6x5x5 on the 14x14 pooled map -> 10x10 outputs
    conv2 = 16 * (6 * 5 * 5) * 10 * 10
    fc = 16 * 5 * 5 * 120 + 120 * 84 + 84 * 10
    assert conv1 + conv2 + fc == 416_520
    assert count_macs(build_model("lenet5"), (1, 28, 28)) == 416_520


def test_mlp_macs_and_params():
    model = build_model("mlp")
    assert count_macs(model, (1, 28, 28)) == 784 * 300 + 300 * 100 + 100 * 10
    assert count_params(model) == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10


def test_size_bytes_is_the_length_of_what_is_written(tmp_path, fmnist):
    model = load_pretrained("lenet5")
    blob = state_dict_bytes(model)
    path = tmp_path / "lenet5.pt"
    path.write_bytes(blob)
    m = measure(model, fmnist, limit=200)
    assert m.size_bytes == path.stat().st_size == len(blob)
    # fp32 weights: at least 4 bytes per parameter, and not much more (pickle framing)
    assert 4 * m.params <= m.size_bytes <= 4 * m.params + 20_000


def test_latency_is_positive_and_finite():
    ms = latency_ms(build_model("mlp"), (1, 28, 28), warmup=2, repeats=5)
    assert 0 < ms < 10_000 and math.isfinite(ms)


def test_nonzero_counts_zeros():
    model = build_model("mlp")
    with torch.no_grad():
        model[1].weight.zero_()
    assert count_nonzero(model) == count_params(model) - 784 * 300


def test_measure_does_not_modify_the_model(fmnist):
    model = load_pretrained("cnn")
    before = state_dict_hash(model)
    m = measure(model, fmnist, limit=500)
    assert state_dict_hash(model) == before
    assert m.accuracy_n == 500 and 0.5 < m.accuracy <= 1.0 and m.simulated is False


def test_wilson_interval_brackets_the_estimate():
    lo, hi = wilson_interval(0.9, 10_000)
    assert lo < 0.9 < hi and hi - lo < 0.013  # +-0.6 points at n = 10k
    lo_small, hi_small = wilson_interval(0.9, 100)
    assert hi_small - lo_small > hi - lo


def test_result_json_has_every_key(fmnist):
    m = measure(build_model("mlp"), fmnist, limit=50)
    d = Result("mlp", "fashion-mnist", "baseline", {}, "cpu", m, m).to_dict()
    for key in ("accuracy", "accuracy_n", "params", "nonzero_params", "size_bytes", "macs", "latency_ms",
                "simulated", "simulated_metrics", "baseline", "model", "dataset", "method", "config", "device"):
        assert key in d
