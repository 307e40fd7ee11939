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
    assert "\n" not in line and "ShuffleNetV2" in line and "building the dependency graph" in line
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # never mutates the model given
