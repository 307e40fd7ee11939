"""Model references, resolved once: a name -> a module plus its input contract.

Kinds of reference (every method, page and command accepts all of them); each is a source module
in compression/models/ that registers itself here (`register_source`):

    cnn, lenet5, my-net        a zoo model (assets/models/<name>.json + checkpoint), or a named model
                               kept under $COMPRESSION_HOME/models (`models add`; same card format)
    torchvision:<arch>         any torchvision classifier, for the dataset's classes
    timm:<arch>                timm's create_model(arch) for the dataset's classes and channels
    hf:<directory>             a transformers image classifier saved with save_pretrained
    entry:<name>               a builder an installed package registers under the entry-point group
                               `compression_explorer.models`
    run:<id>                   a stored run's artifact (its contract and lineage come with it)

Options ride on the reference text, so a reference travels whole to sweep workers and pipeline
steps: `torchvision:resnet18?weights=/data/mine.pt&normalize=none&input_size=64` (`ModelRef.spec`).
`weights` is the user's state_dict for the architecture, `pretrained` the published weights,
`normalize` (dataset | imagenet | none) or `mean`+`std` the normalization the weights expect,
`input_size` the side images are resized to.

`resolve(text, dataset=...)` gives a `Resolved`: the model (eval mode, on the device), its input
contract (compression.contract), the dataset seen through that contract (normalized and resized
as the model expects: every `dataset.batches(...)` caller feeds the model what it was trained on)
and `architecture`, the JSON-able recipe that rebuilds the untrained module (`rebuild`), which
artifacts record in their header with the contract under the key "contract".
"""

from __future__ import annotations

import hashlib
import importlib
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import torch
import torch.nn as nn

from compression import CompressionError
from compression.contract import IMAGENET_MEAN, IMAGENET_STD, InputContract, model_view
from compression.data import Dataset, load_dataset
from compression.models.registry import KINDS, ModelRef, Source, register_source, source_of, sources  # noqa: F401

TORCHVISION = "torchvision:"
ENTRY = "entry:"
TIMM = "timm:"
HF = "hf:"
RUN = "run:"
ENTRY_POINT_GROUP = "compression_explorer.models"
NORMALIZE = ("dataset", "imagenet", "none")
OPTIONS = ("weights", "pretrained", "normalize", "mean", "std", "input_size")


@dataclass
class Resolved:
    ref: ModelRef
    model: nn.Module                # eval mode; shared: never modify it (methods copy)
    dataset: Dataset                # seen through the contract: normalized and sized as the model expects
    architecture: dict[str, Any]    # {"name", "builder", "kwargs", "contract"}: rebuild() -> untrained module
    _baseline: dict = field(default_factory=dict, repr=False)
    input_contract: InputContract | None = None

    @property
    def name(self) -> str:
        return self.ref.label

    @property
    def contract(self) -> InputContract:
        """The model's input contract: normalization, input size, channels and classes (the
        model's own: its card, its library's metadata, or what the user stated)."""
        if self.input_contract is not None:
            return self.input_contract
        return contract_for(self.ref, raw_dataset(self.dataset))

    @property
    def provenance(self) -> dict[str, Any]:
        """What a stored run records about its model: reference, weights file + SHA-256, contract."""
        out: dict[str, Any] = {"reference": self.ref.text, "spec": self.ref.spec, "kind": self.ref.kind,
                               "contract": self.contract.to_json(), "contract_source": self.contract.source}
        if self.ref.weights:
            from compression.store import file_sha256
            out["weights"] = Path(self.ref.weights).name
            out["weights_sha256"] = file_sha256(Path(self.ref.weights))
        if self.ref.pretrained:
            out["pretrained"] = True
        if self.ref.kind == "run":
            out["parent_id"] = int(self.ref.text[len(RUN):])
        return out


# ---------------------------------------------------------------------------------------------
# parsing

def entry_points() -> dict[str, Any]:
    """Installed builders: entry-point name -> EntryPoint (group compression_explorer.models)."""
    from importlib.metadata import entry_points as installed
    return {ep.name: ep for ep in installed(group=ENTRY_POINT_GROUP)}


