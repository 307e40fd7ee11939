"""Architecture design: the calculator's arithmetic, the converters and the per-layer table."""

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from compression import CompressionError
from compression.architecture import (ArchitectureConfig, LowRankConfig, RecoveryConfig, SeparableConfig,
                                      SeparableConv2d, compare_conv, conv_macs, conv_params, convert,
                                      ds_cnn, factorize_linear, kept_energy, layer_table, low_rank,
                                      low_rank_params, rank_for_energy, separable_conv_macs,
                                      separable_conv_params, separable_ratio, to_depthwise_separable)
from compression.metrics import count_macs, count_params
from compression.models import build_model, load_pretrained, state_dict_hash

SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def cnn():
    return load_pretrained("cnn")


@pytest.fixture(scope="module")
def mlp():
    return load_pretrained("mlp")


# ---------------------------------------------------------------------------------------------
# the calculator

def test_calculator_matches_the_hand_count_of_the_issue():
    c = compare_conv(3, 2, 4, 5)
    assert c.standard_params == 3 * 3 * 2 * 4 == 72
    assert c.separable_params == 3 * 3 * 2 + 2 * 4 == 26
    assert (c.standard_macs, c.separable_macs) == (72 * 25, 26 * 25)  # one weight, one MAC per position
    assert c.closed_form == pytest.approx(1 / 4 + 1 / 9)
    assert c.param_ratio == pytest.approx(c.closed_form) and c.mac_ratio == pytest.approx(c.closed_form)


def test_calculator_with_bias_and_batchnorm():
    # bias: +O on the standard conv, +O on the pointwise step (the depthwise one has none)
    assert conv_params(3, 2, 4, bias=True) == 72 + 4
    assert separable_conv_params(3, 2, 4, bias=True) == 26 + 4
    assert compare_conv(3, 2, 4, bias=True).param_ratio == pytest.approx(30 / 76)
    # MobileNet's BatchNorm between the steps: a scale and a shift per input channel
    assert separable_conv_params(3, 2, 4, batchnorm=True) == 26 + 2 * 2
    # biases cost no multiply-accumulates
    assert conv_macs(3, 2, 4, 5) == 1800 and separable_conv_macs(3, 2, 4, 5, 7) == 26 * 35
    # a MobileNet layer: 3x3, 512 -> 512 saves 8.8x (the paper's "8 to 9 times")
    assert 1 / separable_ratio(3, 512) == pytest.approx(8.84, abs=0.01)
    assert low_rank_params(300, 784, 50) == 50 * (300 + 784) + 300


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 11), st.integers(1, 512), st.integers(1, 512), st.integers(1, 64))
def test_ratio_is_the_closed_form_for_any_layer(k, i, o, size):
    c = compare_conv(k, i, o, size)
    assert c.separable_params * k * k * o == c.standard_params * (k * k + o)  # exact: 1/O + 1/k^2
    assert c.mac_ratio == pytest.approx(separable_ratio(k, o))


@pytest.mark.parametrize("kwargs, named", [({"k": 0}, "k must be an integer in \\[1, 15\\], got 0"),
                                           ({"i": 5000}, "i must be .* got 5000"),
                                           ({"size": 2.5}, "size must be .* got 2.5")])
def test_calculator_refuses_bad_sizes(kwargs, named):
    args = {"k": 3, "i": 2, "o": 4, "size": 1, **kwargs}
    with pytest.raises(CompressionError, match=named):
        compare_conv(**args)


# ---------------------------------------------------------------------------------------------
# depthwise-separable conversion

@pytest.mark.parametrize("conv", [nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(4, 6, 5, stride=2),
                                  nn.Conv2d(2, 5, (3, 1), padding=(1, 0), bias=False),
                                  nn.Conv2d(6, 6, 3, stride=2, padding=2, dilation=2)])
def test_converted_convolution_keeps_the_output_shape(conv):
    x = torch.randn(2, conv.in_channels, 13, 11)
    model = to_depthwise_separable(nn.Sequential(conv))
    new = model[0]
    assert isinstance(new, SeparableConv2d)
    assert new(x).shape == conv(x).shape
    assert new[0].groups == conv.in_channels and new[3].kernel_size == (1, 1)
    assert (new[3].bias is not None) == (conv.bias is not None)


