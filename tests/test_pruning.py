"""Pruning core: the input is never modified, ratios are exact, structured pruning really removes
channels (and the result exports and reloads), the sparse artifact round-trips bit for bit."""

import io

import pytest
import torch
import torch.nn as nn

from compression import CompressionError
from compression.metrics import count_macs, count_params
from compression.models import build_from_card, load_pretrained, state_dict_bytes, state_dict_hash
from compression.pruning import (FinetuneConfig, PruneConfig, apply_masks, cached_sensitivity, channel_counts,
                                 export_program, layer_table, load_sparse, load_structured, prunable_parameters,
                                 prune, prune_channels, prune_finetune, prune_weights, ratio_schedule, read_sparse,
                                 sparse_bytes, sparse_macs, sparsity, weight_masks)
from compression.training import accuracy_on

SHAPE = (1, 28, 28)
ZOO = ("mlp", "lenet5", "cnn")


@pytest.fixture(scope="module")
def zoo():
    return {name: load_pretrained(name) for name in ZOO}


def _x(n=8, shape=SHAPE):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------------------------------------
# configs

@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, float("nan"), True])
def test_ratio_outside_0_1_is_refused_with_its_value(ratio):
    with pytest.raises(CompressionError, match=r"ratio must be in \[0, 1\), got " + str(ratio)):
        PruneConfig(ratio=ratio)


@pytest.mark.parametrize("kwargs, named", [
    ({"method": "random"}, "random"), ({"scope": "row"}, "row"), ({"importance": "l3"}, "l3"),
    ({"importance": "taylor"}, "taylor")])  # taylor is for structured pruning only
def test_bad_prune_config_named(kwargs, named):
    with pytest.raises(CompressionError, match=named):
        PruneConfig(**kwargs)


@pytest.mark.parametrize("kwargs, named", [({"epochs": -1}, "-1"), ({"steps": 0}, "0"), ({"lr": 0}, "0"),
                                           ({"split": "test"}, "test"), ({"distill": 1.5}, "1.5")])
def test_bad_finetune_config_named(kwargs, named):
    with pytest.raises(CompressionError, match=named):
        FinetuneConfig(**kwargs)


def test_ratio_schedule_ramps_linearly_to_the_target():
    assert ratio_schedule(0.9, 3) == pytest.approx([0.3, 0.6, 0.9])
    assert ratio_schedule(0.5, 1) == [0.5]


# ---------------------------------------------------------------------------------------------
# the input is never modified; ratio 0 changes nothing

@pytest.mark.parametrize("method", ["unstructured", "structured"])
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_original_state_dict_bit_identical_after_pruning(zoo, method, scope):
    for name, model in zoo.items():
        before = state_dict_hash(model)
        pruned = prune(model, PruneConfig(method, 0.7, scope), input_shape=SHAPE)
        assert state_dict_hash(model) == before
        assert pruned is not model


@pytest.mark.parametrize("method", ["unstructured", "structured"])
def test_ratio_zero_gives_identical_predictions(zoo, method):
    x = _x()
    for model in zoo.values():
        pruned = prune(model, PruneConfig(method, 0.0), input_shape=SHAPE)
        assert torch.equal(pruned.eval()(x), model.eval()(x))


def test_finetuning_leaves_the_input_untouched(zoo, fmnist):
    before = state_dict_hash(zoo["mlp"])
    prune_finetune(zoo["mlp"], fmnist, PruneConfig("unstructured", 0.5),
                   FinetuneConfig(epochs=1, subset=256, monitor_images=200))
    assert state_dict_hash(zoo["mlp"]) == before


# ---------------------------------------------------------------------------------------------
# unstructured

@pytest.mark.parametrize("ratio", [0.3, 0.9])
def test_layer_scope_zeroes_exactly_the_fraction_in_every_layer(zoo, ratio):
    for model in zoo.values():
        pruned = prune_weights(model, ratio, scope="layer")
        layers = {}
        for name, p in prunable_parameters(pruned):
            n, z = layers.get(name.rpartition(".")[0], (0, 0))
            layers[name.rpartition(".")[0]] = (n + p.numel(), z + int((p == 0).sum()))
        for n, zeros in layers.values():
            assert zeros == round(ratio * n)


