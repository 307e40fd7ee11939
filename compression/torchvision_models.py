"""Any torchvision classification architecture by name: `torchvision:resnet18`.

Without weights, the network is built for the dataset's classes (random init, for trying the
compression methods on a real architecture; the user's own weights for it come with --weights).
With `pretrained=True`, torchvision's published ImageNet weights are used (the local torch cache,
or downloaded when online); the dataset's class folders must then be named after ImageNet
categories, and the logits are restricted to those categories. `published_state_dict` and
`replace_classifier` start a fine-tuned model from the published weights (`models add
--pretrained --finetune-epochs N`). Inputs follow the model's contract: ImageNet's mean and std
(what torchvision's training recipes use) unless the user states another.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torch.nn as nn

from compression import CompressionError
from compression.contract import IMAGENET_MEAN, IMAGENET_STD
from compression.data import Dataset

PREFIX = "torchvision:"
__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Renormalize", "SelectClasses", "torchvision_model"]


def is_torchvision_name(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def classification_architectures() -> list[str]:
    import torchvision.models as tvm
    return sorted(tvm.list_models(module=tvm))


class Renormalize(nn.Module):
    """x normalized with (mean_in, std_in) -> normalized with (mean_out, std_out) (kept so that
    artifacts written before models carried their own contract still load)."""

    def __init__(self, mean_in, std_in, mean_out, std_out):
        super().__init__()
        shape = (1, -1, 1, 1)
        self.register_buffer("scale", (torch.tensor(std_in) / torch.tensor(std_out)).view(shape))
        self.register_buffer("shift", ((torch.tensor(mean_in) - torch.tensor(mean_out)) / torch.tensor(std_out)).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class SelectClasses(nn.Module):
    """Keep the logits of the given output indices, in the dataset's class order."""

    def __init__(self, indices: list[int]):
        super().__init__()
        self.register_buffer("indices", torch.tensor(indices, dtype=torch.long))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.index_select(1, self.indices)


def check_architecture(arch: str) -> None:
    if arch not in classification_architectures():
        raise CompressionError(f"unknown torchvision architecture {arch!r}; e.g. resnet18, mobilenet_v2, "
                               "efficientnet_b0 (torchvision.models.list_models())")


def fixed_size(arch: str, side: int) -> tuple[dict, int]:
    """(builder keywords, input side) for architectures built for one input size: a ViT takes the
    dataset's side when its patch divides it (else 224), MaxViT 224; the others adapt (None)."""
    match = re.match(r"vit_\w+?_(\d+)$", arch)
    if match:
        patch = int(match.group(1))
        size = side if side % patch == 0 else 224
        return {"image_size": size}, size
    if arch.startswith("maxvit"):
        return {"input_size": (224, 224)}, 224
    return {}, side


def torchvision_model(name: str, dataset: Dataset, *, pretrained: bool = False, side: int | None = None) -> nn.Module:
    """Build `torchvision:<arch>` for `dataset` (see the module docstring for `pretrained`)."""
    import torchvision.models as tvm

    arch = name[len(PREFIX):]
    check_architecture(arch)
    if dataset.input_shape[0] != 3:
        raise CompressionError(f"{name} takes RGB images; dataset {dataset.name!r} has "
                               f"{dataset.input_shape[0]} channel(s)")
    if not pretrained:
        extra, _ = fixed_size(arch, side or dataset.input_shape[1])
        return tvm.get_model(arch, weights=None, num_classes=dataset.num_classes, **extra).eval()
    indices = imagenet_indices(name, dataset)
    net = tvm.get_model(arch, weights=None)
    net.load_state_dict(published_state_dict(name))
    return nn.Sequential(net, SelectClasses(indices)).eval()


def imagenet_indices(name: str, dataset: Dataset) -> list[int]:
    """The ImageNet output index of each of the dataset's classes (folders named after categories)."""
    import torchvision.models as tvm
    categories = [c.lower() for c in tvm.get_model_weights(name[len(PREFIX):]).DEFAULT.meta["categories"]]
    unknown = [c for c in dataset.classes if c.lower().replace("_", " ") not in categories]
    if unknown:
        raise CompressionError(f"{name} pretrained on ImageNet: class folders {', '.join(unknown[:3])} "
                               "are not ImageNet categories; name the folders after them, or drop --pretrained "
                               "(or fine-tune: `models add NAME --model ... --pretrained --finetune-epochs N`)")
    return [categories.index(c.lower().replace("_", " ")) for c in dataset.classes]


# ---------------------------------------------------------------------------------------------
# published weights: the torch cache, else a download when online

def published_file(name: str) -> Path:
    """Where torch keeps the published weights of `torchvision:<arch>`: <torch hub dir>/checkpoints/<file>."""
    import torchvision.models as tvm
    arch = name[len(PREFIX):]
    check_architecture(arch)
    url = tvm.get_model_weights(arch).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def published_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The published ImageNet state_dict of `torchvision:<arch>`, read without unpickling code."""
    import torchvision.models as tvm
    path = published_file(name)
    if not path.is_file():
        if os.environ.get("COMPRESSION_OFFLINE"):
            raise CompressionError(f"{name}: published weights {path.name} not found in {path.parent} "
                                   "(offline: COMPRESSION_OFFLINE is set); put the file there or go online")
        try:
            torch.hub.load_state_dict_from_url(tvm.get_model_weights(name[len(PREFIX):]).DEFAULT.url,
                                               progress=False, check_hash=True, weights_only=True)
        except Exception as exc:  # offline, or the download failed
            raise CompressionError(f"{name}: published weights {path.name} not found in {path.parent} and could "
                                   f"not be downloaded ({type(exc).__name__}); put the file there, go online, "
                                   "or drop --pretrained") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CompressionError(f"{path}: not a readable state_dict ({type(exc).__name__})") from None


def replace_classifier(model: nn.Module, num_classes: int) -> nn.Module:
    """`model` (in place) with its output layer, the last Linear or 1x1 conv, replaced by a fresh one
    for `num_classes` (seeded by the caller). Returns the model."""
    names = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not names:
        raise CompressionError("the model has no Linear or conv output layer to replace")
    path, old = names[-1]
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding,
                        bias=old.bias is not None)
    parent = model.get_submodule(path.rpartition(".")[0]) if "." in path else model
    setattr(parent, path.rpartition(".")[2], new.to(old.weight.device))
    return model