def test_only_spatial_ungrouped_convs_are_converted():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, groups=4), nn.Conv2d(4, 8, 3))
    out = to_depthwise_separable(model, SeparableConfig(min_in_channels=2))
    assert [type(m).__name__ for m in out] == ["Conv2d", "Conv2d", "Conv2d", "SeparableConv2d"]
    again = to_depthwise_separable(out)  # converting twice changes nothing more than the stem
    assert [type(m).__name__ for m in again] == ["SeparableConv2d", "Conv2d", "Conv2d", "SeparableConv2d"]


def test_layer_table_says_why_a_layer_was_kept():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, groups=4, padding=1),
                          nn.Conv2d(4, 8, 3, padding=1, bias=True), nn.Flatten(), nn.Linear(8 * 36, 5))
    rows = layer_table(model, to_depthwise_separable(model, SeparableConfig(min_in_channels=2)), (1, 6, 6))
    assert [r["change"] for r in rows] == ["kept (I=1, below min_in_channels)", "kept (1x1: nothing to separate)",
                                           "kept (already grouped)", "depthwise-separable", "kept"]
    assert rows[3]["params_after"] == rows[3]["predicted_params"] == 9 * 4 + 2 * 4 + 4 * 8 + 8  # bias on pointwise
    assert all(r["params_after"] == r["predicted_params"] and r["macs_after"] == r["predicted_macs"] for r in rows)


def test_conversion_is_seeded_and_leaves_the_global_rng_alone(cnn):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = to_depthwise_separable(cnn, SeparableConfig(seed=1))
    assert torch.equal(torch.rand(3), expected)
    b = to_depthwise_separable(cnn, SeparableConfig(seed=1))
    assert state_dict_hash(a) == state_dict_hash(b)
    assert state_dict_hash(a) != state_dict_hash(to_depthwise_separable(cnn, SeparableConfig(seed=2)))


# ---------------------------------------------------------------------------------------------
# low-rank factorization

def test_full_rank_factors_reproduce_the_layer(mlp):
    fc1 = mlp[1]  # 784 -> 300
    x = torch.randn(64, 784)
    full = factorize_linear(fc1, 300)
    torch.testing.assert_close(full(x), fc1(x), atol=1e-4, rtol=1e-4)


def test_truncation_error_is_the_discarded_energy(mlp):
    # Eckart-Young: the rank-K SVD truncation is off by exactly sqrt(sum of the discarded s^2)
    w = mlp[3].weight.detach()  # (100, 300)
    s = torch.linalg.svdvals(w)
    layer = factorize_linear(mlp[3], 20)
    product = (layer[1].weight @ layer[0].weight).detach()
    assert float(torch.linalg.norm(w - product)) == pytest.approx(float(s[20:].pow(2).sum().sqrt()), rel=1e-3)
    assert kept_energy(s, 20) == pytest.approx(1 - float(torch.linalg.norm(w - product) ** 2 / (w ** 2).sum()), abs=1e-4)


def test_rank_for_energy_picks_the_smallest_sufficient_rank():
    s = torch.tensor([3.0, 2.0, 1.0])  # energies 9, 4, 1 of 14: 64.3%, 92.9%, 100%
    assert [rank_for_energy(s, e) for e in (0.5, 9 / 14, 0.65, 0.9, 13 / 14, 0.95, 1.0)] == [1, 1, 2, 2, 2, 3, 3]


def test_low_rank_keeps_layers_it_cannot_shrink(mlp):
    x = torch.randn(8, 1, 28, 28)
    same = low_rank(mlp, energy=1.0)  # full rank never stores fewer weights: every layer is kept
    assert count_params(same) == count_params(mlp)
    torch.testing.assert_close(same(x), mlp(x))
    small = low_rank(mlp, rank=10)  # 784x300 and 300x100 shrink; 100x10 at rank 10 would not
    assert [type(m).__name__ for m in small if not isinstance(m, (nn.ReLU, nn.Flatten))] == \
        ["LowRankLinear", "LowRankLinear", "Linear"]


