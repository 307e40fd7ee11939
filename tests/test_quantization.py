"""Quantization core: error bounds that follow from the method, real bytes, exact round trips."""

import numpy as np
import pytest
import torch

from compression import CompressionError
from compression.models import load_pretrained, model_card, state_dict_bytes, state_dict_hash, zoo_names
from compression.quantization import QuantConfig, load_artifact, quantize, quantizable_layers
from compression.quantization.experiments import architecture_of, layer_sensitivity, weight_histogram
from compression.quantization.kernels import kernel_eligibility, onnxruntime_available, select_kernel
from compression.quantization.quantizers import (affine_range, quantize_affine, quantize_binary, quantize_cluster,
                                                 quantize_ternary, sqnr_db)
from compression.training import predict

ZOO = [n for n in zoo_names() if n in ("mlp", "lenet5", "cnn")]
N = 2000  # test images for accuracy checks: enough to see a 0.5-point change of paired predictions


@pytest.fixture(scope="module")
def models():
    return {n: load_pretrained(n) for n in ZOO}


@pytest.fixture(scope="module")
def float_logits(models, fmnist):
    return {n: predict(m, fmnist, limit=N) for n, m in models.items()}


def accuracy(logits, data):
    return float((logits.argmax(1) == data.test.labels[:len(logits)]).float().mean())


# --------------------------------------------------------------------------------------------- math

@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("per_channel", [True, False])
def test_rounding_error_is_at_most_half_a_step(bits, symmetric, per_channel):
    rng = np.random.default_rng(bits)
    w = (rng.standard_normal((16, 50)) * rng.uniform(0.01, 1, (16, 1))).astype(np.float32)
    enc = quantize_affine(w, bits, symmetric=symmetric, per_channel=per_channel, clip="max")
    step = enc.arrays["scale"][:, None]  # max clipping: every value lies inside the grid's range
    err = np.abs(enc.decode() - w).reshape(step.shape[0], -1)
    assert (err <= step / 2 * (1 + 1e-5)).all()
    qmin, qmax = affine_range(bits, symmetric)
    assert enc.arrays["q"].min() >= qmin and enc.arrays["q"].max() <= qmax


def test_8bit_sqnr_and_6db_per_bit_on_real_weights(models):
    # uniform noise of a step s has power s^2/12: 8 bits over +-max leave ~ 6.02 * 8 - 20 log10(max/rms)
    # dB, and each extra bit halves the step (+6 dB)
    for name, model in models.items():
        for layer, module in quantizable_layers(model):
            w = module.weight.detach().numpy()
            sq = [sqnr_db(w, quantize_affine(w, b, clip="max").decode()) for b in (4, 6, 8)]
            assert sq[2] > 35, (name, layer, sq)
            assert 9 < sq[1] - sq[0] < 15 and 9 < sq[2] - sq[1] < 15, (name, layer, sq)


def test_binary_and_ternary_levels():
    w = np.random.default_rng(0).standard_normal((8, 100)).astype(np.float32)
    b = quantize_binary(w).decode()
    assert all(len(np.unique(row)) == 2 for row in b)
    # alpha = mean |w| is the L2-optimal scale for sign(w): any other scale is worse
    for s in (0.9, 1.1):
        worse = quantize_binary(w).decode() * s
        assert ((worse - w) ** 2).sum() > ((b - w) ** 2).sum()
    t = quantize_ternary(w).decode()
    assert all(len(np.unique(row)) <= 3 and 0 in row for row in t)


def test_clustering_keeps_exact_zeros_and_uses_2_pow_b_values():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((30, 40)).astype(np.float32)
    w[rng.random(w.shape) < 0.6] = 0.0  # pruned weights
    enc = quantize_cluster(w, 3, keep_zeros=True)
    d = enc.decode()
    assert np.array_equal(d == 0, w == 0)  # zeros stay zeros, nothing else becomes zero
    assert len(np.unique(d[d != 0])) <= 8
    plain = quantize_cluster(w, 3).decode()  # without the flag, zeros join a cluster
    assert len(np.unique(plain)) <= 8


# --------------------------------------------------------------------------------------------- models

