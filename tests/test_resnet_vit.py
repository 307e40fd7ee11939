"""The residual network and the vision transformer: builders without weights yet (not in the zoo
until trained), their recipes, and structured pruning that respects residual additions and heads."""

import pytest
import torch

from compression import CompressionError
from compression.metrics import count_macs, count_params
from compression.models import architecture_names, build_model, state_dict_hash, zoo_names
from compression.zoo import pending_names, recipe_config, training_card

SHAPE = (1, 28, 28)


def test_recipes_join_the_zoo_once_trained():
    """resnet and vit were trained here (a card and a checkpoint each); a recipe without a card is
    pending: built and trainable, not offered as a pretrained model."""
    assert {"resnet", "vit"} <= set(architecture_names())
    assert {"resnet", "vit"} <= set(zoo_names())
    recipes = {"resnet", "vit", "resnet_exits", "vit_exits"}
    assert set(pending_names()) == recipes - set(zoo_names())


def test_shapes_params_and_macs():
    torch.manual_seed(0)
    res, vit = build_model("resnet"), build_model("vit")
    x = torch.randn(3, *SHAPE)
    assert res(x).shape == vit(x).shape == (3, 10)
    # ResNet-8: stem 3x3x1x16 at 28x28, blocks 16-16 (28x28), 16-32 (14x14, 1x1 projection), 32-64 (7x7)
    assert count_params(res) == 77_754 and count_macs(res, SHAPE) == 9_345_920
    # ViT: 4 blocks of 4 heads x 16 at width 64, MLP 128, 17 tokens; <= 0.25 M parameters (the issue)
    assert count_params(vit) == 139_018 <= 250_000
    assert vit.blocks[0].attn.num_heads == 4 and vit.blocks[0].attn.head_dim == 16
    assert count_macs(vit, SHAPE) == 2_427_008  # linear layers and both attention matmuls
    assert build_model("resnet", depth=14, width=0.5, in_channels=3, image_size=32)(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(CompressionError, match="got 9"):
        build_model("resnet", depth=9)
    with pytest.raises(CompressionError, match="patch size 5 must divide the image size 28"):
        build_model("vit", patch=5)


def test_exit_variants_follow_the_multi_exit_convention():
    from compression.dynamic import resnet_exits, vit_exits
    from compression.model_kinds import is_multi_exit
    x = torch.randn(2, *SHAPE)
    for model, exits in ((resnet_exits(), 3), (vit_exits(), 4)):
        model.eval()
        assert is_multi_exit(model) and model.num_exits == exits
        outs = model.forward_all(x)
        assert [o.shape for o in outs] == [(2, 10)] * exits
        assert torch.equal(outs[-1], model(x))  # the full path is the plain network


@pytest.mark.parametrize("name", ["resnet", "vit", "resnet_exits", "vit_exits"])
def test_recipe_trains_a_few_steps(name, fmnist):
    """Smoke test of the recipe a later session runs with `python -m compression zoo train NAME`:
    the card's builder, its trainer and TrainConfig, on 64 images for one epoch (64 to evaluate)."""
    from dataclasses import replace
    from compression.zoo import _trainer, DEFAULT_TRAINER
    from compression.models import _resolve_builder
    card = training_card(name)
    cfg = replace(recipe_config(card["recipe"]), epochs=1, subset=64, batch_size=32)
    model = _resolve_builder(card)(**card["builder_kwargs"])
    before = state_dict_hash(model)
    tiny = replace(fmnist, val=fmnist.val.head(64))
    result = _trainer(card["recipe"].get("trainer", DEFAULT_TRAINER))(model, tiny, cfg)
    assert state_dict_hash(model) == before and state_dict_hash(result.model) != before
    assert result.history[-1]["epoch"] == 1


def test_unknown_training_name_lists_the_choices():
    with pytest.raises(CompressionError, match="unknown model 'resnet9000'.*vit"):
        training_card("resnet9000")


# ---------------------------------------------------------------------------------------------
# structured pruning: residual groups and whole heads

def _agreement_dataset(model, fmnist, n=200):
    """The first n validation images labelled with `model`'s own predictions: accuracy on it is
    agreement with the unpruned model (1.0 for the model itself), no trained weights needed."""
    from dataclasses import replace
    from compression.data import Split
    images = fmnist.val.images[:n]
    with torch.no_grad():
        labels = model.eval()(fmnist.normalize(images)).argmax(1)
    return replace(fmnist, val=Split(images, labels))


def test_structured_resnet_keeps_every_residual_addition_consistent():
    from compression.pruning import PruneConfig, prune
    torch.manual_seed(0)
    model = build_model("resnet").eval()
    before = state_dict_hash(model)
    pruned = prune(model, PruneConfig("structured", 0.5, "layer"), input_shape=SHAPE).eval()
    assert state_dict_hash(model) == before
    widths = {}
    for name, m in pruned.named_modules():
        if name.endswith(("bn2", "shortcut")) or name == "stem":
            m.register_forward_hook(lambda mod, inp, out, name=name: widths.__setitem__(name, out.shape[1]))
    assert pruned(torch.randn(2, *SHAPE)).shape == (2, 10)
    # each block adds bn2's output to its shortcut's: both operands the same (halved) width
    blocks = [n.rpartition(".")[0] for n in widths if n.endswith("bn2")]
    assert [(widths[f"{b}.bn2"], widths[f"{b}.shortcut"]) for b in blocks] == [(8, 8), (16, 16), (32, 32)]
    assert widths["stem"] == 8
    # every conv keeps half its outputs and half its inputs: 1/4 of the MACs, except the stem
    # (1 input channel) and the classifier (10 outputs), which only halve
    stem, fc = 28 * 28 * 9 * 16, 64 * 10
    assert count_macs(pruned, SHAPE) <= (count_macs(model, SHAPE) + stem + fc) / 4


def test_structured_sensitivity_rows_are_dependency_groups(fmnist):
    from compression.pruning import sensitivity
    torch.manual_seed(0)
    model = build_model("resnet")
    rows = sensitivity(model, _agreement_dataset(model, fmnist), method="structured", ratios=(0.9,), limit=200)
    assert [r["layer"] for r in rows] == [
        "stem.0 + stage1.0.conv2", "stage1.0.conv1", "stage2.0.conv1", "stage2.0.conv2 + stage2.0.shortcut.0",
        "stage3.0.conv1", "stage3.0.conv2 + stage3.0.shortcut.0"]
    assert rows[0]["coupled"] == ["stem.0", "stage1.0.conv2"] and "coupled" not in rows[1]
    # every group, pruned alone at 0.9, changes some of the unpruned model's predictions
    assert all(r["accuracy"] < 1.0 for r in rows), rows
    from compression.charts.pruning import sensitivity_heatmap
    fig = sensitivity_heatmap(rows, baseline_accuracy=1.0)  # the Pruning page's chart reads group rows as they are
    assert list(fig.data[0].y) == [r["layer"] for r in rows]


def test_structured_vit_removes_whole_heads_and_half_the_mlp(fmnist):
    from compression.pruning import PruneConfig, load_structured, prune, sensitivity
    from compression.models import state_dict_bytes
    from compression.pruning.heads import head_scores
    torch.manual_seed(0)
    model = build_model("vit").eval()
    pruned = prune(model, PruneConfig("structured", 0.5, "layer"), input_shape=SHAPE).eval()
    x = torch.randn(3, *SHAPE)
    masked = build_model("vit").eval()
    masked.load_state_dict(model.state_dict())
    for block, ref, orig in zip(pruned.blocks, masked.blocks, model.blocks):
        attn = block.attn
        assert (attn.num_heads, attn.head_dim) == (2, 16)
        assert (attn.qkv.in_features, attn.qkv.out_features) == (64, 3 * 2 * 16)
        assert (attn.proj.in_features, attn.proj.out_features) == (32, 64)  # the residual stream keeps 64
        assert block.mlp.fc1.out_features == block.mlp.fc2.in_features == 64
        # the two heads kept are the two strongest, with their q, k and v rows together
        top = sorted(torch.argsort(head_scores(orig.attn), descending=True)[:2].tolist())
        rows = torch.tensor([s * 64 + h * 16 + i for s in range(3) for h in top for i in range(16)])
        assert torch.equal(attn.qkv.weight, orig.attn.qkv.weight[rows])
        # removing a head is zeroing its share of the output projection
        with torch.no_grad():
            for h in set(range(4)) - set(top):
                ref.attn.proj.weight[:, h * 16:(h + 1) * 16] = 0
            kept = [int((orig.mlp.fc1.weight == w).all(1).nonzero()[0]) for w in block.mlp.fc1.weight]
            ref.mlp.fc2.weight[:, sorted(set(range(128)) - set(kept))] = 0  # and a hidden unit its fc2 column
    assert torch.allclose(pruned(x), masked(x), atol=1e-5)
    # the smaller file loads back into the builder (head counts from the stored shapes)
    again = load_structured(state_dict_bytes(pruned), lambda: build_model("vit"))
    assert again.blocks[0].attn.num_heads == 2 and torch.allclose(again(x), pruned(x), atol=1e-6)
    rows = sensitivity(model, _agreement_dataset(model, fmnist, 100), method="structured", ratios=(0.5,), limit=100)
    assert [r["layer"] for r in rows][-4:] == [f"blocks.{i}.attn heads" for i in range(4)]


def test_structured_pruning_refuses_a_multi_exit_model_instead_of_breaking_its_exits():
    """Torch-Pruning traces forward() (the full network): the exit heads would keep their input
    widths and fail on the first image that leaves early, so the method says it cannot."""
    from compression.dynamic import resnet_exits
    from compression.pruning import PruneConfig, prune
    model = resnet_exits().eval()
    with pytest.raises(CompressionError, match="does not support multi-exit models"):
        prune(model, PruneConfig("structured", 0.5, "layer"), input_shape=SHAPE)
    sparse = prune(model, PruneConfig("unstructured", 0.5, "layer"), input_shape=SHAPE).eval()
    assert [o.shape for o in sparse.forward_all(torch.randn(2, *SHAPE))] == [(2, 10)] * 3