def test_low_rank_at_90_percent_energy_on_mlp(mlp, fmnist):
    from compression.training import accuracy_on
    model = low_rank(mlp, energy=0.9)
    ranks = [m.rank for m in model if hasattr(m, "rank")]
    assert ranks == [111, 50, 9]  # per layer, from the SVD of the trained weights
    assert count_params(model) == sum(low_rank_params(m, n, k) for (m, n), k in
                                      zip([(300, 784), (100, 300), (10, 100)], ranks)) == 141_724
    # the dominant directions are kept: before any retraining the accuracy stays close
    # (measured 89.38% vs 89.80% on all 10k test images; 2000 here)
    before = accuracy_on(mlp, fmnist, "test", limit=2000)
    assert accuracy_on(model, fmnist, "test", limit=2000) > before - 0.02


@pytest.mark.parametrize("kwargs, named", [
    ({"rank": 0}, "rank must be an integer >= 1, got 0"),
    ({"rank": -2}, "rank must be an integer >= 1, got -2"),
    ({"energy": 0.0}, "energy must be a fraction in \\(0, 1\\], got 0.0"),
    ({"energy": 1.5}, "energy must be a fraction in \\(0, 1\\], got 1.5"),
    ({"energy": -0.1}, "energy must be a fraction in \\(0, 1\\], got -0.1"),
    ({}, "exactly one of rank or energy"),
    ({"rank": 4, "energy": 0.5}, "exactly one of rank or energy"),
])
def test_bad_rank_or_energy_is_refused(mlp, kwargs, named):
    with pytest.raises(CompressionError, match=named):
        low_rank(mlp, **kwargs)
    with pytest.raises(CompressionError, match=named):
        LowRankConfig(**kwargs)


def test_config_checks():
    with pytest.raises(CompressionError, match="convert must be one or more of depthwise, low-rank"):
        ArchitectureConfig(convert=("pruning",))
    with pytest.raises(CompressionError, match="rank/energy apply only with the low-rank"):
        ArchitectureConfig(convert=("depthwise",), rank=3)
    with pytest.raises(CompressionError, match="min_in_channels must be .* got 0"):
        ArchitectureConfig(min_in_channels=0)
    with pytest.raises(CompressionError, match="recovery method must be one of finetune, distill"):
        RecoveryConfig(method="prune")
    with pytest.raises(CompressionError, match="alpha must be in \\[0, 1\\], got 2"):
        RecoveryConfig(alpha=2)
    assert ArchitectureConfig(convert="low-rank", energy=0.9).convert == ("low-rank",)


# ---------------------------------------------------------------------------------------------
# the converted zoo cnn: per-layer counts, the whole-model ratios, inputs untouched

def test_converted_counts_equal_the_calculator(cnn):
    converted = convert(cnn, ArchitectureConfig(convert=("depthwise", "low-rank"), rank=16))
    rows = layer_table(cnn, converted, SHAPE)
    assert [r["layer"] for r in rows] == ["0", "4", "8", "13", "16"]
    for r in rows:
        assert r["params_after"] == r["predicted_params"], r
        assert r["macs_after"] == r["predicted_macs"], r
    # hand counts: 3x3 1->16 at 28x28 becomes 9 + 2 (BN) + 16 weights, (9 + 16) * 784 MACs
    assert (rows[0]["params_before"], rows[0]["params_after"]) == (144, 27)
    assert (rows[0]["macs_before"], rows[0]["macs_after"]) == (112_896, 19_600)
    assert rows[2]["params_after"] == 9 * 32 + 2 * 32 + 32 * 64
    assert rows[3]["params_after"] == 16 * (576 + 128) + 128 and rows[4]["change"] == "kept"
    # the rest of the model (BatchNorms after each conv) is untouched, so the totals add up
    delta = sum(r["params_before"] - r["params_after"] for r in rows)
    assert count_params(converted) == count_params(cnn) - delta == 16_021
    assert count_macs(converted, SHAPE) == count_macs(cnn, SHAPE) - sum(r["macs_before"] - r["macs_after"] for r in rows)
    # the issue's target: at most a quarter of the weights and of the MACs
    assert count_params(converted) <= 0.25 * count_params(cnn)
    assert count_macs(converted, SHAPE) <= 0.25 * count_macs(cnn, SHAPE)