def test_global_scope_zeroes_exactly_the_fraction_overall_with_one_threshold(zoo):
    pruned = prune_weights(zoo["mlp"], 0.9, scope="global")
    params = [p for _, p in prunable_parameters(pruned)]
    total = sum(p.numel() for p in params)
    assert sum(int((p == 0).sum()) for p in params) == round(0.9 * total)
    assert sparsity(pruned) == pytest.approx(0.9, abs=1 / total)
    # one threshold: every kept weight is at least as large as every weight that was removed
    original = {n: p for n, p in prunable_parameters(zoo["mlp"])}
    kept_min = min(p[p != 0].abs().min() for _, p in prunable_parameters(pruned))
    removed_max = max((original[n][p == 0]).abs().max() for n, p in prunable_parameters(pruned))
    assert kept_min >= removed_max
    # layers differ: the 784x300 layer (most redundant) is pruned harder than the 100x10 output
    table = {r["layer"]: r for r in layer_table(zoo["mlp"], pruned)}
    assert table["1"]["kept_weights"] < table["5"]["kept_weights"]


def test_smallest_entries_are_those_a_stable_sort_ranks_first():
    """The linear-time selection (kthvalue, then ties by position) zeroes exactly the entries a stable
    argsort of |w| puts first: stored runs keep their masks."""
    from compression.pruning.unstructured import _zero_smallest_
    gen = torch.Generator().manual_seed(0)
    for _ in range(100):
        tensors = [torch.randint(-4, 5, (int(torch.randint(1, 40, (1,), generator=gen)), 3), generator=gen).float() / 2
                   for _ in range(3)]  # few distinct values: many ties, zeros among them
        ratio = float(torch.rand(1, generator=gen))
        flat = torch.cat([t.reshape(-1).abs() for t in tensors])
        expected = torch.ones(flat.numel(), dtype=torch.bool)
        expected[torch.argsort(flat, stable=True)[:round(ratio * flat.numel())]] = False
        copies = [t.clone() for t in tensors]
        _zero_smallest_(copies, ratio)
        assert torch.equal(torch.cat([c.reshape(-1) for c in copies]),
                           torch.where(expected, torch.cat([t.reshape(-1) for t in tensors]), torch.zeros(())))


@pytest.mark.parametrize("ratio", [0.5, 0.9, 0.995])
def test_sparse_artifact_round_trips_bit_for_bit(zoo, ratio):
    for name, model in zoo.items():
        pruned = prune_weights(model, ratio, scope="global")
        data = sparse_bytes(pruned)
        back = load_sparse(data, lambda: build_from_card(name))
        assert state_dict_hash(back) == state_dict_hash(pruned)
        x = _x()
        assert torch.equal(back(x), pruned.eval()(x))


def test_sparse_size_follows_from_the_encoding(zoo):
    """At density d the bitmask format costs n/8 + 4*d*n bytes (+ header): 0.9 on the mlp must
    stay under 0.2x of the dense fp32 file (1/32 + 0.1 = 0.13x of the raw weights)."""
    model = zoo["mlp"]
    pruned = prune_weights(model, 0.9, scope="global")
    data = sparse_bytes(pruned)
    n = sum(t.numel() for t in pruned.state_dict().values())
    nnz = sum(int(torch.count_nonzero(t)) for t in pruned.state_dict().values())
    assert len(data) <= n / 8 + 4 * nnz + 4096
    assert len(data) <= 0.2 * len(state_dict_bytes(model))
    # at 99.5 % zeros relative indices (1 byte + 4 per entry) beat the bitmask
    tiny = sparse_bytes(prune_weights(model, 0.995, scope="global"))
    assert len(tiny) < n / 8
    import json, struct
    (h,) = struct.unpack("<I", tiny[8:12])
    assert {"gaps"} <= {t["encoding"] for t in json.loads(tiny[12:12 + h])["tensors"]}


def test_corrupt_sparse_file_is_refused():
    with pytest.raises(CompressionError, match="bad magic"):
        read_sparse(b"PK\x03\x04not ours")


def test_masks_keep_pruned_weights_at_zero_through_fine_tuning(zoo, fmnist):
    cfg = PruneConfig("unstructured", 0.9, "global")
    run = prune_finetune(zoo["mlp"], fmnist, cfg, FinetuneConfig(epochs=1, subset=1024, lr=1e-3, monitor_images=200))
    pruned_only = prune_weights(zoo["mlp"], 0.9, scope="global")
    masks = weight_masks(pruned_only)
    for name, p in prunable_parameters(run.model):
        assert not p[~masks[name]].any(), name  # every removed weight is still zero
    assert sparsity(run.model) >= 0.9 - 1e-6
    # ... and fine-tuning changed the kept ones
    assert not torch.equal(run.model[1].weight, pruned_only[1].weight)


def test_distillation_from_the_unpruned_model_keeps_the_masks(zoo, fmnist):
    run = prune_finetune(zoo["mlp"], fmnist, PruneConfig("unstructured", 0.8, "global"),
                         FinetuneConfig(epochs=1, subset=512, distill=0.5, monitor_images=200))
    assert sparsity(run.model) >= 0.8 - 1e-6
    assert all(h["accuracy"] > 0.5 for h in run.history)  # 10 classes: far above chance