def _floats(key: str, text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise CompressionError(f"{key} {text!r} must be numbers separated by commas, e.g. 0.5,0.5,0.5") from None
    if len(values) not in (1, 3):
        raise CompressionError(f"{key} {text!r} needs 1 (gray) or 3 (RGB) values")
    if key == "std" and any(v <= 0 for v in values):
        raise CompressionError(f"std {text!r} must be positive")
    return values


def _split_options(text: str) -> tuple[str, dict[str, str]]:
    base, sep, query = text.rpartition("?")
    if not sep or not query or "=" not in query:
        return text, {}
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = [k for k in options if k not in OPTIONS]
    if unknown:
        raise CompressionError(f"model reference option {unknown[0]!r} unknown; use {', '.join(OPTIONS)}")
    return base, options


def parse(text: str, *, weights: str | Path | None = None, pretrained: bool = False,
          normalize: str | None = None, mean: Any = None, std: Any = None,
          input_size: int | None = None) -> ModelRef:
    """Check a reference's syntax and that it names something that exists; one-line errors.
    Options may be given as keywords or in the text after '?' (see the module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise CompressionError(f"model reference must be a non-empty string, got {text!r}")
    text, opts = _split_options(text.strip())
    weights = str(weights) if weights is not None else opts.get("weights") or None
    pretrained = bool(pretrained) or opts.get("pretrained", "") in ("1", "true", "yes")
    normalize = normalize or opts.get("normalize") or None
    mean = mean if mean is not None else opts.get("mean")
    std = std if std is not None else opts.get("std")
    size = input_size if input_size is not None else opts.get("input_size")
    if normalize is not None and normalize not in NORMALIZE:
        raise CompressionError(f"normalize {normalize!r} unknown; choose {', '.join(NORMALIZE)}")
    mean = _floats("mean", mean if isinstance(mean, str) else ",".join(map(str, mean))) if mean is not None else None
    std = _floats("std", std if isinstance(std, str) else ",".join(map(str, std))) if std is not None else None
    if (mean is None) != (std is None) or (mean is not None and len(mean) != len(std)):
        raise CompressionError("give --mean and --std together, with as many values each")
    if mean is not None and normalize is not None:
        raise CompressionError(f"give either normalize={normalize} or mean/std, not both")
    if size is not None:
        if not str(size).isdigit() or not 8 <= int(size) <= 1024:
            raise CompressionError(f"input size {size!r} must be an integer in [8, 1024]")
        size = int(size)
    source = _source_for(text)
    if pretrained and not source.pretrained:
        raise CompressionError(f"pretrained weights are for torchvision:<arch> and timm:<arch> references, not {text!r}")
    if pretrained and weights:
        raise CompressionError(f"{text}: give either pretrained or a weights file, not both")
    ref = ModelRef(text, source.kind, weights, pretrained, normalize, mean, std, size)
    source.check(ref)
    return ref


def _source_for(text: str) -> Source:
    for source in sources().values():
        if source.prefix and text.startswith(source.prefix):
            return source
    return sources()["zoo"]


def torchvision_architectures() -> list[str]:
    import torchvision.models as tvm
    return sorted(tvm.list_models(module=tvm))


def all_references() -> list[str]:
    """What a picker offers: the zoo (and users' models), then installed entry points."""
    from compression.models import zoo_names
    return zoo_names() + [ENTRY + n for n in sorted(entry_points())]


def default_dataset(ref: ModelRef) -> str | None:
    return sources()[ref.kind].default_dataset(ref)


# ---------------------------------------------------------------------------------------------
# the contract and building

def contract_for(ref: ModelRef, data: Dataset) -> InputContract:
    """The model's input contract on `data`: its source's, with what the user stated on top."""
    own = sources()[ref.kind].contract(ref, data)
    channels = data.input_shape[0]
    mean, std, source = own.mean, own.std, own.source
    if ref.normalize == "dataset":
        mean, std, source = data.mean, data.std, "user: dataset"
    elif ref.normalize == "imagenet":
        mean, std, source = IMAGENET_MEAN, IMAGENET_STD, "user: imagenet"
    elif ref.normalize == "none":
        mean, std, source = (0.0,) * channels, (1.0,) * channels, "user: none"
    elif ref.mean is not None:
        mean, std, source = ref.mean, ref.std, "user"
    size = (ref.input_size, ref.input_size) if ref.input_size else tuple(own.input_size)
    return InputContract(_channels(mean, channels), _channels(std, channels), size, channels,
                         tuple(data.classes), source)


def _channels(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    """Per-channel values for `channels`: RGB statistics averaged for gray images, one value repeated."""
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    if channels == 1:
        return (sum(values) / len(values),)
    return values[:1] * channels


def raw_dataset(data: Dataset) -> Dataset:
    """The dataset as loaded, under any contract view."""
    return getattr(data, "raw", None) or data


def architecture_for(ref: ModelRef, dataset: Dataset, contract: InputContract | None = None) -> dict[str, Any]:
    """The recipe that rebuilds `ref`'s untrained module for `dataset` (stored in artifacts), with
    the model's input contract under "contract"."""
    dataset = raw_dataset(dataset)
    contract = contract or contract_for(ref, dataset)
    recipe = sources()[ref.kind].architecture(ref, dataset, contract)
    return {**recipe, "contract": {**contract.to_json(), "source": contract.source}}


def rebuild(architecture: dict[str, Any]) -> nn.Module:
    """The untrained module an architecture recipe describes (artifact headers, workers).

    Only builders this code knows are imported: compression's own (`compression.<module>:<fn>`),
    those the sources register (torchvision, timm, hf, installed entry points); a file cannot name
    other code."""
    builder, kwargs = architecture.get("builder"), dict(architecture.get("kwargs") or {})
    if isinstance(builder, str):
        for source in sources().values():
            if builder in source.builders or (source.kind == "entry" and builder.startswith(ENTRY)):
                return source.rebuild(builder, kwargs)
    if not isinstance(builder, str) or ":" not in builder or not builder.startswith("compression."):
        raise CompressionError(f"artifact names no usable builder ({builder!r}): only compression's own "
                               "builders, torchvision, timm, hf and installed entry points are loaded")
    module, _, fn = builder.partition(":")
    try:
        return getattr(importlib.import_module(module), fn)(**kwargs)
    except (ImportError, AttributeError):
        raise CompressionError(f"artifact names a builder this code does not have ({builder!r})") from None


def dataset_for(ref: ModelRef | str, dataset: str | Dataset | None = None) -> Dataset:
    """The Dataset to evaluate `ref` on (its own by default), checked for shape and classes."""
    ref = parse(ref) if isinstance(ref, str) else ref
    if isinstance(dataset, Dataset):
        data = raw_dataset(dataset)
    else:
        name = dataset or default_dataset(ref)
        if name is None:
            raise CompressionError(f"{ref.text} needs a dataset, e.g. --dataset cifar10 or imagefolder:<path>")
        data = load_dataset(name)
    sources()[ref.kind].check_input(ref, data)
    return data


def load(ref: ModelRef, data: Dataset, device: torch.device | str = "cpu",
         contract: InputContract | None = None) -> nn.Module:
    """The referenced model with its weights, in eval mode on `device`."""
    from compression.models import load_state_dict_checked, read_state_dict
    data = raw_dataset(data)
    contract = contract or contract_for(ref, data)
    source = sources()[ref.kind]
    model = source.build(ref, data, contract)
    if ref.weights:
        path = Path(ref.weights)
        load_state_dict_checked(model, source.adapt_state(model, read_state_dict(path)), source=path.name)
    return model.to(device).eval()


_CACHE: dict[tuple, Resolved] = {}
_LOCK = threading.Lock()
_CACHE_ENTRIES = 16


def resolve(ref: ModelRef | str, dataset: str | Dataset | None = None, *,
            device: torch.device | str = "cpu", weights: str | Path | None = None,
            pretrained: bool = False, **options: Any) -> Resolved:
    """A reference resolved to its model, contract, dataset view and rebuild recipe (cached: never
    modify `.model`). Random-init models are seeded, so a reference means one model. `options`:
    normalize, mean, std, input_size (as in `parse`)."""
    if isinstance(ref, str):
        ref = parse(ref, weights=weights, pretrained=pretrained, **options)
    elif weights is not None or pretrained or any(v is not None for v in options.values()):
        ref = parse(ref.spec, weights=weights, pretrained=pretrained, **options)
    data = dataset_for(ref, dataset)
    device = torch.device(device)
    stamp = _weights_stamp(ref)
    key = (ref, data.name, data.source, device.type, stamp)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    contract = contract_for(ref, data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = load(ref, data, device, contract)
    resolved = Resolved(ref, model, model_view(data, contract), architecture_for(ref, data, contract),
                        input_contract=contract)
    with _LOCK:
        if len(_CACHE) >= _CACHE_ENTRIES:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = resolved
    return resolved


def with_model(resolved: Resolved, model: nn.Module) -> Resolved:
    """The same reference, contract and dataset view with another module (a loaded copy)."""
    return replace(resolved, model=model, _baseline={})


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
    models and entry points, the reference itself (they are built seeded)."""
    from compression.store import file_sha256
    if ref.weights:
        return file_sha256(Path(ref.weights))
    if ref.kind == "zoo":
        from compression.models import checkpoint_path
        return file_sha256(checkpoint_path(ref.text))
    return f"{ref.spec}|pretrained={ref.pretrained}"


def baseline(resolved: Resolved, device: torch.device | str = "cpu", *, limit: int | None = None):
    """Metrics of the reference as given: the zoo's are cached on disk (metrics.baseline_metrics),
    others in memory per resolved model."""
    from compression.metrics import baseline_metrics, measure
    device = torch.device(device)
    ref = resolved.ref
    if ref.kind == "zoo" and ref.spec == ref.text and resolved.dataset is raw_dataset(resolved.dataset):
        return baseline_metrics(ref.text, resolved.dataset, device, limit=limit)
    key = (device.type, limit)
    if key not in resolved._baseline:
        if limit is None:  # every test image: its logits and rate also seed the sliders' previews
            from compression.preview_subset import remember_full
            from compression.training import predict
            start = time.perf_counter()
            logits = predict(resolved.model, resolved.dataset, "test", device=device)
            remember_full(resolved.model, resolved.dataset, device, logits, time.perf_counter() - start)
            resolved._baseline[key] = measure(resolved.model, resolved.dataset, device=device, logits=logits)
        else:
            resolved._baseline[key] = measure(resolved.model, resolved.dataset, device=device, limit=limit)
    return resolved._baseline[key]