def test_depthwise_alone_cannot_shrink_the_cnn_below_a_quarter(cnn):
    # 75% of the cnn's weights are in its Linear head, which depthwise conversion does not touch
    converted = to_depthwise_separable(cnn)
    assert 0.79 < count_params(converted) / count_params(cnn) < 0.80
    assert count_macs(converted, SHAPE) / count_macs(cnn, SHAPE) < 0.17  # the convs hold the MACs


def test_inputs_are_never_modified(cnn, mlp):
    before = state_dict_hash(cnn), state_dict_hash(mlp)
    convert(cnn, ArchitectureConfig(convert=("depthwise", "low-rank"), energy=0.5))
    to_depthwise_separable(cnn)
    low_rank(mlp, rank=5)
    layer_table(mlp, low_rank(mlp, rank=5), SHAPE)
    assert (state_dict_hash(cnn), state_dict_hash(mlp)) == before
    assert not cnn.training and not mlp.training


def test_ds_cnn_is_the_converted_cnn(cnn):
    converted = convert(cnn, ArchitectureConfig(convert=("depthwise", "low-rank"), rank=16))
    designed = ds_cnn(head_rank=16)
    ours, theirs = designed.state_dict(), converted.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    designed.load_state_dict(theirs)  # the same network: weights move between the two
    x = torch.randn(4, *SHAPE)
    torch.testing.assert_close(designed.eval()(x), converted.eval()(x))
    assert count_macs(designed, SHAPE) == count_macs(converted, SHAPE)
    assert build_model("ds_cnn", num_classes=7, in_channels=3, image_size=32)(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


# ---------------------------------------------------------------------------------------------
# recovery: layer matching, training, Stop

def test_layer_matching_beats_the_svd_on_the_data(mlp, fmnist):
    from compression.architecture.recovery import _capture, match_layers
    from compression.training import accuracy_on
    svd = low_rank(mlp, rank=8)
    x = fmnist.normalize(fmnist.train.head(1024).images)
    target = _capture(mlp, "1", x, want="output")
    with torch.no_grad():
        svd_error = float((svd[1](x.flatten(1)) - target).pow(2).mean() / target.pow(2).mean())
    matched, report = match_layers(mlp, svd, fmnist, RecoveryConfig(match_steps=100, match_images=1024))
    # the SVD minimizes the weight error; matching minimizes the output error on the images, from the SVD
    assert [r["layer"] for r in report] == ["1", "3", "5"]
    assert report[0]["relative_error"] < 0.5 * svd_error
    assert accuracy_on(matched, fmnist, "test", limit=1000) > accuracy_on(svd, fmnist, "test", limit=1000) + 0.1
    assert state_dict_hash(svd) != state_dict_hash(matched)  # a trained copy; svd itself untouched


def test_stop_keeps_the_epochs_done(mlp, fmnist):
    from compression.architecture import recovered_result
    cfg = ArchitectureConfig(convert=("low-rank",), rank=8)
    events, before = [], state_dict_hash(mlp)
    result = recovered_result("mlp", convert(mlp, cfg), cfg, RecoveryConfig(epochs=3, subset=512, augment=False),
                              original=mlp, dataset=fmnist, limit=500, progress=events.append,
                              should_stop=lambda: len(events) >= 1)
    assert result.extra["stopped"] and result.config["recover_epochs"] == 1 and len(result.extra["history"]) == 1
    assert result.metrics.params == count_params(convert(mlp, cfg))  # training keeps the structure
    nothing = recovered_result("mlp", convert(mlp, cfg), cfg, RecoveryConfig(epochs=1, subset=512), original=mlp,
                               dataset=fmnist, limit=500, should_stop=lambda: True)
    assert nothing is None  # stopped before the first batch: nothing new to measure
    assert state_dict_hash(mlp) == before and not mlp.training  # the original (teacher) untouched
