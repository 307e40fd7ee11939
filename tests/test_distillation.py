"""Knowledge distillation core: the loss, softened probabilities, the teacher-logits cache, the
student's init and data order, the transfer set, and the messages for bad input."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from compression import CompressionError
from compression.distillation import (DistillConfig, StudentSpec, build_student, clear_memory_cache, distill,
                                      distillation_loss, entropy_bits, masked_distillation_loss, soft_targets,
                                      softened_probabilities, teacher_logits, train_student)
from compression.distillation.student import _hard_weights
from compression.models import load_pretrained, state_dict_bytes, state_dict_hash
from compression.training import predict


@pytest.fixture(scope="module")
def small(fmnist):
    """Fashion-MNIST with 3,000 training and 1,000 validation images (test split whole; pass limit=)."""
    return dataclasses.replace(fmnist, train=fmnist.train.head(3000), val=fmnist.val.head(1000))


@pytest.fixture(scope="module")
def cnn():
    return load_pretrained("cnn")


def _batch(seed=0, b=32, c=10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g) * 3, torch.randn(b, c, generator=g) * 3, torch.randint(0, c, (b,), generator=g)


# ---------------------------------------------------------------------------------------------
# the loss

def test_alpha_zero_is_cross_entropy():
    s, t, y = _batch()
    for T in (1.0, 4.0, 20.0):
        assert torch.equal(distillation_loss(s, t, y, temperature=T, alpha=0.0), F.cross_entropy(s, y))
        masked = masked_distillation_loss(s, soft_targets(t, T), y, temperature=T, alpha=0.0,
                                          hard_weight=torch.ones(len(y)))
        assert torch.allclose(masked, F.cross_entropy(s, y), atol=1e-6)


@pytest.mark.parametrize("T", [1.0, 2.5, 10.0])
def test_alpha_one_has_zero_gradient_at_the_teacher(T):
    _, t, y = _batch(1)
    s = t.clone().requires_grad_(True)
    distillation_loss(s, t, y, temperature=T, alpha=1.0).backward()
    assert s.grad.abs().max() < 1e-6  # KL(p || p) is the minimum: its gradient vanishes
    s2 = t.clone().requires_grad_(True)
    masked_distillation_loss(s2, soft_targets(t, T), y, temperature=T, alpha=1.0,
                             hard_weight=torch.ones(len(y))).backward()
    assert s2.grad.abs().max() < 1e-6
    # ... while the hard term alone would still pull towards the labels
    s3 = t.clone().requires_grad_(True)
    distillation_loss(s3, t, y, temperature=T, alpha=0.5).backward()
    assert s3.grad.abs().max() > 1e-3


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (2.0, 0.7), (4.0, 0.9), (20.0, 0.3)])
def test_matches_a_hand_written_computation_with_t_squared(T, alpha):
    s, t, y = _batch(2)
    kl = 0.0
    ce = 0.0
    for i in range(len(y)):
        p = [math.exp(v / T) for v in t[i].tolist()]
        q = [math.exp(v / T) for v in s[i].tolist()]
        p = [v / sum(p) for v in p]
        q = [v / sum(q) for v in q]
        kl += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
        e = [math.exp(v) for v in s[i].tolist()]
        ce += -math.log(e[int(y[i])] / sum(e))
    expected = alpha * T * T * kl / len(y) + (1 - alpha) * ce / len(y)
    got = distillation_loss(s, t, y, temperature=T, alpha=alpha)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    masked = masked_distillation_loss(s, soft_targets(t, T), y, temperature=T, alpha=alpha,
                                      hard_weight=torch.ones(len(y)))
    assert masked.item() == pytest.approx(expected, rel=1e-5)


def test_soft_gradient_scale_is_independent_of_t_for_large_t():
    """Hinton et al.: the soft term's gradient is (q - p) * T, so T^2 scaling keeps it ~ (s - t) / C."""
    s, t, y = _batch(3)
    s, t = s * 0.1, t * 0.1  # small logits: the high-temperature limit holds already at T = 10
    norms = []
    for T in (10.0, 40.0):
        x = s.clone().requires_grad_(True)
        distillation_loss(x, t, y, temperature=T, alpha=1.0).backward()
        norms.append(x.grad.norm().item())
    assert norms[0] == pytest.approx(norms[1], rel=0.02)


