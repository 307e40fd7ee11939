"""torchvision architectures that failed with a raw error in the table of docs/own-models.md.

State dicts built key by key (quantization's decoded weights, a safetensors file) carry the model's
own per-module versions when loaded: torchvision's MNASNet refuses a state_dict without its `version`
entry ("version should be set to 1 or 2 instead of None": 8-bit failed on all four MNASNets in the
torchvision table). Structured pruning that Torch-Pruning cannot do (ShuffleNet's channel shuffle
failed with ZeroDivisionError) is refused in one line that says where, and the model is untouched."""

import pytest
import torch
import torchvision

from compression import CompressionError

from compression.models import load_state_dict_checked, with_own_metadata
from compression.quantization.artifact import load_artifact
from compression.quantization.config import QuantConfig
from compression.quantization.core import quantize


def _mnasnet():
    torch.manual_seed(0)
    return torchvision.models.mnasnet0_5(num_classes=3).eval()


def test_a_plain_dict_loads_into_mnasnet_with_the_models_own_versions():
    model = _mnasnet()
    plain = {k: v.clone() for k, v in model.state_dict().items()}  # no _metadata, as from safetensors
    other = _mnasnet()
    load_state_dict_checked(other, plain, source="test")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    own = model.state_dict()
    assert with_own_metadata(model, own) is own  # a state that has its versions is kept as it is


def test_mnasnet_quantizes_to_8_bits_and_its_file_loads_back_with_the_same_predictions():
    model = _mnasnet()
    q = quantize(model, QuantConfig(method="uniform", bits=8, granularity="channel"))
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        back = load_artifact(q.artifact, _mnasnet())(x)
        assert torch.allclose(back, q.model(x), atol=1e-5)


def test_structured_pruning_refuses_shufflenet_in_one_line_that_says_where():
    torch.manual_seed(0)
    model = torchvision.models.shufflenet_v2_x0_5(num_classes=3).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    from compression.pruning.structured import prune_channels
    with pytest.raises(CompressionError) as refused:
        prune_channels(model, 0.5, input_shape=(3, 32, 32))
    line = str(refused.value)
    assert "\n" not in line and "ShuffleNetV2" in line and "after layer 'stage" in line and "through a reshape" in line
    assert "channel shuffle" in line
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # never mutates the model given


def _tiny_swin(v2: bool = False):
    from torchvision.models.swin_transformer import (PatchMergingV2, SwinTransformer,
                                                     SwinTransformerBlockV2)
    torch.manual_seed(0)
    extra = {"block": SwinTransformerBlockV2, "downsample_layer": PatchMergingV2} if v2 else {}
    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                           window_size=[2, 2], num_classes=3, **extra).eval()


@pytest.mark.parametrize("v2", [False, True], ids=["swin", "swin_v2"])
def test_structured_pruning_refuses_swin_at_once_naming_the_layer_whose_channels_cannot_be_followed(v2):
    """Torch-Pruning multiplied Swin's channel indices at every window reshape (32,768 -> 1,048,576 ->
    ... on Swin-T) and never finished building its groups (over 300 s in the table). Past the widest
    layer's width no index is a channel: refused in one line, model untouched, 8-bit still runs."""
    from compression.pruning.structured import channel_groups, prune_channels
    model = _tiny_swin(v2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for call in (lambda: prune_channels(model, 0.5, input_shape=(3, 32, 32)),
                 lambda: channel_groups(model, (3, 32, 32))):
        with pytest.raises(CompressionError) as refused:
            call()
        line = str(refused.value)
        assert "\n" not in line and "SwinTransformer" in line and "layer 'features." in line
        assert "channels-last" in line and "wider than any layer" in line
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    q = quantize(model, QuantConfig(method="uniform", bits=8, granularity="channel"))
    with torch.no_grad():
        assert torch.isfinite(q.model(torch.rand(2, 3, 32, 32))).all()


def test_the_index_bound_is_the_widest_layer_and_leaves_a_cnn_flatten_alone():
    """A CNN's flatten before its classifier maps C channels to C*H*W indices: bounded by the linear
    layer's in_features, so the bound (the widest parameter dimension) never refuses it."""
    from compression.pruning.index_guard import widest
    from compression.pruning.structured import prune_channels
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 16 * 16, 3)).eval()
    assert widest(model) == 8 * 16 * 16
    pruned = prune_channels(model, 0.5, input_shape=(3, 16, 16))
    assert pruned[0].out_channels == 4 and pruned[3].in_features == 4 * 16 * 16


def test_structured_pruning_of_a_torchvision_vit_narrows_its_mlps_and_keeps_multihead_attention():
    """torchvision's ViT attends with nn.MultiheadAttention (one in_proj parameter, not q/k/v
    layers): Torch-Pruning narrowed its embedding with the residual stream, and the class token's
    reshape then failed (shape '[1, 768, 1]' is invalid). Attention and the residual stream are kept,
    as for every attention module; each MLP's hidden layer loses half its neurons."""
    from torchvision.models.vision_transformer import VisionTransformer

    from compression.pruning.structured import prune_channels
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=16,
                              mlp_dim=32, num_classes=3).eval()
    pruned = prune_channels(model, 0.5, input_shape=(3, 32, 32))
    for block in pruned.encoder.layers:
        assert block.mlp[0].out_features == 16 and block.mlp[3].in_features == 16  # 32 -> 16 neurons
        assert block.self_attention.embed_dim == 16 and block.self_attention.in_proj_weight.shape == (48, 16)
    with torch.no_grad():
        out = pruned(torch.rand(4, 3, 32, 32))
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    assert model.encoder.layers[0].mlp[0].out_features == 32  # the model given is untouched


def test_structured_pruning_refuses_a_deep_swin_naming_the_concatenation_it_cannot_map():
    """Swin-S/B (18 blocks in stage 3): Torch-Pruning's channel inference gives up on the patch
    merging's concatenation and crashed with "unsupported operand type(s) for +: 'int' and
    'NoneType'"; now one line naming the layer before it and why."""
    from torchvision.models.swin_transformer import SwinTransformer

    from compression.pruning.structured import prune_channels
    torch.manual_seed(0)
    model = SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[1, 1, 18, 1], num_heads=[1, 1, 1, 1],
                            window_size=[2, 2], mlp_ratio=2.0, num_classes=3).eval()
    with pytest.raises(CompressionError) as refused:
        prune_channels(model, 0.5, input_shape=(3, 32, 32))
    line = str(refused.value)
    assert "\n" not in line and "after layer 'features." in line and "through a concatenation" in line
