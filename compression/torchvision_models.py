"""Any torchvision classification architecture by name: `torchvision:resnet18`.

Without weights, the network is built for the dataset's classes (random init, for trying the
compression methods on a real architecture). With `pretrained=True`, torchvision's published
ImageNet weights are used (downloaded by torchvision when online, or found in the local torch
cache); the dataset's class folders must then be named after ImageNet categories, and the logits
are restricted to those categories. Inputs are re-normalized from the dataset's statistics to
ImageNet's.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from compression import CompressionError
from compression.data import Dataset

PREFIX = "torchvision:"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def is_torchvision_name(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def classification_architectures() -> list[str]:
    import torchvision.models as tvm
    return sorted(tvm.list_models(module=tvm))


class Renormalize(nn.Module):
    """x normalized with (mean_in, std_in) -> normalized with (mean_out, std_out)."""

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


def torchvision_model(name: str, dataset: Dataset, *, pretrained: bool = False) -> nn.Module:
    """Build `torchvision:<arch>` for `dataset`; see the module docstring for `pretrained`."""
    import torchvision.models as tvm

    arch = name[len(PREFIX):]
    if arch not in classification_architectures():
        raise CompressionError(f"unknown torchvision architecture {arch!r}; e.g. resnet18, mobilenet_v2, "
                               "efficientnet_b0 (torchvision.models.list_models())")
    if dataset.input_shape[0] != 3:
        raise CompressionError(f"{name} takes RGB images; dataset {dataset.name!r} has "
                               f"{dataset.input_shape[0]} channel(s)")
    if not pretrained:
        return tvm.get_model(arch, weights=None, num_classes=dataset.num_classes).eval()
    indices = imagenet_indices(name, dataset)
    try:
        net = tvm.get_model(arch, weights=tvm.get_model_weights(arch).DEFAULT)
    except Exception as exc:  # offline and not in the torch cache
        raise CompressionError(f"{name}: published weights not in the local torch cache and could not be "
                               f"downloaded ({type(exc).__name__}); go online once or drop --pretrained") from None
    return nn.Sequential(Renormalize(dataset.mean, dataset.std, IMAGENET_MEAN, IMAGENET_STD),
                         net, SelectClasses(indices)).eval()


def imagenet_indices(name: str, dataset: Dataset) -> list[int]:
    """The ImageNet output index of each of the dataset's classes (folders named after categories)."""
    import torchvision.models as tvm
    categories = [c.lower() for c in tvm.get_model_weights(name[len(PREFIX):]).DEFAULT.meta["categories"]]
    unknown = [c for c in dataset.classes if c.lower().replace("_", " ") not in categories]
    if unknown:
        raise CompressionError(f"{name} pretrained on ImageNet: class folders {', '.join(unknown[:3])} "
                               "are not ImageNet categories; name the folders after them, or drop --pretrained")
    return [categories.index(c.lower().replace("_", " ")) for c in dataset.classes]