def test_unknown_labels_never_reach_the_loss():
    s, t, y = _batch(4, b=64)
    s.requires_grad_(True)
    known = torch.arange(64) < 20
    w = known.float() * 3.0
    other = torch.where(known, y, (y + 3) % 10)  # different labels where the label is unknown
    a = masked_distillation_loss(s, soft_targets(t, 2.0), y, temperature=2.0, alpha=0.6, hard_weight=w)
    ga, = torch.autograd.grad(a, s)
    b = masked_distillation_loss(s, soft_targets(t, 2.0), other, temperature=2.0, alpha=0.6, hard_weight=w)
    gb, = torch.autograd.grad(b, s)
    assert torch.equal(a, b) and torch.equal(ga, gb)
    # rows without a label get the soft gradient only: the same as at alpha = 1 (scaled by alpha)
    c = masked_distillation_loss(s, soft_targets(t, 2.0), y, temperature=2.0, alpha=1.0, hard_weight=w)
    gc, = torch.autograd.grad(c, s)
    assert torch.allclose(ga[~known], 0.6 * gc[~known], atol=1e-7)


def test_transfer_set_loss_is_exact_over_an_epoch():
    """Summed over the batches of one epoch, the per-batch losses give exactly
    N * (alpha T^2 mean KL over all N images + (1 - alpha) mean CE over the labeled ones)."""
    n, labeled, T, alpha = 200, 30, 3.0, 0.7
    s, t, y = _batch(5, b=n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    total = 0.0
    for start in range(0, n, 16):
        idx = order[start:start + 16]
        loss = masked_distillation_loss(s[idx], soft_targets(t[idx], T), y[idx], temperature=T, alpha=alpha,
                                        hard_weight=_hard_weights(idx, labeled, n))
        total += loss.item() * len(idx)
    kl = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), reduction="none", log_target=True).sum(1)
    ce = F.cross_entropy(s[:labeled], y[:labeled])
    expected = n * (alpha * T * T * kl.mean().item() + (1 - alpha) * ce.item())
    assert total == pytest.approx(expected, rel=1e-5)


def test_hard_weights_mark_the_first_n_images_as_labeled():
    w = _hard_weights(torch.tensor([0, 299, 300, 2999]), labeled=300, transfer=3000)
    assert w.tolist() == [10.0, 10.0, 0.0, 0.0]


def test_ensemble_soft_targets_are_the_mean_distribution():
    _, t, _ = _batch(6)
    t2 = t.flip(1)
    mean = (softened_probabilities(t, 3.0) + softened_probabilities(t2, 3.0)) / 2
    assert torch.allclose(soft_targets(torch.stack([t, t2]), 3.0).exp(), mean, atol=1e-6)
    assert torch.allclose(soft_targets(torch.stack([t, t]), 3.0), soft_targets(t, 3.0), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# softened probabilities

@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-20, 20), min_size=3, max_size=10).filter(lambda v: max(v) - min(v) > 0.1),
       st.floats(0.2, 10), st.floats(1.1, 5))
def test_entropy_grows_with_t_and_argmax_stays(logits, t_low, factor):
    z = torch.tensor(logits, dtype=torch.float64)
    low, high = softened_probabilities(z, t_low), softened_probabilities(z, t_low * factor)
    # d/dT H(softmax(z / T)) = Var_p(z) / T^3 >= 0: strictly more spread for non-constant logits
    assert entropy_bits(high) >= entropy_bits(low) - 1e-9
    assert entropy_bits(high) <= math.log2(len(logits)) + 1e-9
    assert torch.isclose(high.sum(), torch.tensor(1.0, dtype=torch.float64))
    # argmax unchanged, up to ties: logits equal to the max within float64 rounding (hypothesis
    # found 0.0 vs -1.2e-38) may swap places once divided by T
    assert z[high.argmax()] >= z.max() - 1e-12 and z[low.argmax()] >= z.max() - 1e-12


def test_teacher_soft_labels_soften_on_real_images(fmnist, cnn):
    logits = predict(cnn, fmnist, "test", limit=200)
    ents = [entropy_bits(softened_probabilities(logits, T)).mean().item() for T in (1, 2, 4, 8, 20)]
    assert all(b > a for a, b in zip(ents, ents[1:]))
    assert ents[0] < 0.8 and ents[-1] > 3.0  # confident at T=1; near uniform (log2 10 = 3.32 bits) at T=20
    for T in (2, 4, 8, 20):
        assert torch.equal(softened_probabilities(logits, T).argmax(1), logits.argmax(1))


# ---------------------------------------------------------------------------------------------
# teacher logits cache

def test_teacher_logits_are_cached_in_memory_then_on_disk(fmnist, cnn, home):
    clear_memory_cache()
    seen = []
    handle = cnn.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[0]))
    try:
        first = teacher_logits(cnn, fmnist, 1500)
        assert sum(seen) == 1500
        again = teacher_logits(cnn, fmnist, 1500)
        assert sum(seen) == 1500 and torch.equal(first, again)  # memory hit: no teacher forward
        more = teacher_logits(cnn, fmnist, 2000)
        assert sum(seen) == 2000 and torch.equal(more[:1500], first)  # only the 500 missing images
        clear_memory_cache()
        disk = teacher_logits(cnn, fmnist, 2000)
        assert sum(seen) == 2000 and torch.equal(disk, more)  # disk hit
    finally:
        handle.remove()
    assert list((home / "cache" / "teacher_logits").glob("*.pt"))
    expected = predict(cnn, fmnist, "train", limit=2000)
    assert torch.allclose(disk, expected, atol=1e-5)
    # another teacher (other weights) gets its own entry
    other = load_pretrained("lenet5")
    assert not torch.allclose(teacher_logits(other, fmnist, 100), disk[:100])