@pytest.mark.parametrize("name", ZOO)
def test_every_conv_and_linear_layer_is_quantized(name, models):
    model = models[name]
    expected = {"Conv2d": sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()),
                "Linear": sum(isinstance(m, torch.nn.Linear) for m in model.modules())}
    qm = quantize(model, QuantConfig(bits=4))
    assert len(qm.quantized_layers) == expected["Conv2d"] + expected["Linear"] == len(qm.layers)
    parts = ", ".join(f"{n} {k}" for k, n in sorted(expected.items()) if n)
    assert qm.coverage() == f"{len(qm.layers)} of {len(qm.layers)} layers quantized: {parts}"
    for layer, module in quantizable_layers(qm.model):  # 4-bit symmetric: at most 15 values per channel
        assert all(len(torch.unique(row)) <= 15 for row in module.weight.detach().flatten(1))


CONFIGS = [QuantConfig(bits=8), QuantConfig(bits=3, symmetric=False, granularity="tensor"),
           QuantConfig(method="cluster", bits=4), QuantConfig(method="cluster-huffman", bits=5, keep_zeros=True),
           QuantConfig(method="binary"), QuantConfig(method="ternary"), QuantConfig(bits=16),
           QuantConfig(bits=4, activation_bits=8, calibration_size=200),
           QuantConfig(bits=8, activation_bits=4, calibration_size=200, layer_bits={"1": 32})]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.label())
def test_artifact_loads_back_to_identical_predictions(config, models, fmnist):
    model = models["mlp"]
    before = state_dict_hash(model)
    qm = quantize(model, config, dataset=fmnist, architecture=architecture_of("mlp"))
    assert state_dict_hash(model) == before  # the input model is unchanged
    loaded = load_artifact(qm.artifact)      # from the bytes alone
    x = next(fmnist.batches("test", 500))[0]
    with torch.inference_mode():
        assert torch.equal(qm.model(x), loaded(x))
    # the stored weight bits are a floor for the artifact's length
    per_weight = {"ternary": 1.6, "cluster-huffman": 0}.get(config.method)  # 5 trits per byte; Huffman: any
    floor = sum(r["params"] * (per_weight if per_weight is not None and r["quantized"] else r["bits"])
                for r in qm.layers) / 8
    assert len(qm.artifact) >= floor


@pytest.mark.parametrize("name", ZOO)
def test_8bit_per_channel_size_and_accuracy(name, models, float_logits, fmnist):
    qm = quantize(models[name], QuantConfig(bits=8))
    ratio = len(qm.artifact) / len(state_dict_bytes(models[name]))
    assert ratio <= 0.27  # int8 codes are 1/4 of fp32; scales, biases and BatchNorm stay float
    drop = accuracy(float_logits[name], fmnist) - accuracy(predict(qm.model, fmnist, limit=N), fmnist)
    assert abs(drop) <= 0.005


def test_4bit_mlp_and_clustering_with_huffman(models, float_logits, fmnist):
    fp32 = len(state_dict_bytes(models["mlp"]))
    base = accuracy(float_logits["mlp"], fmnist)
    q4 = quantize(models["mlp"], QuantConfig(bits=4))
    assert len(q4.artifact) / fp32 <= 0.15
    assert base - accuracy(predict(q4.model, fmnist, limit=N), fmnist) <= 0.02
    fixed = quantize(models["mlp"], QuantConfig(method="cluster", bits=5))
    huff = quantize(models["mlp"], QuantConfig(method="cluster-huffman", bits=5))
    assert len(huff.artifact) < len(fixed.artifact)  # Huffman only shortens index streams
    assert fp32 / len(huff.artifact) >= 6.5
    assert torch.equal(predict(huff.model, fmnist, limit=N), predict(fixed.model, fmnist, limit=N))  # same codebook
    assert base - accuracy(predict(huff.model, fmnist, limit=N), fmnist) <= 0.01


def test_qat_recovers_accuracy_lost_by_binary_weights(models, fmnist):
    # post-training sign(w) * mean|w| loses ~27 points on mlp; training through the sign (STE) lets
    # the other weights compensate, so even 3,000 images bring most of it back
    ptq = quantize(models["mlp"], QuantConfig(method="binary"))
    qat = quantize(models["mlp"], QuantConfig(method="binary", qat_epochs=1, qat_subset=3000, qat_lr=5e-4),
                   dataset=fmnist)
    a_ptq = accuracy(predict(ptq.model, fmnist, limit=N), fmnist)
    a_qat = accuracy(predict(qat.model, fmnist, limit=N), fmnist)
    assert len(qat.history) == 1 and a_qat > a_ptq + 0.10, (a_ptq, a_qat)
    assert len(qat.artifact) == len(ptq.artifact)  # fine-tuning changes values, not the format


def test_qat_stop_keeps_what_was_done(models, fmnist):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 5
    qm = quantize(models["mlp"], QuantConfig(bits=3, qat_epochs=3, qat_subset=1000), dataset=fmnist, should_stop=stop)
    assert qm.stopped and len(qm.history) == 1 and qm.history[0]["partial"]