def test_apply_masks_zeroes_in_place():
    layer = nn.Sequential(nn.Linear(4, 4))
    masks = {"0.weight": torch.eye(4, dtype=torch.bool), "0.bias": torch.ones(4, dtype=torch.bool)}
    apply_masks(layer, masks)
    assert int(torch.count_nonzero(layer[0].weight)) <= 4


def test_sparse_macs_count_only_nonzero_weights(zoo):
    """An MLP uses each weight once per image, so sparse MACs = nonzero weights exactly; the
    dense count on the executed model does not change (the speed-up is simulated)."""
    pruned = prune_weights(zoo["mlp"], 0.9, scope="global")
    nonzero_weights = sum(int(torch.count_nonzero(p)) for n, p in prunable_parameters(pruned) if n.endswith("weight"))
    assert sparse_macs(pruned, SHAPE) == nonzero_weights
    assert count_macs(pruned, SHAPE) == count_macs(zoo["mlp"], SHAPE)


# ---------------------------------------------------------------------------------------------
# structured

def test_structured_removes_channels_from_every_dependent_layer(zoo):
    model = zoo["cnn"]
    pruned = prune_channels(model, 0.5, input_shape=SHAPE, scope="layer")
    # 16-32-64 conv channels and 128 hidden units, each halved; the 10 outputs kept
    assert list(channel_counts(pruned).values()) == [8, 16, 32, 64, 10]
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in pruned.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [c.in_channels for c in convs] == [1, 8, 16]          # the next conv follows
    assert [b.num_features for b in bns] == [8, 16, 32]          # BatchNorm follows
    assert [b.running_mean.shape[0] for b in bns] == [8, 16, 32]
    assert pruned[13].in_features == 32 * 3 * 3                  # flatten -> linear follows
    assert pruned(_x()).shape == (8, 10)
    # both halves of a conv pair shrink: about a quarter of the MACs and parameters remain
    assert count_params(pruned) < 0.3 * count_params(model)
    assert count_macs(pruned, SHAPE) < 0.3 * count_macs(model, SHAPE)


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_structured_on_every_zoo_model(zoo, name, scope):
    model = zoo[name]
    pruned = prune_channels(model, 0.5, input_shape=SHAPE, scope=scope)
    assert pruned(_x()).shape == (8, 10)
    assert count_params(pruned) < count_params(model)
    before, after = channel_counts(model), channel_counts(pruned)
    assert list(after.values())[-1] == list(before.values())[-1] == 10
    hidden_before, hidden_after = sum(list(before.values())[:-1]), sum(list(after.values())[:-1])
    if scope == "layer":
        assert all(a == max(1, round(b * 0.5)) for a, b in zip(list(after.values())[:-1], before.values()))
    assert hidden_after == round(hidden_before * 0.5)  # global: the same total, spread by importance


def test_extreme_ratio_keeps_at_least_one_channel(zoo):
    pruned = prune_channels(zoo["lenet5"], 0.95, input_shape=SHAPE)
    assert min(channel_counts(pruned).values()) >= 1
    assert channel_counts(pruned)["0"] == 1  # 6 conv1 channels * 0.05 rounds to 0: one is kept
    assert pruned(_x()).shape == (8, 10)


def test_structured_artifact_reloads_and_exports(zoo):
    model = zoo["cnn"]
    pruned = prune_channels(model, 0.5, input_shape=SHAPE, importance="l2").eval()
    x = _x()
    data = state_dict_bytes(pruned)
    back = load_structured(data, lambda: build_from_card("cnn"))
    assert torch.equal(back(x), pruned(x))
    assert len(data) < 0.35 * len(state_dict_bytes(model))
    program = torch.export.load(io.BytesIO(export_program(pruned, SHAPE))).module()
    assert torch.allclose(program(x), pruned(x), atol=1e-5)
    assert program(_x(1)).shape == (1, 10)  # any batch size


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_torchvision_residual_and_depthwise_models(arch):
    import torchvision
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=10).eval()
    before = state_dict_hash(model)
    pruned = prune_channels(model, 0.5, input_shape=(3, 32, 32)).eval()
    assert state_dict_hash(model) == before
    x = _x(2, (3, 32, 32))
    assert pruned(x).shape == (2, 10)
    # halving channels in and out leaves about a quarter of the weights
    assert count_params(pruned) < 0.35 * count_params(model)
    back = load_structured(state_dict_bytes(pruned), lambda: getattr(torchvision.models, arch)(num_classes=10))
    assert torch.equal(back(x), pruned(x))