def test_the_teacher_is_never_modified(small, cnn):
    before = state_dict_hash(cnn)
    student = build_student(StudentSpec("lenet5"), input_shape=small.input_shape, num_classes=10, seed=0)
    train_student(student, [cnn], small, DistillConfig(epochs=1, train_subset=500), )
    assert state_dict_hash(cnn) == before and not cnn.training
    # a teacher handed over in train mode stays in train mode, and BatchNorm statistics stay put
    cnn.train()
    try:
        clear_memory_cache()
        teacher_logits(cnn, small, 700)
        assert cnn.training and state_dict_hash(cnn) == before
    finally:
        cnn.eval()


# ---------------------------------------------------------------------------------------------
# the student: seeded init, same data order with and without the teacher

def test_student_starts_from_the_seeded_init(small, cnn):
    rng = torch.get_rng_state()
    a = build_student(StudentSpec("lenet5"), input_shape=(1, 28, 28), num_classes=10, seed=3)
    b = build_student(StudentSpec("lenet5"), input_shape=(1, 28, 28), num_classes=10, seed=3)
    c = build_student(StudentSpec("lenet5"), input_shape=(1, 28, 28), num_classes=10, seed=4)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is left alone
    assert state_dict_hash(a) == state_dict_hash(b) != state_dict_hash(c)
    # stopped before the first step: what comes back is the init itself (and a copy)
    run = train_student(a, [cnn], small, DistillConfig(epochs=1, train_subset=500), should_stop=lambda: True)
    assert run.stopped and state_dict_hash(run.model) == state_dict_hash(a) and run.model is not a


def test_width_reduced_copy_of_the_teacher():
    s = build_student(StudentSpec("cnn", width=0.5), input_shape=(1, 28, 28), num_classes=10, teacher="cnn")
    assert sum(p.numel() for p in s.parameters()) < 98554 / 3  # conv params scale ~ width^2


def test_same_init_and_data_order_with_and_without_teacher(small, cnn):
    """A teacher with a vanishing weight must give the hard-label student back: that holds only if
    both start from the same weights and see the same batches in the same order."""
    init = build_student(StudentSpec("lenet5"), input_shape=small.input_shape, num_classes=10, seed=1)
    cfg = DistillConfig(epochs=1, train_subset=600, temperature=4.0)
    hard = train_student(init, [cnn], small, cfg.hard_label_baseline())
    nearly = train_student(init, [cnn], small, dataclasses.replace(cfg, alpha=1e-9))
    other_seed = train_student(init, [cnn], small, dataclasses.replace(cfg.hard_label_baseline(), seed=7))
    diff = lambda a, b: max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))
    assert diff(hard.model, nearly.model) < 1e-4
    assert diff(hard.model, other_seed.model) > 1e-2  # another order moves the weights far more


def test_soft_labels_alone_teach_the_classes(small, cnn):
    """alpha = 1 on the transfer set: 30 labels exist but carry no weight, so everything the student
    knows comes from the teacher; 10 classes make chance 10 %."""
    init = build_student(StudentSpec("lenet5"), input_shape=small.input_shape, num_classes=10, seed=0)
    run = train_student(init, [cnn], small, DistillConfig(epochs=2, alpha=1.0, temperature=2.0, train_subset=30,
                                                          transfer_set="all"))
    assert run.history[-1]["val_accuracy"] > 0.6


# ---------------------------------------------------------------------------------------------
# runs with results

def test_distill_yields_hard_labels_then_students_and_caches_the_baseline(small, home):
    events = []
    cfg = DistillConfig(epochs=1, train_subset=500, temperature=2.0, alpha=0.7)
    out = list(distill(["cnn"], StudentSpec("lenet5"), small, cfg, limit=500, progress=events.append))
    assert [o.role for o in out] == ["hard labels", "distilled"]
    hard, dist = (o.result for o in out)
    assert hard.config["alpha"] == 0 and hard.config["temperature"] is None and dist.config["temperature"] == 2.0
    for o in out:
        r = o.result
        assert r.method == "distill" and r.model == "cnn" and r.device == "cpu"
        assert r.metrics.size_bytes == len(o.artifact) and r.metrics.params == 61706  # the file as written
        assert o.artifact.endswith(state_dict_bytes(o.model))  # container header + the student's state_dict
        assert r.metrics.accuracy_n == 500 and r.baseline.params == 98554  # the teacher is the reference
        assert r.extra["labeled_images"] == 500 and r.extra["epochs_done"] == 1
    assert dist.extra["gain_vs_hard_labels"] == pytest.approx(dist.metrics.accuracy - hard.metrics.accuracy)
    assert [(e["run"], e["step"], e["steps"]) for e in events] == [
        ("hard labels (no teacher)", 1, 2), ("distilled T=2, α=0.7", 2, 2)]
    # another temperature: the hard-label student comes from the cache, identical, not retrained
    again = list(distill(["cnn"], StudentSpec("lenet5"), small, dataclasses.replace(cfg, temperature=5.0), limit=500))
    assert again[0].cached and not out[0].cached
    assert state_dict_hash(again[0].model) == state_dict_hash(out[0].model)
    assert again[1].result.config["temperature"] == 5.0


