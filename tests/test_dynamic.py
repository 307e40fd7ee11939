"""Dynamic computation core: early exits (the cached sweep against real early-exit inference) and
the slimmable network (every width against the plain cnn it becomes)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from compression import CompressionError
from compression.dynamic import (EarlyExitConfig, WidthConfig, choose_thresholds, curve_thresholds,
                                 early_exit_forward, early_exit_result, exit_costs, exit_table, slim_to_static, sweep,
                                 sweep_shared, train_exits, train_slimmable, width_result)
from compression.metrics import count_macs, count_params
from compression.models import build_model, load_pretrained, state_dict_bytes, state_dict_hash
from compression.training import TrainConfig, accuracy_on, predict

N = 2000  # test images for the table: enough for every exit to be used, fast on 2 cores


@pytest.fixture(scope="module")
def lenet(fmnist):
    return load_pretrained("lenet5_exits")  # 2 exits: after the first conv block, and the full network


@pytest.fixture(scope="module")
def table(lenet, fmnist):
    return exit_table(lenet, fmnist, limit=N)


@pytest.fixture(scope="module")
def cnn3(fmnist):
    model = load_pretrained("cnn_exits")  # 3 exits: after conv blocks 1 and 2, and the full network
    return model, exit_table(model, fmnist, limit=N)


@pytest.fixture(scope="module")
def test_x(fmnist):
    return fmnist.normalize(fmnist.test.images[:N])


def away_from_scores(table, criterion, near: float, exit_k: int = 0) -> float:
    """A threshold near `near` in the middle of the widest nearby gap between exit k's scores, so
    float rounding (batch 1 vs batch 1000 convolutions) cannot flip any image's decision."""
    s = table.scores(criterion)[exit_k].sort().values
    i = int(torch.searchsorted(s, torch.tensor(near, dtype=s.dtype)).clamp(1, len(s) - 1))
    lo, hi = max(1, i - 20), min(len(s) - 1, i + 20)
    gaps = s[lo:hi + 1] - s[lo - 1:hi]
    j = lo + int(gaps.argmax())
    return float((s[j - 1] + s[j]) / 2)


# ---------------------------------------------------------------------------------------------
# exit costs and the two ends of the threshold range

def test_exit_costs_are_the_hand_counts(lenet, cnn3):
    conv1, conv2 = 6 * 25 * 28 * 28, 16 * 6 * 25 * 10 * 10
    head = 6 * 7 * 7 * 32 + 32 * 10          # 294-32-10 head on the max-pooled 6x7x7 map
    fc = 400 * 120 + 120 * 84 + 84 * 10
    assert exit_costs(lenet, (1, 28, 28)) == [conv1 + head, conv1 + head + conv2 + fc]
    assert count_macs(lenet, (1, 28, 28)) == conv1 + conv2 + fc == 416_520  # the full path is lenet5
    c1, c2, c3 = 16 * 9 * 28 * 28, 32 * 16 * 9 * 14 * 14, 64 * 32 * 9 * 7 * 7
    h1, h2 = 16 * 7 * 7 * 32 + 32 * 10, 32 * 3 * 3 * 32 + 32 * 10  # -32-10 heads on max-pooled maps
    fcs = 576 * 128 + 128 * 10
    assert list(cnn3[1].costs) == [c1 + h1, c1 + h1 + c2 + h2, c1 + h1 + c2 + h2 + c3 + fcs]
    assert cnn3[1].full_macs == c1 + c2 + c3 + fcs == 1_994_240  # the full path is cnn


@pytest.mark.parametrize("criterion, never", [("confidence", 1.0), ("entropy", 0.0)])
def test_never_leaving_runs_the_full_network(criterion, never, lenet, table, fmnist, test_x):
    point = sweep(table, criterion, [never])
    assert point.shares[0].tolist() == [0.0, 1.0]
    assert float(point.macs[0]) == table.costs[-1]
    full_preds = predict(lenet, fmnist, limit=N).argmax(1)
    assert torch.equal(table.preds[-1], full_preds)
    logits, where = early_exit_forward(lenet, test_x[:500], EarlyExitConfig(criterion, never))
    assert (where == 1).all()
    assert torch.equal(logits.argmax(1), full_preds[:500])
    assert torch.allclose(logits, lenet(test_x[:500]), atol=1e-5)


