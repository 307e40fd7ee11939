"""The residual network and the vision transformer: builders without weights yet (not in the zoo
until trained), their recipes, and structured pruning that respects residual additions and heads."""

import pytest
import torch

from compression import CompressionError
from compression.metrics import count_macs, count_params
from compression.models import architecture_names, build_model, state_dict_hash, zoo_names
from compression.zoo import pending_names, recipe_config, training_card

SHAPE = (1, 28, 28)


def test_builders_are_registered_but_not_in_the_zoo_until_trained():
    assert {"resnet", "vit"} <= set(architecture_names())
    assert not {"resnet", "vit", "resnet_exits", "vit_exits"} & set(zoo_names())  # no checkpoints yet
    assert {"resnet", "vit", "resnet_exits", "vit_exits"} <= set(pending_names())


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