def test_sweep_and_transfer_set(small, home):
    cfg = DistillConfig(epochs=1, train_subset=300, alpha=0.9, transfer_set="all")
    out = list(distill(["cnn"], StudentSpec("mlp", width=0.5), small, cfg, temperatures=[1.0, 4.0], limit=300))
    assert [o.result.config["temperature"] for o in out] == [None, 1.0, 4.0]
    assert out[0].result.extra["transfer_images"] == 300  # the baseline sees the labeled images only
    assert out[1].result.extra["transfer_images"] == 3000 and out[1].result.extra["labeled_images"] == 300
    assert out[1].result.metrics.params == 784 * 150 + 150 + 150 * 50 + 50 + 50 * 10 + 10


def test_ensemble_of_teachers(small, home):
    out = list(distill(["cnn", "lenet5"], StudentSpec("lenet5", width=0.5), small,
                       DistillConfig(epochs=1, train_subset=300), baseline=False, limit=300))
    assert [o.role for o in out] == ["distilled"] and out[0].result.model == "cnn+lenet5"


def test_stop_keeps_the_partial_student(small, home):
    calls = [0]

    def stop_later():
        calls[0] += 1
        return calls[0] > 3
    out = list(distill(["cnn"], StudentSpec("lenet5"), small, DistillConfig(epochs=3, train_subset=1000),
                       limit=200, should_stop=stop_later))
    assert len(out) == 1 and out[0].result.extra["stopped"]  # the distilled student never started
    assert out[0].result.extra["epochs_done"] == 1


# ---------------------------------------------------------------------------------------------
# bad input: one clear message naming the value

@pytest.mark.parametrize("kwargs, named", [
    ({"temperature": 0}, "temperature must be in (0, 100], got 0"),
    ({"temperature": -2.0}, "-2.0"),
    ({"alpha": 1.5}, "alpha must be in [0, 1], got 1.5"),
    ({"alpha": -0.1}, "-0.1"),
    ({"epochs": 0}, "epochs must be an integer in [1, 1000], got 0"),
    ({"train_subset": 0}, "got 0"),
    ({"transfer_set": "some"}, "'some'"),
    ({"alpha": 0.0, "transfer_set": "all"}, "alpha 0"),
    ({"lr": 0.0}, "learning rate"),
])
def test_bad_config_is_named(kwargs, named):
    with pytest.raises(CompressionError) as err:
        DistillConfig(**kwargs)
    assert named in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("spec, shape, named", [
    (dict(architecture="cnn", width=1.5), (1, 28, 28), "must not be wider than it: width must be in (0, 1], got 1.5"),
    (dict(architecture="lenet5", width=5.0), (1, 28, 28), "student width must be in (0, 4], got 5.0"),
    (dict(architecture="lenet5"), (1, 8, 8), "student lenet5 cannot take 1x8x8 images"),
    (dict(architecture="resnet9000"), (1, 28, 28), "unknown architecture 'resnet9000'"),
    (dict(architecture="lenet5", width=0.5, init="pretrained"), (1, 28, 28), "got width 0.5"),
    (dict(architecture="lenet5", init="magic"), (1, 28, 28), "'magic'"),
])
def test_bad_student_is_named(spec, shape, named):
    with pytest.raises(CompressionError) as err:
        build_student(StudentSpec(**spec), input_shape=shape, num_classes=10, teacher="cnn")
    assert named in str(err.value) and "\n" not in str(err.value)


def test_multi_exit_and_slimmable_students_are_refused_by_name():
    # their builders have no width multiplier, and distillation would train one classifier only
    from compression.distillation import StudentSpec, build_student
    from compression.models import takes_width
    assert takes_width("lenet5") and takes_width("ds_cnn") and not takes_width("lenet5_exits")
    for name in ("lenet5_exits", "cnn_exits", "cnn_slim"):
        with pytest.raises(CompressionError, match=f"student '{name}' is not a plain classifier"):
            build_student(StudentSpec(name), input_shape=(1, 28, 28), num_classes=10)