def test_taylor_importance_uses_gradients(zoo, fmnist):
    batches = list(fmnist.batches("val", 64, limit=128))
    a = prune_channels(zoo["cnn"], 0.5, input_shape=SHAPE, importance="taylor", calibration=batches)
    b = prune_channels(zoo["cnn"], 0.5, input_shape=SHAPE, importance="l1")
    assert channel_counts(a) == channel_counts(b)  # same counts, but other channels chosen
    assert not torch.equal(a[0].weight, b[0].weight)
    with pytest.raises(CompressionError, match="calibration"):
        prune_channels(zoo["cnn"], 0.5, input_shape=SHAPE, importance="taylor")


# ---------------------------------------------------------------------------------------------
# prune -> fine-tune -> repeat

def test_iterative_structured_reaches_the_target_of_the_original_widths(zoo, fmnist):
    run = prune_finetune(zoo["cnn"], fmnist, PruneConfig("structured", 0.5),
                         FinetuneConfig(epochs=1, steps=2, subset=512, lr=1e-3, monitor_images=200))
    assert list(channel_counts(run.model).values()) == [8, 16, 32, 64, 10]  # not 0.75^2 of the widths
    phases = [(h["phase"], h["prune_step"]) for h in run.history]
    assert phases == [("pruned", 1), ("fine-tuned", 1), ("pruned", 2), ("fine-tuned", 2)]
    assert [h["step"] for h in run.history] == [1, 2, 3, 4] and run.history[-1]["steps"] == 4


def test_fine_tuning_recovers_accuracy_lost_to_structured_pruning(zoo, fmnist):
    """Halving every layer of the cnn costs tens of points; one epoch on 2000 images gets most back."""
    run = prune_finetune(zoo["cnn"], fmnist, PruneConfig("structured", 0.5),
                         FinetuneConfig(epochs=1, subset=2000, lr=1e-3, monitor_images=1000))
    pruned_acc, tuned_acc = run.history[0]["accuracy"], run.history[-1]["accuracy"]
    assert pruned_acc < 0.8
    assert tuned_acc > pruned_acc + 0.1


def test_stop_keeps_what_was_done(zoo, fmnist):
    calls = {"n": 0}

    def stop_after_first_step():
        calls["n"] += 1
        return calls["n"] > 1  # the check before step 1 passes, then fine-tuning stops at once

    run = prune_finetune(zoo["mlp"], fmnist, PruneConfig("unstructured", 0.9, "global"),
                         FinetuneConfig(epochs=2, steps=3, subset=256, monitor_images=200), should_stop=stop_after_first_step)
    assert run.stopped and run.steps_done == 1
    assert run.ratio_reached == pytest.approx(0.3)
    assert sparsity(run.model) == pytest.approx(0.3, abs=1e-4)


# ---------------------------------------------------------------------------------------------
# sensitivity

def test_sensitivity_is_cached_and_small_weights_do_not_matter(fmnist, home, monkeypatch):
    rows = cached_sensitivity("mlp", fmnist, method="unstructured", ratios=(0.2, 0.95), limit=1000)
    assert [(r["layer"], r["ratio"]) for r in rows] == [(l, r) for l in ("1", "3", "5") for r in (0.2, 0.95)]
    base = accuracy_on(load_pretrained("mlp"), fmnist, "val", limit=1000)
    by = {(r["layer"], r["ratio"]): r["accuracy"] for r in rows}
    # Han et al.: the smallest 20 % of any layer's weights barely matter
    assert all(abs(by[(l, 0.2)] - base) <= 0.02 for l in ("1", "3", "5"))
    # removing 95 % of the 100x10 output layer hurts more than 20 % of it
    assert by[("5", 0.95)] < by[("5", 0.2)]
    from compression.pruning import layer_sensitivity
    monkeypatch.setattr(layer_sensitivity, "sensitivity",
                        lambda *a, **k: pytest.fail("recomputed despite the cache"))
    assert cached_sensitivity("mlp", fmnist, method="unstructured", ratios=(0.2, 0.95), limit=1000) == rows
    assert cached_sensitivity("mlp", fmnist, method="structured", ratios=(0.2,), only_cached=True) is None


def test_structured_sensitivity_prunes_one_layer_only(zoo, fmnist):
    from compression.pruning.layer_sensitivity import _prune_one_layer
    pruned = _prune_one_layer(zoo["cnn"], "4", 0.5, "structured", "l1", SHAPE, None)
    assert list(channel_counts(pruned).values()) == [16, 16, 64, 128, 10]
