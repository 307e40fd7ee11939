"""Dataset registry and loaders.

Images are kept decoded in memory as uint8 tensors (N, C, H, W) and normalized per batch, so a
whole dataset costs N*C*H*W bytes (Fashion-MNIST: 55 MB) and a batch costs one fused op. An image
folder too large for the memory budget keeps a split on disk instead (compression.imagefolder,
compression.lazy_images.LazyImages): indexing `split.images` reads those rows, and `batches`
streams.
Decoded tensors are cached on disk (torch.save of plain tensors, read back with
weights_only=True), so the second load of 70k images takes a fraction of a second.

Splits: `train` and `val` are carved from the dataset's training set with a fixed permutation
(seed 0) so every part of the app fine-tunes and calibrates on the same images; `test` is used
only to report accuracy.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from compression import CompressionError
from compression.imagefolder import IMAGE_SIZE, IMAGE_SUFFIXES, parse_image_folder  # noqa: F401  (were here)
from compression.lazy_images import LazyImages
from compression.paths import home_dir

VAL_SIZE = 5000  # images carved from the training set for fine-tuning and calibration
SPLIT_SEED = 0

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class Split:
    images: "torch.Tensor | LazyImages"  # (N, C, H, W) uint8; indexing a LazyImages reads from disk
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def on_disk(self) -> bool:
        return isinstance(self.images, LazyImages)

    def head(self, n: int | None) -> "Split":
        """The first n images (all of them when n is None)."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise CompressionError(f"number of images must be positive, got {n}")
        return self.take(slice(0, n))

    def take(self, index) -> "Split":
        """The images `index` picks (a slice, or an index tensor), in its order; a split on disk stays there."""
        images = self.images.select(index) if isinstance(self.images, LazyImages) else self.images[index]
        return Split(images, self.labels[index])


@dataclass(frozen=True)
class Dataset:
    name: str
    classes: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    mean: tuple[float, ...]  # per channel, of train images scaled to [0, 1]
    std: tuple[float, ...]
    source: str  # where the files were read from, shown in the UI
    warnings: tuple[str, ...] = ()  # what was left out while loading (an image folder's bad files), one line each

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.test.images.shape[1:])  # (C, H, W)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise CompressionError(f"unknown split {name!r}; choose train, val or test")
        return getattr(self, name)

    def normalize(self, images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float32 normalized, on `device`."""
        if isinstance(images, LazyImages):
            images = images.load()
        x = images.to(device) if device is not None else images
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x.float() / 255.0 - mean) / std

    def batches(self, split: str | Split, batch_size: int = 256, *, shuffle: bool = False,
                seed: int = 0, device: torch.device | str = "cpu",
                limit: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield normalized (x, y) batches; `limit` keeps the first `limit` images of the split."""
        data = self.split(split) if isinstance(split, str) else split
        data = data.head(limit)
        n = len(data)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(seed))
                 if shuffle else torch.arange(n))
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield self.normalize(data.images[idx], device), data.labels[idx].to(device)


# ---------------------------------------------------------------------------------------------
# registry

Loader = Callable[[str], tuple[dict[str, torch.Tensor], str]]
_LOADERS: dict[str, tuple[Loader, tuple[str, ...]]] = {}


def register_dataset(name: str, classes: tuple[str, ...]):
    def wrap(fn: Loader) -> Loader:
        _LOADERS[name] = (fn, classes)
        return fn
    return wrap


def dataset_names() -> list[str]:
    """Registered dataset names; `imagefolder:<path>` and uploaded folders' names
    (compression.imagefolder.uploaded_names) are accepted besides these."""
    return list(_LOADERS)


def load_dataset(name: str = "fashion-mnist") -> Dataset:
    """Load (and cache) a dataset by name; raises CompressionError with where it looked."""
    if not isinstance(name, str) or not name:
        raise CompressionError(f"dataset name must be a non-empty string, got {name!r}")
    if name not in _LOADERS:
        from compression.imagefolder import is_image_folder, load_image_folder, uploaded_names
        if is_image_folder(name):
            return load_image_folder(name)
        uploaded = uploaded_names()
        raise CompressionError(
            f"unknown dataset {name!r}; choose one of {', '.join(dataset_names() + uploaded)} or imagefolder:<path>")
    return _load_cached(name, _search_key())


def _search_key() -> str:
    """What decides where files are looked up; part of the in-process cache key."""
    return "|".join([os.environ.get("COMPRESSION_DATA", ""), os.getcwd(),
                     os.environ.get("COMPRESSION_OFFLINE", ""), os.environ.get("COMPRESSION_HOME", "")])


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, key: str) -> Dataset:
    loader, classes = _LOADERS[name]
    tensors, source = loader(name)
    return _assemble(name, classes, tensors, source)