@pytest.mark.parametrize("criterion, always", [("confidence", 0.0), ("entropy", 1.0)])
def test_leaving_always_stops_at_the_first_exit(criterion, always, lenet, table, cnn3, test_x):
    point = sweep(table, criterion, [always])
    assert point.shares[0].tolist() == [1.0, 0.0]
    assert float(point.macs[0]) == table.costs[0]
    _, where = early_exit_forward(lenet, test_x[:500], EarlyExitConfig(criterion, always))
    assert (where == 0).all()
    assert sweep(cnn3[1], criterion, [always]).shares[0].tolist() == [1.0, 0.0, 0.0]


# ---------------------------------------------------------------------------------------------
# the vectorized sweep is real early-exit inference, image for image

@pytest.mark.parametrize("which, criterion, near", [
    ("lenet5_exits", "confidence", 0.9), ("lenet5_exits", "confidence", 0.99), ("lenet5_exits", "entropy", 0.2),
    ("cnn_exits", "confidence", 0.9), ("cnn_exits", "entropy", 0.3)])
def test_sweep_equals_real_early_exit_per_image(which, criterion, near, lenet, table, cnn3, test_x):
    model, table = (lenet, table) if which == "lenet5_exits" else cnn3
    taus = tuple(away_from_scores(table, criterion, near, k) for k in range(table.num_exits - 1))
    cfg = EarlyExitConfig(criterion, taus)  # cnn_exits: one threshold per early exit
    point = sweep(table, criterion, [taus])
    expected_exit = point.exit_index[0]
    expected_pred = table.preds.gather(0, expected_exit[None])[0]
    assert 0 < float(point.shares[0][0]) < 1  # a threshold that really splits the images
    one = [early_exit_forward(model, test_x[i:i + 1], cfg) for i in range(150)]  # batch 1
    assert [int(k) for _, k in one] == expected_exit[:150].tolist()
    assert [int(lg.argmax()) for lg, _ in one] == expected_pred[:150].tolist()
    logits, where = early_exit_forward(model, test_x, cfg)  # batched, exited images dropped
    assert torch.equal(where, expected_exit)
    assert torch.equal(logits.argmax(1), expected_pred)


def test_mean_macs_are_shares_times_costs_and_what_the_flop_counter_sees(lenet, table, test_x):
    t = away_from_scores(table, "confidence", 0.95)
    point = sweep(table, "confidence", [t])
    shares = point.shares[0].tolist()
    assert float(point.macs[0]) == pytest.approx(sum(s * c for s, c in zip(shares, table.costs)), rel=1e-12)
    counter = FlopCounterMode(display=False)
    with counter:  # count what the real early-exit inference executes on all N images
        early_exit_forward(lenet, test_x, EarlyExitConfig("confidence", t))
    assert counter.get_total_flops() // 2 / N == pytest.approx(float(point.macs[0]), rel=1e-12)
    assert table.costs[0] < float(point.macs[0]) < table.costs[-1]


@pytest.mark.parametrize("criterion", ["confidence", "entropy"])
def test_shared_threshold_sweep_by_sorting_equals_the_image_by_image_sweep(criterion, table, cnn3):
    for t in (table, cnn3[1]):
        taus = curve_thresholds(t, criterion, 200)
        fast, slow = sweep_shared(t, criterion, taus), sweep(t, criterion, taus)
        for a, b in ((fast.shares, slow.shares), (fast.accuracy, slow.accuracy), (fast.macs, slow.macs),
                     (fast.exit_accuracy.nan_to_num(-1), slow.exit_accuracy.nan_to_num(-1))):
            assert torch.allclose(a, b, rtol=0, atol=1e-12)


def test_sweep_over_200_thresholds(table):
    taus = curve_thresholds(table, "confidence", 200)
    assert len(taus) >= 150 and float(taus[0]) == 0.0 and float(taus[-1]) == 1.0
    s = sweep_shared(table, "confidence", taus)
    assert torch.allclose(s.shares.sum(1), torch.ones(len(taus), dtype=torch.float64))
    # a higher confidence threshold lets fewer images out early: mean MACs never fall
    assert (s.macs.diff() >= 0).all()
    # accuracy is the share-weighted accuracy of the exits
    weighted = (s.shares * s.exit_accuracy.nan_to_num(0)).sum(1)
    assert torch.allclose(weighted, s.accuracy, atol=1e-12)


