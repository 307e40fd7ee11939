"""Model references, resolved once: a name -> a module plus its data contract.

Kinds of reference (every method, page and command accepts all of them):

    cnn, lenet5, ...           a zoo model (assets/models/<name>.json + checkpoint), or a user's
                               weights kept under $COMPRESSION_HOME/models (same card format)
    torchvision:<arch>         any torchvision classifier, random init for the dataset's classes;
                               `pretrained=True` for the published ImageNet weights (torch cache or
                               online), `weights=FILE` for the user's state_dict of that architecture
    entry:<name>               a builder an installed package registers under the entry-point group
                               `compression_explorer.models`: `fn(*, num_classes, in_channels,
                               image_size) -> nn.Module`; optional attribute `fn.dataset` names its
                               default dataset (a team adds architectures with `pip install`)

`resolve(text, dataset=...)` gives a `Resolved`: the model (eval mode, on the device), the Dataset
it is evaluated on (checked for shape and classes), and `architecture`, the JSON-able recipe that
rebuilds the untrained module (`rebuild(architecture)`), which artifacts record in their header.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from compression import CompressionError
from compression.data import Dataset, load_dataset

TORCHVISION = "torchvision:"
ENTRY = "entry:"
ENTRY_POINT_GROUP = "compression_explorer.models"
KINDS = ("zoo", "torchvision", "entry")


@dataclass(frozen=True)
class ModelRef:
    """A parsed, checked reference (no weights loaded yet)."""
    text: str                       # as written: "cnn", "torchvision:resnet18", "entry:team.net"
    kind: str                       # zoo | torchvision | entry
    weights: str | None = None      # a user's state_dict file for the architecture
    pretrained: bool = False        # torchvision: the published ImageNet weights

    @property
    def label(self) -> str:
        """The name results are stored under (the file name added for user weights)."""
        return f"{self.text}+{Path(self.weights).name}" if self.weights else self.text


@dataclass
class Resolved:
    ref: ModelRef
    model: nn.Module                # eval mode; shared: never modify it (methods copy)
    dataset: Dataset
    architecture: dict[str, Any]    # {"name", "builder", "kwargs"}: rebuild(architecture) -> untrained module
    _baseline: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.ref.label

    @property
    def contract(self):
        """The model's input contract (compression.contract.InputContract): normalization, input
        size, channels and classes. Today every reference is read with its dataset's own."""
        from compression.contract import InputContract
        return InputContract.of_dataset(self.dataset)


# ---------------------------------------------------------------------------------------------
# parsing

def entry_points() -> dict[str, Any]:
    """Installed builders: entry-point name -> EntryPoint (group compression_explorer.models)."""
    from importlib.metadata import entry_points as installed
    return {ep.name: ep for ep in installed(group=ENTRY_POINT_GROUP)}


def parse(text: str, *, weights: str | Path | None = None, pretrained: bool = False) -> ModelRef:
    """Check a reference's syntax and that it names something that exists; one-line errors."""
    from compression.models import model_card
    if not isinstance(text, str) or not text.strip():
        raise CompressionError(f"model reference must be a non-empty string, got {text!r}")
    text = text.strip()
    weights = str(weights) if weights is not None else None
    if pretrained and not text.startswith(TORCHVISION):
        raise CompressionError(f"pretrained weights are for torchvision:<arch> references, not {text!r}")
    if text.startswith(TORCHVISION):
        arch = text[len(TORCHVISION):]
        if arch not in torchvision_architectures():
            raise CompressionError(f"unknown torchvision architecture {arch!r}; e.g. resnet18, mobilenet_v2, "
                                   "efficientnet_b0 (torchvision.models.list_models())")
        if pretrained and weights:
            raise CompressionError(f"{text}: give either pretrained or a weights file, not both")
        return ModelRef(text, "torchvision", weights, pretrained)
    if text.startswith(ENTRY):
        name = text[len(ENTRY):]
        if name not in entry_points():
            known = ", ".join(sorted(entry_points())) or "none installed"
            raise CompressionError(f"no model {name!r} registered under the entry-point group "
                                   f"{ENTRY_POINT_GROUP!r} ({known})")
        return ModelRef(text, "entry", weights)
    model_card(text)  # unknown zoo names fail here, listing the zoo
    return ModelRef(text, "zoo", weights)


def torchvision_architectures() -> list[str]:
    import torchvision.models as tvm
    return sorted(tvm.list_models(module=tvm))