@pytest.mark.parametrize("kwargs, named", [
    ({"bits": 9}, "9"), ({"bits": 0}, "0"), ({"method": "cluster", "bits": 16}, "16"),
    ({"method": "lloyd"}, "lloyd"), ({"activation_bits": 6}, "6"), ({"granularity": "group"}, "group"),
    ({"calibration_size": 0}, "0"), ({"layer_bits": {"0": 5.5}}, "5.5"), ({"bits": 1}, "asymmetric"),
])
def test_bad_config_is_refused_with_the_value(kwargs, named):
    with pytest.raises(CompressionError, match=named):
        QuantConfig(**kwargs)


def test_unknown_layer_and_missing_dataset(models):
    with pytest.raises(CompressionError, match="'fc9'"):
        quantize(models["mlp"], QuantConfig(layer_bits={"fc9": 4}))
    with pytest.raises(CompressionError, match="dataset"):
        quantize(models["mlp"], QuantConfig(activation_bits=8))


def test_binary_and_ternary_bits_are_fixed():
    assert QuantConfig(method="binary", bits=5).bits == 1 and QuantConfig(method="ternary").bits == 2


def test_sensitivity_and_histogram(models, fmnist):
    rows = layer_sensitivity(models["lenet5"], QuantConfig(bits=2), fmnist, limit=500)
    assert [r["layer"] for r in rows] == [n for n, _ in quantizable_layers(models["lenet5"])]
    # one layer at 2 bits hurts less than all of them: each row is at least the all-layers accuracy
    everything = accuracy_on_val(quantize(models["lenet5"], QuantConfig(bits=2)).model, fmnist, 500)
    assert all(r["accuracy"] >= everything - 0.01 for r in rows)
    h = weight_histogram(models["lenet5"], "0", QuantConfig(method="cluster", bits=3))
    assert len(h["levels"]) <= 8 and set(np.unique(h["quantized"])) <= set(h["levels"].tolist())


def accuracy_on_val(model, data, limit):
    from compression.training import accuracy_on
    return accuracy_on(model, data, "val", limit=limit)


# --------------------------------------------------------------------------------------------- int8 kernel

def test_kernel_eligibility_says_why():
    assert kernel_eligibility(QuantConfig(bits=4), "cpu") == (False, "no low-precision kernel for 4-bit weights here")
    assert not kernel_eligibility(QuantConfig(bits=8, symmetric=False), "cpu")[0]
    assert not kernel_eligibility(QuantConfig(method="cluster", bits=8), "cpu")[0]
    assert kernel_eligibility(QuantConfig(bits=8), "cpu")[0] == onnxruntime_available()


@pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime not installed")
def test_int8_kernel_agrees_with_the_quantized_model(models, fmnist):
    qm = quantize(models["lenet5"], QuantConfig(bits=8))
    report = select_kernel(qm.model, fmnist, QuantConfig(bits=8), candidates=("ort-static",), limit=N, rounds=1)
    assert report["chosen"] == "ort-static"
    assert report["candidates"]["ort-static"]["agreement"] >= 0.99
    simulated = accuracy(predict(qm.model, fmnist, limit=N), fmnist)
    assert abs(report["accuracy"] - simulated) <= 0.005
    assert report["size_bytes"] < 0.3 * model_card("lenet5")["size_bytes"]  # its file holds int8 weights too


@pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime not installed")
def test_linear_only_int8_kernel_keeps_convolutions_float(models, fmnist, tmp_path):
    import onnx
    from compression.quantization.kernels import build_kernel, has_conv
    qm = quantize(models["lenet5"], QuantConfig(bits=8))
    kernel = build_kernel("ort-static-linear", qm.model, fmnist, QuantConfig(bits=8), str(tmp_path))
    ops = {n.op_type for n in onnx.load(str(tmp_path / "ort-static-linear.onnx")).graph.node}
    assert "Conv" in ops and not {"QLinearConv", "ConvInteger"} & ops    # convolutions stay float
    assert ops & {"QLinearMatMul", "QGemm", "MatMulInteger"}               # the Linear layers run in int8
    x = next(iter(fmnist.batches("val", N)))[0]
    assert (kernel.run(x).argmax(1) == predict(qm.model, fmnist, split="val", limit=N).argmax(1).numpy()).mean() >= 0.99
    # without convolutions it would be ort-static again, so it is not a candidate for the mlp
    assert has_conv(models["lenet5"]) and not has_conv(models["mlp"])
    report = select_kernel(quantize(models["mlp"], QuantConfig(bits=8)).model, fmnist, QuantConfig(bits=8),
                           limit=N, rounds=1)
    assert "ort-static-linear" not in report["candidates"]


@pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime not installed")
def test_a_candidate_that_cannot_run_the_model_is_reported_not_fatal(fmnist):
    # cnn_slim slices fc1.weight in its forward; PyTorch's dynamic int8 Linear has no such tensor
    qm = quantize(load_pretrained("cnn_slim"), QuantConfig(bits=8))
    report = select_kernel(qm.model, fmnist, QuantConfig(bits=8), candidates=("torch-dynamic", "ort-static"),
                           limit=N, rounds=1)
    assert "TypeError" in report["candidates"]["torch-dynamic"]["error"]
    assert report["chosen"] == "ort-static"


def _inductor_unavailable():
    from compression.quantization.inductor_kernel import unavailable
    return unavailable()


@pytest.mark.skipif(_inductor_unavailable() is not None, reason=str(_inductor_unavailable()))
def test_inductor_int8_kernel_agrees_with_the_quantized_model(fmnist, tmp_path):
    """torchao PT2E static int8 compiled by Inductor on the ViT (its Linear layers are the int8
    target): the same predictions as the quantized model on >= 99 % of images, at batch 1 too."""
    from compression.quantization.kernels import build_kernel
    qm = quantize(load_pretrained("vit"), QuantConfig(bits=8))
    kernel = build_kernel("inductor-int8", qm.model, fmnist, QuantConfig(bits=8), str(tmp_path))
    x = next(iter(fmnist.batches("val", N)))[0]
    simulated = predict(qm.model, fmnist, split="val", limit=N).argmax(1).numpy()
    assert (kernel.run(x).argmax(1) == simulated).mean() >= 0.99          # 8 chunks of 256, the last padded
    assert (np.concatenate([kernel.run(x[i:i + 1]) for i in range(50)]).argmax(1) == simulated[:50]).mean() >= 0.96


def test_inductor_int8_is_skipped_with_the_reason_where_it_cannot_run(models, fmnist, monkeypatch):
    from compression.quantization import inductor_kernel, kernels
    built = []
    monkeypatch.setattr(inductor_kernel, "unavailable", lambda: "no C++ compiler for TorchInductor (g++, c++ or clang++)")
    real = kernels.build_kernel
    monkeypatch.setattr(kernels, "build_kernel", lambda name, *a: built.append(name) or real(name, *a))
    qm = quantize(models["mlp"], QuantConfig(bits=8))
    report = select_kernel(qm.model, fmnist, QuantConfig(bits=8), candidates=("inductor-int8", "torch-dynamic"),
                           limit=N, rounds=1)
    assert report["candidates"]["inductor-int8"] == {"error": "skipped: no C++ compiler for TorchInductor "
                                                               "(g++, c++ or clang++)"}
    assert not any(n.startswith("inductor") for n in built)               # neither it nor its reference built
    assert report["chosen"] == "torch-dynamic" and report["runtime_reference"] == "torch-fp32"


def test_pruned_layers_store_only_their_nonzero_codes(models, fmnist):
    """A 70 %-pruned mlp at 8 bits: symmetric code 0 is exactly 0.0, so each layer keeps only its
    nonzero codes and their positions (relative gaps), well under the dense 8 bits per weight, and
    loads back to the same predictions."""
    from compression.pruning import prune_weights
    pruned = prune_weights(models["mlp"], 0.7, scope="global")
    qm = quantize(pruned, QuantConfig(bits=8), architecture=architecture_of("mlp"))
    dense_codes = sum(r["params"] for r in qm.layers if r["quantized"])  # bytes at 8 bits per weight
    assert len(qm.artifact) < 0.6 * dense_codes
    dense = quantize(models["mlp"], QuantConfig(bits=8), architecture=architecture_of("mlp"))
    assert len(dense.artifact) >= dense_codes  # nothing to leave out: the dense codes are kept
    loaded = load_artifact(qm.artifact)
    x = next(fmnist.batches("test", 500))[0]
    with torch.inference_mode():
        assert torch.equal(qm.model(x), loaded(x))
    assert (loaded[1].weight == 0).float().mean() >= 0.5  # the zeros came back as zeros
    from compression.quantization.artifact import read_header
    assert read_header(qm.artifact)[0]["format"] == 2  # sparse codes: readers of format 1 refuse it
    assert read_header(dense.artifact)[0]["format"] == 1  # no sparse codes: still format 1