def test_choose_thresholds_keeps_the_accuracy_drop(table):
    full = float(table.correct[-1].float().mean())
    for shared in (False, True):
        taus = choose_thresholds(table, "confidence", max_drop=0.01, shared=shared)
        point = sweep(table, "confidence", [taus])
        assert float(point.accuracy[0]) >= full - 0.01 - 1e-6
        assert float(point.macs[0]) < table.full_macs  # something leaves early


def test_result_is_measured_and_the_model_untouched(lenet, table, fmnist):
    before = state_dict_hash(lenet)
    cfg = EarlyExitConfig("confidence", (0.95,))
    r = early_exit_result(lenet, fmnist, cfg, name="lenet5_exits", table=table, latency_images=30,
                          throughput_batches=1)
    assert state_dict_hash(lenet) == before
    point = sweep(table, "confidence", [0.95])
    d = r.to_dict()
    assert d["method"] == "early-exit" and d["simulated"] is False and d["accuracy_n"] == N
    assert d["simulated_metrics"] == []  # real early exit: MACs and latency measured as it runs
    assert d["macs"] == pytest.approx(float(point.macs[0])) and d["accuracy"] == pytest.approx(float(point.accuracy[0]))
    assert d["baseline"]["macs"] == 416_520 and d["size_bytes"] == len(state_dict_bytes(lenet))
    assert d["exit_shares"] == pytest.approx(point.shares[0].tolist(), abs=1e-6)
    assert d["latency_ms"] > 0 and d["full_latency_ms"] > 0 and d["throughput"] > 0
    assert d["macs_ratio"] == pytest.approx(d["macs"] / 416_520, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# slimmable cnn

def hand_count(width: float) -> tuple[int, int]:
    """(params, MACs) of cnn at `width`: 3x3 convs without bias + BN (2 per channel) on 28/14/7
    maps, then 9*c3 -> hidden -> 10."""
    c1, c2, c3, h = (max(1, round(c * width)) for c in (16, 32, 64, 128))
    params = 9 * c1 + 2 * c1 + 9 * c1 * c2 + 2 * c2 + 9 * c2 * c3 + 2 * c3 + 9 * c3 * h + h + 10 * h + 10
    macs = 9 * c1 * 28 * 28 + 9 * c1 * c2 * 14 * 14 + 9 * c2 * c3 * 7 * 7 + 9 * c3 * h + 10 * h
    return params, macs


@pytest.fixture(scope="module")
def slim():
    return load_pretrained("cnn_slim")


@pytest.mark.parametrize("width, params, macs", [(0.25, 6_502, 146_048), (0.5, 25_090, 527_104),
                                                 (0.75, 55_774, 1_143_168), (1.0, 98_554, 1_994_240)])
def test_each_width_matches_the_hand_count(width, params, macs, slim, test_x):
    assert hand_count(width) == (params, macs)
    static = slim_to_static(slim, width)
    assert (count_params(static), count_macs(static, (1, 28, 28))) == (params, macs)
    assert count_macs(slim_model_at(slim, width), (1, 28, 28)) == macs  # the slimmable forward itself
    with torch.inference_mode():
        assert torch.allclose(slim(test_x[:256], width), static(test_x[:256]), atol=1e-5)


def slim_model_at(slim, width):
    class At(torch.nn.Module):
        def forward(self, x):
            return slim(x, width)
    return At()


def test_width_one_is_the_full_cnn(slim, test_x):
    static = slim_to_static(slim, 1.0)
    plain = build_model("cnn")
    plain.load_state_dict(static.state_dict())  # exactly cnn's keys and shapes
    plain.eval()
    with torch.inference_mode():
        assert torch.equal(slim(test_x[:256]), slim(test_x[:256], 1.0))
        assert torch.allclose(slim(test_x[:256]), plain(test_x[:256]), atol=1e-5)


def test_half_width_costs_at_most_0_3_of_full(slim, fmnist):
    before = state_dict_hash(slim)
    r = width_result(slim, fmnist, WidthConfig(0.5), name="cnn_slim", limit=1000)
    assert state_dict_hash(slim) == before
    assert r.metrics.macs / r.baseline.macs <= 0.3
    assert r.metrics.params == 25_090 and r.metrics.size_bytes < r.baseline.size_bytes / 3
    assert r.metrics.accuracy > 0.8 and r.method == "width" and r.metrics.simulated is False
    assert r.to_dict()["simulated_metrics"] == []


# ---------------------------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("kwargs, named", [
    ({"thresholds": (1.5,)}, "1.5"), ({"thresholds": (-0.1,)}, "-0.1"), ({"thresholds": (float("nan"),)}, "nan"),
    ({"thresholds": ()}, "at least one"), ({"criterion": "margin"}, "margin"), ({"thresholds": ("high",)}, "high"),
])
def test_bad_exit_config_is_named(kwargs, named):
    with pytest.raises(CompressionError, match=named):
        EarlyExitConfig(**kwargs)