def all_references() -> list[str]:
    """What a picker offers: the zoo (and users' models), then installed entry points."""
    from compression.models import zoo_names
    return zoo_names() + [ENTRY + n for n in sorted(entry_points())]


def default_dataset(ref: ModelRef) -> str | None:
    from compression.models import model_card
    if ref.kind == "zoo":
        return model_card(ref.text)["dataset"]
    if ref.kind == "entry":
        return getattr(_entry_builder(ref.text), "dataset", "fashion-mnist")
    return None


# ---------------------------------------------------------------------------------------------
# building

def _entry_builder(text: str) -> Callable[..., nn.Module]:
    name = text[len(ENTRY):]
    ep = entry_points().get(name)
    if ep is None:
        raise CompressionError(f"no model {name!r} registered under the entry-point group {ENTRY_POINT_GROUP!r}")
    try:
        fn = ep.load()
    except Exception as exc:  # the installed package is broken: name it in one line
        raise CompressionError(f"entry point {name!r} ({ep.value}) could not be loaded: "
                               f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    if not callable(fn):
        raise CompressionError(f"entry point {name!r} ({ep.value}) is not a builder function")
    return fn


def _build_entry(text: str, kwargs: dict[str, Any]) -> nn.Module:
    fn = _entry_builder(text)
    try:
        model = fn(**kwargs)
    except TypeError as exc:  # the builder does not take the contract's keywords
        raise CompressionError(f"entry point {text[len(ENTRY):]!r} must be a builder fn(*, num_classes, "
                               f"in_channels, image_size) -> nn.Module; calling it with "
                               f"{', '.join(f'{k}={v}' for k, v in kwargs.items())} failed: {exc}") from None
    if not isinstance(model, nn.Module):
        raise CompressionError(f"entry point {text[len(ENTRY):]!r} returned {type(model).__name__}, not an nn.Module")
    return model


def architecture_for(ref: ModelRef, dataset: Dataset) -> dict[str, Any]:
    """The recipe that rebuilds `ref`'s untrained module for `dataset` (stored in artifacts)."""
    from compression.models import model_card
    c, h, _ = dataset.input_shape
    if ref.kind == "zoo":
        card = model_card(ref.text)
        return {"name": ref.text, "builder": card["builder"], "kwargs": card.get("builder_kwargs", {})}
    if ref.kind == "entry":
        return {"name": ref.text, "builder": ref.text,
                "kwargs": {"num_classes": dataset.num_classes, "in_channels": c, "image_size": h}}
    kwargs: dict[str, Any] = {"arch": ref.text[len(TORCHVISION):], "num_classes": dataset.num_classes}
    if ref.pretrained:
        from compression.torchvision_models import imagenet_indices
        kwargs = {"arch": kwargs["arch"], "imagenet_classes": imagenet_indices(ref.text, dataset),
                  "mean": list(dataset.mean), "std": list(dataset.std)}
    return {"name": ref.text, "builder": "torchvision", "kwargs": kwargs}


def rebuild(architecture: dict[str, Any]) -> nn.Module:
    """The untrained module an architecture recipe describes (artifact headers, workers).

    Only builders this code knows are imported: compression's own (`compression.<module>:<fn>`),
    torchvision's classifiers, and installed entry points; a file cannot name other code."""
    builder, kwargs = architecture.get("builder"), dict(architecture.get("kwargs") or {})
    if builder == "torchvision":
        import torchvision.models as tvm
        arch = kwargs.pop("arch", None)
        if arch not in torchvision_architectures():
            raise CompressionError(f"artifact names an unknown torchvision architecture {arch!r}")
        if "imagenet_classes" in kwargs:
            from compression.torchvision_models import IMAGENET_MEAN, IMAGENET_STD, Renormalize, SelectClasses
            net = tvm.get_model(arch, weights=None)
            return nn.Sequential(Renormalize(kwargs["mean"], kwargs["std"], IMAGENET_MEAN, IMAGENET_STD),
                                 net, SelectClasses(kwargs["imagenet_classes"]))
        return tvm.get_model(arch, weights=None, **kwargs)
    if isinstance(builder, str) and builder.startswith(ENTRY):
        return _build_entry(builder, kwargs)
    if not isinstance(builder, str) or ":" not in builder or not builder.startswith("compression."):
        raise CompressionError(f"artifact names no usable builder ({builder!r}): only compression's own "
                               "builders, torchvision and installed entry points are loaded")
    import importlib
    module, _, fn = builder.partition(":")
    try:
        return getattr(importlib.import_module(module), fn)(**kwargs)
    except (ImportError, AttributeError):
        raise CompressionError(f"artifact names a builder this code does not have ({builder!r})") from None


def _check_input(ref: ModelRef, data: Dataset) -> None:
    from compression.evaluate import check_compatible
    if ref.kind == "zoo":
        check_compatible(ref.text, data)
    elif ref.kind == "torchvision" and data.input_shape[0] != 3:
        raise CompressionError(f"{ref.text} takes RGB images; dataset {data.name!r} has "
                               f"{data.input_shape[0]} channel(s): use cifar10 or imagefolder:<path>")


def dataset_for(ref: ModelRef | str, dataset: str | Dataset | None = None) -> Dataset:
    """The Dataset to evaluate `ref` on (its own by default), checked for shape and classes."""
    ref = parse(ref) if isinstance(ref, str) else ref
    if isinstance(dataset, Dataset):
        data = dataset
    else:
        name = dataset or default_dataset(ref)
        if name is None:
            raise CompressionError(f"{ref.text} needs a dataset, e.g. --dataset cifar10 or imagefolder:<path>")
        data = load_dataset(name)
    _check_input(ref, data)
    return data


def load(ref: ModelRef, data: Dataset, device: torch.device | str = "cpu") -> nn.Module:
    """The referenced model with its weights, in eval mode on `device`."""
    from compression.models import load_model, load_state_dict_checked, read_state_dict
    if ref.kind == "zoo":
        return load_model(ref.text, weights=ref.weights, device=device)
    if ref.kind == "torchvision":
        from compression.torchvision_models import torchvision_model
        model = torchvision_model(ref.text, data, pretrained=ref.pretrained)
    else:
        model = rebuild(architecture_for(ref, data))
    if ref.weights:
        path = Path(ref.weights)
        load_state_dict_checked(model, read_state_dict(path), source=path.name)
    return model.to(device).eval()


_CACHE: dict[tuple, Resolved] = {}
_LOCK = threading.Lock()
_CACHE_ENTRIES = 16


def resolve(ref: ModelRef | str, dataset: str | Dataset | None = None, *,
            device: torch.device | str = "cpu", weights: str | Path | None = None,
            pretrained: bool = False) -> Resolved:
    """A reference resolved to its model, dataset and rebuild recipe (cached: never modify
    `.model`). Random-init torchvision models are seeded, so a reference means one model."""
    ref = parse(ref, weights=weights, pretrained=pretrained) if isinstance(ref, str) else ref
    data = dataset_for(ref, dataset)
    device = torch.device(device)
    stamp = _weights_stamp(ref)
    key = (ref, data.name, data.source, device.type, stamp)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = load(ref, data, device)
    resolved = Resolved(ref, model, data, architecture_for(ref, data))
    with _LOCK:
        if len(_CACHE) >= _CACHE_ENTRIES:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = resolved
    return resolved


def _weights_stamp(ref: ModelRef) -> str:
    if ref.weights:
        path = Path(ref.weights)
        if not path.is_file():
            raise CompressionError(f"weights file {str(path)!r} not found")
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if ref.kind == "zoo":
        from compression.models import checkpoint_path
        path = checkpoint_path(ref.text)
        return f"{path.stat().st_mtime_ns}" if path.is_file() else ""
    return ""


def weights_fingerprint(ref: ModelRef) -> str:
    """SHA-256 of the weights a reference loads (zoo checkpoint or the user's file); for random-init
    torchvision models and entry points, the reference itself (they are built seeded)."""
    from compression.store import file_sha256
    if ref.weights:
        return file_sha256(Path(ref.weights))
    if ref.kind == "zoo":
        from compression.models import checkpoint_path
        return file_sha256(checkpoint_path(ref.text))
    return f"{ref.text}|pretrained={ref.pretrained}"


def baseline(resolved: Resolved, device: torch.device | str = "cpu", *, limit: int | None = None):
    """Metrics of the reference as given: the zoo's are cached on disk (metrics.baseline_metrics),
    others in memory per resolved model."""
    from compression.metrics import baseline_metrics, measure
    device = torch.device(device)
    if resolved.ref.kind == "zoo" and not resolved.ref.weights:
        return baseline_metrics(resolved.ref.text, resolved.dataset, device, limit=limit)
    key = (device.type, limit)
    if key not in resolved._baseline:
        resolved._baseline[key] = measure(resolved.model, resolved.dataset, device=device, limit=limit)
    return resolved._baseline[key]
