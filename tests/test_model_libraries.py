"""timm:<arch> and hf:<directory> references through every family: structured pruning (attention by
whole heads), int8, distillation as teacher and as student; and grouped convolutions pruned by
Torch-Pruning's rule. Tiny configs built here (no hub download)."""

import json

import pytest
import torch
import torch.nn as nn
from PIL import Image

from compression import CompressionError


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    colours = {"a": (200, 40, 40), "b": (40, 200, 40), "c": (40, 40, 200)}
    for split, n in (("train", 12), ("test", 6)):
        for cls, colour in colours.items():
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), tuple(min(255, c + 7 * i) for c in colour)).save(root / split / cls / f"{i}.png")
    return f"imagefolder:{root}"


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A tiny transformers ViT (2 layers, 4 heads of 8) saved with save_pretrained, with a processor
    config whose mean/std (0.5) are not the dataset's."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    folder = tmp_path_factory.mktemp("hf") / "tiny-vit"
    torch.manual_seed(0)
    cfg = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                    image_size=32, patch_size=8, num_labels=3)
    ViTForImageClassification(cfg).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(folder)
    return f"hf:{folder}"


TIMM_VIT = "timm:vit_tiny_patch16_224?input_size=32"  # 3 heads of 64, 12 blocks; at 32 x 32: 4 patches


def test_hf_contract_and_logits(hf_dir, folder):
    from compression.refs import resolve
    r = resolve(hf_dir, folder)
    assert r.contract.mean == (0.5, 0.5, 0.5) and r.contract.source == "hf preprocessor_config.json"
    x, _ = next(r.dataset.batches("test", 2))
    assert tuple(r.model(x).shape) == (2, 3)  # logits taken from the output object
    assert r.architecture["builder"] == "hf" and r.architecture["kwargs"]["config"]["num_attention_heads"] == 4


def test_timm_contract_from_pretrained_cfg(folder):
    from compression.refs import resolve
    vit = resolve(TIMM_VIT, folder)
    assert vit.contract.mean == (0.5, 0.5, 0.5) and vit.contract.input_size == (32, 32)
    cnn = resolve("timm:resnet10t", folder)
    assert cnn.contract.mean == (0.485, 0.456, 0.406) and cnn.contract.input_size == (32, 32)  # size-agnostic
    with pytest.raises(CompressionError, match="unknown timm architecture 'nope'"):
        resolve("timm:nope", folder)


@pytest.mark.parametrize("ref, heads_before, heads_after", [("hf", 4, 2), (TIMM_VIT, 3, 2)])
def test_structured_pruning_removes_whole_heads(hf_dir, folder, ref, heads_before, heads_after):
    """Half the heads go (round(4 x 0.5) = 2; round(3 x 0.5) = 2 of 3 stay), head_dim unchanged; the
    MLPs lose half their hidden units, so MACs fall (not the residual stream: its width stays)."""
    from compression.methods import compress
    from compression.pruning.heads import attention_heads
    from compression.refs import resolve
    ref = hf_dir if ref == "hf" else ref
    run = compress(ref, folder, "prune", "structured:0.5", limit=6)
    heads = list(attention_heads(run.model).values())
    assert heads and all(h.num_heads == heads_after for h in heads)
    original = resolve(ref, folder)
    assert all(h.num_heads == heads_before for h in attention_heads(original.model).values())
    m, b = run.result.metrics, run.result.baseline
    assert m.macs < b.macs and m.params < b.params
    x, _ = next(original.dataset.batches("test", 2))
    assert tuple(run.model(x).shape) == (2, 3)  # still predicts
    from compression.artifact import load_artifact
    back = load_artifact(run.artifact)  # the file alone rebuilds the pruned model (heads matched)
    assert torch.allclose(back(x), run.model.cpu()(x), atol=1e-5)


@pytest.mark.parametrize("ref", ["hf", "timm:resnet10t"])
def test_int8_on_library_models(hf_dir, folder, ref):
    """8-bit per-channel weights: about a quarter of the fp32 bytes (codes + scales + header)."""
    from compression.methods import compress
    ref = hf_dir if ref == "hf" else ref
    run = compress(ref, folder, "quantize", "uniform:8", limit=6)
    m, b = run.result.metrics, run.result.baseline
    assert m.size_bytes <= 0.35 * b.size_bytes
    assert run.result.extra["model_source"]["kind"] == ("hf" if ref.startswith("hf") else "timm")