def test_wrong_number_of_thresholds(lenet, cnn3, test_x):
    with pytest.raises(CompressionError, match="2 thresholds given for 1 early exit; give 1"):
        early_exit_forward(lenet, test_x[:2], EarlyExitConfig("confidence", (0.5, 0.5)))
    with pytest.raises(CompressionError, match="3 thresholds given for 2 early exits; give 1 or 2"):
        early_exit_forward(cnn3[0], test_x[:2], EarlyExitConfig("confidence", (0.5, 0.5, 0.5)))


@pytest.mark.parametrize("width", [0, -0.5, 1.5, float("nan")])
def test_bad_width_is_named(width):
    with pytest.raises(CompressionError, match="width must be in"):
        WidthConfig(width)


def test_untrained_width_is_refused(slim):
    with pytest.raises(CompressionError, match="width 0.3 is not one this model was trained for; choose one of 0.25"):
        slim_to_static(slim, 0.3)


def test_plain_models_are_refused(fmnist):
    with pytest.raises(CompressionError, match="no early exits"):
        exit_table(load_pretrained("lenet5"), fmnist, limit=10)
    with pytest.raises(CompressionError, match="not slimmable"):
        width_result(load_pretrained("lenet5"), fmnist, WidthConfig(0.5), name="lenet5")


# ---------------------------------------------------------------------------------------------
# training

def test_joint_training_teaches_every_exit(fmnist):
    torch.manual_seed(0)
    model = build_model("lenet5_exits")
    before = state_dict_hash(model)
    result = train_exits(model, fmnist, TrainConfig(epochs=2, subset=3000, lr=2e-3))
    assert state_dict_hash(model) == before and result.model is not model
    t = exit_table(result.model, fmnist, split="val", limit=1000)
    # 10 classes: chance is 10 %; two epochs on 3k images must do far better at every exit
    assert (t.correct.float().mean(1) > 0.5).all()


def test_slimmable_training_teaches_every_width(fmnist):
    torch.manual_seed(0)
    model = build_model("cnn_slim")
    result = train_slimmable(model, fmnist, TrainConfig(epochs=1, subset=4000, lr=2e-3, schedule="constant"))
    for w in (0.25, 1.0):  # 31 steps: every width well above chance (10 %), not yet converged
        assert accuracy_on(slim_to_static(result.model, w), fmnist, "val", limit=1000) > 0.3


def test_methods_that_rebuild_layers_refuse_a_slimmable_model_by_name():
    # before: structured pruning returned cnn_slim unchanged as a "0.5" result, and architecture
    # conversion failed with an AttributeError
    from compression.architecture import ArchitectureConfig, convert
    from compression.pruning import prune_channels
    slim = load_pretrained("cnn_slim")
    with pytest.raises(CompressionError, match="structured pruning does not support slimmable models"):
        prune_channels(slim, 0.5, input_shape=(1, 28, 28))
    with pytest.raises(CompressionError, match="architecture conversion does not support slimmable models"):
        convert(slim, ArchitectureConfig(convert=("depthwise",)))


def test_activation_quantization_of_multi_exit_and_slimmable_models(fmnist):
    from compression.quantization import QuantConfig, quantize
    qm = quantize(load_pretrained("lenet5_exits"), QuantConfig(bits=8, activation_bits=8, calibration_size=256),
                  dataset=fmnist)
    # the full network's layers get ranges; the early exit head does not run in it and stays float
    assert set(qm.activations) == {"stages.0.0", "stages.1.0", "stages.1.4", "stages.1.6", "exits.1"}
    with pytest.raises(CompressionError, match="computes convs.0, convs.1, convs.2, fc1, fc2 from their weights"):
        quantize(load_pretrained("cnn_slim"), QuantConfig(bits=8, activation_bits=8, calibration_size=256),
                 dataset=fmnist)
