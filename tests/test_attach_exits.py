"""Exits for any model (issue 17): cut a torchvision ResNet-18 after chosen blocks, train only the
heads, and the threshold sweep over the attached exits."""

import pytest
import torch

from compression import CompressionError
from compression.dynamic import exit_table, sweep
from compression.dynamic.attach import attach_exits, block_candidates, train_heads
from compression.models import state_dict_hash
from compression.training import TrainConfig
from support import write_tinted_folder


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory):
    from compression.refs import resolve
    root = tmp_path_factory.mktemp("tinted") / "data"
    ref = write_tinted_folder(root, classes=3, train=24, test=12, tint=lambda c: (c, 200))
    return resolve("torchvision:resnet18", ref)


def test_attached_exits_train_only_the_heads_and_the_sweep_is_monotone_in_macs(resnet18):
    model, data = resnet18.model, resnet18.dataset
    given = state_dict_hash(model)
    attached = attach_exits(model, ["layer1", "layer2", "layer3"], data.input_shape, data.num_classes)
    assert attached.num_exits == 4 and state_dict_hash(model) == given  # the model given is untouched
    x = data.normalize(data.test.images[:4], "cpu")
    with torch.no_grad():
        assert torch.allclose(attached.forward_all(x)[-1], model.eval()(x), atol=1e-5)  # the last exit is the model
    backbone = {k: v.clone() for k, v in attached.stages.state_dict().items()}
    heads = {k: v.clone() for k, v in attached.exits.state_dict().items()}

    trained = train_heads(attached, data, TrainConfig(epochs=1, batch_size=16, eval_split="test")).model
    after = trained.stages.state_dict()
    assert after.keys() == backbone.keys()
    assert all(torch.equal(after[k], v) for k, v in backbone.items())  # bit-identical, BatchNorm stats too
    assert any(not torch.equal(trained.exits.state_dict()[k], v) for k, v in heads.items())  # heads learned

    table = exit_table(trained, data)
    assert list(table.costs) == sorted(table.costs) and table.costs[0] < table.costs[-1] / 3
    macs = sweep(table, "confidence", torch.linspace(0, 1, 11)).macs.tolist()
    assert macs == sorted(macs)  # a higher threshold: fewer images leave early, never fewer MACs
    assert macs[0] < macs[-1]


def test_a_cut_inside_a_residual_block_or_an_unknown_block_is_refused(resnet18):
    model, data = resnet18.model, resnet18.dataset
    assert {"layer1", "layer1.0", "layer2", "layer4.1", "fc"} <= set(block_candidates(model))
    with pytest.raises(CompressionError, match="'layer1.0.conv1': 2 tensors cross that point"):
        attach_exits(model, ["layer1.0.conv1"], data.input_shape, data.num_classes)
    with pytest.raises(CompressionError, match="no block 'layer9'.*layer1"):
        attach_exits(model, ["layer9"], data.input_shape, data.num_classes)
    with pytest.raises(CompressionError, match="not in the order"):
        attach_exits(model, ["layer3", "layer1"], data.input_shape, data.num_classes)


def test_cli_attach_stores_the_model_with_its_heads_as_a_file_that_loads_back(resnet18, tmp_path):
    import json

    from compression.artifact import load_artifact
    from compression.store import RunStore
    from support import cli_in_process, quick_cpu_timing
    data = resnet18.dataset
    with quick_cpu_timing():
        done = cli_in_process("early-exit", "--model", "torchvision:resnet18", "--dataset", data.name,
                              "--attach", "layer2,layer3", "--attach-epochs", "1", "--threshold", "0.5",
                              "--latency-images", "5", "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "exit heads epoch 1/1" in done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["config"]["attach"] == ["layer2", "layer3"] and len(out["exit_shares"]) == 3
    (run,) = RunStore(tmp_path / "runs.sqlite").runs()  # stored once, with its file
    blob = open(run["artifact_path"], "rb").read()
    assert len(blob) == run["size_bytes"] == out["size_bytes"]
    rebuilt = load_artifact(blob)
    x = data.normalize(data.test.images[:3], "cpu")
    with torch.no_grad():
        assert rebuilt.num_exits == 3
        assert torch.allclose(rebuilt.forward_all(x)[-1], resnet18.model.eval()(x), atol=1e-5)  # backbone as given


def test_an_attached_model_kept_by_name_resolves_as_a_multi_exit_model(resnet18, home):
    from compression.dynamic import MultiExitNet
    from compression.dynamic.attach import save_attached
    from compression.refs import resolve
    data = resnet18.dataset
    attached = attach_exits(resnet18.model, ["layer2"], data.input_shape, data.num_classes)
    card = save_attached(attached, base="torchvision:resnet18", architecture=resnet18.architecture, dataset=data)
    assert card["name"] == "tv-resnet18-exits-layer2" and card["dataset"] == data.name
    again = resolve(card["name"], data)
    assert isinstance(again.model, MultiExitNet) and again.model.num_exits == 2
    x = data.normalize(data.test.images[:2], "cpu")
    with torch.no_grad():
        assert torch.allclose(again.model.forward_all(x)[0], attached.eval().forward_all(x)[0], atol=1e-5)
