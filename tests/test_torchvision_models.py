"""torchvision architectures by name, evaluated on an image folder (no weights: tests are offline)."""

import pytest
import torch
from PIL import Image

from compression import CompressionError
from compression.evaluate import evaluate
from compression.torchvision_models import IMAGENET_MEAN, IMAGENET_STD, Renormalize


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pets")
    for split, n in (("train", 4), ("test", 3)):
        for cls, color in (("tabby", (200, 120, 40)), ("goldfish", (250, 160, 0)), ("hen", (240, 240, 240))):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (48, 48), tuple(min(255, c + 5 * i) for c in color)).save(root / split / cls / f"{i}.png")
    return root


def test_resnet18_without_weights(folder):
    result = evaluate("torchvision:resnet18", dataset=f"imagefolder:{folder}")
    d = result.to_dict()
    assert d["accuracy_n"] == 9 and d["params"] == 11_178_051  # resnet18 with a 3-class head
    assert d["macs"] > 0 and d["config"]["pretrained"] is False


def test_mobilenet_v2_larger_images(folder):
    result = evaluate("torchvision:mobilenet_v2", dataset=f"imagefolder:{folder}?size=64", limit=3)
    assert result.metrics.accuracy_n == 3


def test_pretrained_offline_says_what_to_do(folder, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache
    import torch.hub

    def no_network(*a, **k):
        raise OSError("offline")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(CompressionError, match=r"resnet18-f37072fd\.pth not found in .*hub/checkpoints"):
        evaluate("torchvision:resnet18", dataset=f"imagefolder:{folder}", pretrained=True)  # names file and folder


def test_bad_names(folder):
    with pytest.raises(CompressionError, match="'resnet9000'"):
        evaluate("torchvision:resnet9000", dataset=f"imagefolder:{folder}")
    with pytest.raises(CompressionError, match="--dataset"):
        evaluate("torchvision:resnet18")
    with pytest.raises(CompressionError, match="RGB"):
        evaluate("torchvision:resnet18", dataset="fashion-mnist")


def test_renormalize_maps_statistics():
    layer = Renormalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), IMAGENET_MEAN, IMAGENET_STD)
    raw = torch.rand(2, 3, 4, 4)
    ours = (raw - 0.5) / 0.25
    imagenet = (raw - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(layer(ours), imagenet, atol=1e-5)
