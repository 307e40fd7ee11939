"""torchvision:<arch>: any torchvision classifier, built for the dataset's classes; ImageNet's
normalization by default (what its training recipes use); `pretrained` for the published weights."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from compression import CompressionError
from compression.contract import IMAGENET_MEAN, IMAGENET_STD, InputContract
from compression.data import Dataset
from compression.refs import TORCHVISION, ModelRef, Source, register_source


class TorchvisionSource(Source):
    kind = "torchvision"
    prefix = TORCHVISION
    builders = ("torchvision",)
    pretrained = True

    def check(self, ref: ModelRef) -> None:
        from compression.torchvision_models import check_architecture
        check_architecture(ref.text[len(TORCHVISION):])

    def check_input(self, ref: ModelRef, data: Dataset) -> None:
        if data.input_shape[0] != 3:
            raise CompressionError(f"{ref.text} takes RGB images; dataset {data.name!r} has "
                                   f"{data.input_shape[0]} channel(s): use cifar10 or imagefolder:<path>")

    def contract(self, ref: ModelRef, data: Dataset) -> InputContract:
        from compression.torchvision_models import fixed_size
        _, side = fixed_size(ref.text[len(TORCHVISION):], ref.input_size or data.input_shape[1])
        return InputContract(IMAGENET_MEAN, IMAGENET_STD, (side, side), 3, tuple(data.classes),
                             "torchvision (ImageNet normalization)")

    def architecture(self, ref: ModelRef, data: Dataset, contract: InputContract) -> dict[str, Any]:
        from compression.torchvision_models import fixed_size, imagenet_indices
        arch = ref.text[len(TORCHVISION):]
        if ref.pretrained:
            kwargs: dict[str, Any] = {"arch": arch, "imagenet_classes": imagenet_indices(ref.text, data)}
        else:
            kwargs = {"arch": arch, "num_classes": data.num_classes, **fixed_size(arch, contract.input_size[0])[0]}
        return {"name": ref.text, "builder": "torchvision", "kwargs": kwargs}

    def build(self, ref: ModelRef, data: Dataset, contract: InputContract) -> nn.Module:
        from compression.torchvision_models import torchvision_model
        return torchvision_model(ref.text, data, pretrained=ref.pretrained, side=contract.input_size[0])

    def rebuild(self, builder: str, kwargs: dict[str, Any]) -> nn.Module:
        import torchvision.models as tvm

        from compression.torchvision_models import (IMAGENET_MEAN as MEAN, IMAGENET_STD as STD, Renormalize,
                                                    SelectClasses, classification_architectures)
        arch = kwargs.pop("arch", None)
        if arch not in classification_architectures():
            raise CompressionError(f"artifact names an unknown torchvision architecture {arch!r}")
        if "imagenet_classes" in kwargs:
            net = tvm.get_model(arch, weights=None)
            if "mean" in kwargs:  # written before models carried their contract: the input was re-normalized inside
                return nn.Sequential(Renormalize(kwargs["mean"], kwargs["std"], MEAN, STD), net,
                                     SelectClasses(kwargs["imagenet_classes"]))
            return nn.Sequential(net, SelectClasses(kwargs["imagenet_classes"]))
        if "input_size" in kwargs:
            kwargs["input_size"] = tuple(kwargs["input_size"])
        return tvm.get_model(arch, weights=None, **kwargs)

    def references(self) -> list[str]:
        from compression.torchvision_models import classification_architectures
        return [TORCHVISION + a for a in classification_architectures()]


register_source(TorchvisionSource())