def test_distillation_with_library_models_as_teacher_and_student(hf_dir, folder):
    """An HF teacher (its own 0.5 normalization) distilled into a timm student (trained on the
    teacher's view, whose contract its artifact records); then the timm model as teacher. Batches
    of 11: the 33 training images split evenly (no BatchNorm batch of one)."""
    from compression.methods import compress
    run = compress(hf_dir, folder, "student", {"student": "timm:resnet10t", "epochs": 1, "batch_size": 11}, limit=6)
    assert run.result.extra["student"] == "timm:resnet10t"
    from compression.artifact import header_of, load_artifact
    header = header_of(run.artifact)
    assert header["architecture"]["builder"] == "timm" and header["architecture"]["contract"]["mean"] == [0.5] * 3
    assert isinstance(load_artifact(run.artifact), nn.Module)
    back = compress("timm:resnet10t", folder, "student", {"student": "mlp", "student_width": 0.25, "epochs": 1},
                    limit=6)
    assert back.result.metrics.params < back.result.baseline.params


def test_low_rank_and_exits_on_a_timm_model(folder):
    from compression.methods import compress
    from compression.refs import resolve
    lr = compress(TIMM_VIT, folder, "architecture", {"convert": "low-rank", "energy": 0.5}, limit=6)
    assert lr.result.metrics.params < lr.result.baseline.params
    from compression.dynamic.attach import attach_exits
    r = resolve("timm:resnet10t", folder)
    attached = attach_exits(r.model, ["layer1", "layer2"], r.dataset.input_shape, 3)
    assert attached.num_exits == 3


def test_grouped_convolutions_keep_their_groups():
    """groups=4 conv of 16 -> 32 channels at ratio 0.5: 8 -> 16 channels, still 4 groups (2 -> 1
    input and 8 -> 4 output channels per group); MACs of that layer fall to a quarter."""
    from compression.metrics import count_macs
    from compression.pruning.structured import prune_channels
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.Conv2d(16, 32, 3, padding=1, groups=4), nn.BatchNorm2d(32), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()
    pruned = prune_channels(net, 0.5, input_shape=(3, 8, 8))
    conv = pruned[3]
    assert (conv.in_channels, conv.out_channels, conv.groups) == (8, 16, 4)
    assert count_macs(pruned, (3, 8, 8)) < 0.4 * count_macs(net, (3, 8, 8))
    assert tuple(pruned(torch.zeros(1, 3, 8, 8)).shape) == (1, 10)
    import copy

    from compression.pruning.structured import resize_to
    fresh = resize_to(copy.deepcopy(net), pruned.state_dict())  # how an artifact of it loads back
    fresh.load_state_dict(pruned.state_dict())
    assert fresh[3].groups == 4 and fresh[3].in_channels == 8


def test_resnext_structured_prunes(tmp_path):
    """torchvision's ResNeXt (grouped 3x3 convs, 32 groups) is pruned, not refused."""
    import torchvision
    from compression.metrics import count_macs
    from compression.pruning.structured import prune_channels
    net = torchvision.models.resnext50_32x4d(num_classes=3).eval()
    pruned = prune_channels(net, 0.5, input_shape=(3, 32, 32))
    assert pruned.layer1[0].conv2.groups == 32
    assert count_macs(pruned, (3, 32, 32)) < 0.4 * count_macs(net, (3, 32, 32))


def test_hf_folder_problems_in_one_line(tmp_path, folder):
    from compression.refs import resolve
    with pytest.raises(CompressionError, match="not a folder"):
        resolve(f"hf:{tmp_path / 'missing'}", folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompressionError, match="no readable config.json"):
        resolve(f"hf:{tmp_path / 'empty'}", folder)
    (tmp_path / "empty" / "config.json").write_text(json.dumps({"model_type": "vit", "num_labels": 7}))
    with pytest.raises(CompressionError, match="predicts 7 classes"):
        resolve(f"hf:{tmp_path / 'empty'}", folder)