def carve_val(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) indices into a training set of n images: val is a fixed random tenth (at most
    VAL_SIZE), each sorted."""
    val_n = min(VAL_SIZE, n // 10)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return perm[val_n:].sort().values, perm[:val_n].sort().values


def _assemble(name: str, classes: tuple[str, ...], t: dict[str, torch.Tensor], source: str) -> Dataset:
    train_x, train_y = t["train_images"], t["train_labels"].long()
    train_idx, val_idx = carve_val(train_y.shape[0])
    scaled = train_x[train_idx].float() / 255.0  # (N, C, H, W)
    mean = tuple(round(v, 4) for v in scaled.mean(dim=(0, 2, 3)).tolist())
    std = tuple(round(v, 4) for v in scaled.std(dim=(0, 2, 3)).tolist())
    return Dataset(
        name=name, classes=classes,
        train=Split(train_x[train_idx], train_y[train_idx]),
        val=Split(train_x[val_idx], train_y[val_idx]),
        test=Split(t["test_images"], t["test_labels"].long()),
        mean=mean, std=std, source=source)


# ---------------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> torch.Tensor:
    """Parse one IDX file (optionally gzipped) into a uint8 tensor."""
    raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CompressionError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(torch.tensor(dims).prod())
    if len(raw) != expected:
        raise CompressionError(f"{path}: truncated or corrupt IDX file ({len(raw)} bytes, expected {expected})")
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return data.reshape(dims)


def _find_idx_dir(root: Path) -> Path | None:
    for folder in (root, root / "FashionMNIST" / "raw", root / "MNIST" / "raw",
                   root / "fashion-mnist", root / "mnist"):
        if all(_idx_path(folder, stem) for stem in IDX_FILES.values()):
            return folder
    return None


def _idx_path(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_dir(folder: Path) -> dict[str, torch.Tensor]:
    t = {key: read_idx(_idx_path(folder, stem)) for key, stem in IDX_FILES.items()}  # type: ignore[arg-type]
    for key in ("train_images", "test_images"):
        t[key] = t[key].unsqueeze(1)  # (N, 28, 28) -> (N, 1, 28, 28)
    for split in ("train", "test"):
        if t[f"{split}_images"].shape[0] != t[f"{split}_labels"].shape[0]:
            raise CompressionError(f"{folder}: {split} images and labels differ in count")
    return t


def _search_roots(system_dir: str) -> list[tuple[str, Path]]:
    roots = []
    env = os.environ.get("COMPRESSION_DATA")
    if env:
        if not Path(env).is_dir():
            raise CompressionError(f"COMPRESSION_DATA={env!r} is not a folder; unset it or point it at the data")
        roots.append((f"$COMPRESSION_DATA ({env})", Path(env)))
    roots.append(("./data", Path("data")))
    roots.append((system_dir, Path(system_dir)))
    return roots


def _load_idx_dataset(name: str, system_dir: str, tv_class: str, apt_hint: str) -> tuple[dict, str]:
    looked = []
    for label, root in _search_roots(system_dir):
        looked.append(label)
        folder = _find_idx_dir(root)
        if folder is not None:
            return _decode_with_cache(name, folder, _read_idx_dir), str(folder)
    if os.environ.get("COMPRESSION_OFFLINE"):
        reason = "download disabled by COMPRESSION_OFFLINE"
    else:
        target = Path(os.environ.get("COMPRESSION_DATA") or "data")
        try:
            import torchvision.datasets as tvd
            getattr(tvd, tv_class)(root=str(target), train=True, download=True)
            getattr(tvd, tv_class)(root=str(target), train=False, download=True)
            folder = _find_idx_dir(target)
            if folder is not None:
                return _decode_with_cache(name, folder, _read_idx_dir), str(folder)
            reason = "download finished but the files were not found"
        except Exception as exc:  # network errors come in many types
            reason = f"download failed ({type(exc).__name__})"
    raise CompressionError(
        f"{name} not found: looked in {', '.join(looked)}; {reason}. {apt_hint}")


@register_dataset("fashion-mnist", FASHION_CLASSES)
def _fashion_mnist(name: str) -> tuple[dict, str]:
    return _load_idx_dataset(
        name, "/usr/share/datasets/fashion-mnist", "FashionMNIST",
        "Install it with `sudo apt-get install dataset-fashion-mnist`, or go online so torchvision can download it.")


@register_dataset("mnist", MNIST_CLASSES)
def _mnist(name: str) -> tuple[dict, str]:
    return _load_idx_dataset(name, "/usr/share/datasets/mnist", "MNIST",
                             "Go online so torchvision can download it, or put the IDX files in ./data.")


@register_dataset("cifar10", CIFAR10_CLASSES)
def _cifar10(name: str) -> tuple[dict, str]:
    target = Path(os.environ.get("COMPRESSION_DATA") or "data")
    download = not os.environ.get("COMPRESSION_OFFLINE")
    try:
        import torchvision.datasets as tvd
        parts = {}
        for split, train in (("train", True), ("test", False)):
            ds = tvd.CIFAR10(root=str(target), train=train, download=download)
            parts[f"{split}_images"] = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
            parts[f"{split}_labels"] = torch.tensor(ds.targets, dtype=torch.int64)
    except Exception as exc:
        raise CompressionError(
            f"cifar10 not found in {target} and could not be downloaded ({type(exc).__name__}); "
            "go online so torchvision can download it") from None
    return parts, str(target / "cifar-10-batches-py")


# ---------------------------------------------------------------------------------------------
# decoded-tensor cache

def _decode_with_cache(name: str, folder: Path, decode: Callable[[Path], dict[str, torch.Tensor]],
                       stamp: str | None = None) -> dict[str, torch.Tensor]:
    """Decode once, then read the uint8 tensors back from $COMPRESSION_HOME/cache."""
    if stamp is None:
        stamp = hashlib.sha256("".join(
            f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.iterdir())
            if p.is_file()).encode()).hexdigest()[:16]
    cache = home_dir() / "cache" / "datasets" / f"{name}-{stamp}.pt"
    if cache.is_file():
        try:
            return torch.load(cache, weights_only=True)
        except Exception:
            cache.unlink(missing_ok=True)  # half-written or corrupt: decode again
    tensors = decode(folder)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")  # two sessions may decode at once
    torch.save(tensors, tmp)
    os.replace(tmp, cache)  # atomic: a reader never sees half a file
    return tensors