def test_auto_measures_the_inductor_kernel_only_for_the_compile_runtime():
    from compression.quantization.kernels import CANDIDATES, auto_candidates
    assert "inductor-int8" not in CANDIDATES and auto_candidates("eager") == auto_candidates("onnxruntime") == CANDIDATES
    assert auto_candidates("compile") == (*CANDIDATES, "inductor-int8")


@pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime not installed")
def test_the_kernel_search_rules_out_slow_candidates_before_the_full_timing(models, fmnist, monkeypatch):
    """A candidate whose quick estimate is 4x the fastest faithful one's is neither checked nor timed
    further: its estimate and why it was ruled out are in the report; every stage names its candidate."""
    from compression.quantization import kernels
    calls = []

    def fake_timing(fns, rounds=7, calls_=2, warmup=2, **kw):
        calls.append((sorted(fns), rounds))
        return {k: {"ort-static": 1.0, "torch-dynamic": 4.0}.get(k, 3.0) for k in fns}
    monkeypatch.setattr(kernels, "interleaved_ms", fake_timing)
    stages = []
    qm = quantize(models["mlp"], QuantConfig(bits=8))
    report = select_kernel(qm.model, fmnist, QuantConfig(bits=8), candidates=("torch-dynamic", "ort-static"),
                           limit=N, progress=stages.append)
    assert report["chosen"] == "ort-static"
    out = report["candidates"]["torch-dynamic"]
    assert out["quick_ms"] == 4.0 and "agreement" not in out and "batch_ms" not in out
    assert out["ruled_out"].startswith("4.0x slower than ort-static in a quick estimate")
    (quick, _), (full, rounds) = calls
    assert "torch-dynamic" in quick and "torch-dynamic" not in full and 3 <= rounds <= 7
    phases = [s["phase"] for s in stages]
    assert "int8 kernel search: building torch-dynamic" in phases
    assert "int8 kernel search: checking agreement of ort-static" in phases
    assert not any("agreement of torch-dynamic" in p for p in phases)
    assert [s["step"] for s in stages] == list(range(1, len(stages) + 1)) and stages[-1]["step"] <= stages[-1]["steps"]


def test_a_large_model_is_timed_at_a_smaller_batch():
    from compression.quantization.kernels import timing_batch
    assert timing_batch(4e6) == 256          # a zoo CNN: ~4 M MACs per image
    assert timing_batch(0.56e9) == 4         # ResNet-18 on 32 x 32 images
    assert timing_batch(1e12) == 1


@pytest.mark.parametrize("spec", ["uniform:7:activation_bits=4", "cluster-huffman:4", "uniform:8:layer_bits="
                                  '[["7",32]]'])
def test_a_quantized_model_reports_the_macs_counted_on_it(spec):
    """The quantized copy runs the reference's layers (activation rounding adds no multiply-accumulate),
    so the count taken once on the reference is the one the FLOP counter gives on the copy."""
    from compression.methods import compress
    from compression.metrics import count_macs
    run = compress("lenet5", None, "quantize", spec, device="cpu", limit=200, options={"kernel": False})
    assert run.result.metrics.macs == count_macs(run.model, (1, 28, 28)) > 0


@pytest.mark.parametrize("bits", [3, 7, 8])
def test_dense_codes_are_kept_exactly_when_positions_could_not_pay_for_themselves(bits):
    """The sparse form is tried only where it can be smaller (a kept code costs >= bits + 1 bits):
    the choice is the one the full comparison makes, for every share of zero codes."""
    from compression.packing import pack_bits, sparse_gaps
    from compression.quantization.artifact import _sparse_codes, best_index_bits
    rng = np.random.default_rng(bits)
    qmin = -(1 << (bits - 1)) + 1
    for zeros in (0.0, 0.05, 1 / (bits + 1) - 0.01, 1 / (bits + 1) + 0.01, 0.3, 0.7, 0.95):
        q = rng.integers(1, 1 << (bits - 1), 20_000) * rng.choice([-1, 1], 20_000)
        q[rng.random(20_000) < zeros] = 0
        dense = len(pack_bits(q - qmin, bits))
        mask = q != 0
        ib = best_index_bits(mask)
        full = len(pack_bits(q[mask] - qmin, bits)) + len(pack_bits(sparse_gaps(mask, ib), ib))
        sparse = _sparse_codes(q, bits, qmin)
        kept = sparse is not None and len(sparse[0]["q"]) + len(sparse[0]["gaps"]) < dense
        assert kept == (full < dense), (bits, zeros)
