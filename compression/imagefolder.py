"""Image folders: `imagefolder:<root>[?size=N]`, or the short name of an uploaded folder
(compression.datasets_upload keeps those under $COMPRESSION_HOME/datasets/<name>).

A folder holds `train/<class>/` and `test/<class>/` (or `val/`) with JPEG, PNG, WebP (BMP, GIF,
TIFF) photos of any size and mode, in nested folders too. Each image is decoded once: EXIF
rotation applied, converted to RGB (grayscale, palette and RGBA alike, as torchvision's loader
does), resized to N x N (default 32). The decoded uint8 rows are cached on disk per size
($COMPRESSION_HOME/cache/datasets/imagefolder-<size>-<folder>-<stamp>/: one raw file per split and
meta.pt), so a second load reads no image file. A split whose decoded bytes fit the memory budget
(compression.lazy_images.memory_budget) is read into memory; a larger one stays on disk and is read
a batch at a time (compression.lazy_images.LazyImages). A split's images come in a fixed shuffled
order (seed 0), never class by class: whatever takes "the first n" (--limit, a fine-tuning subset)
gets every class.

Nothing a folder holds stops the rest from loading: an empty class folder, a class missing from
train or test, a file that is not an image or cannot be decoded each give one line naming the folder
or file (`Dataset.warnings`), and the rest loads. A folder that gives no usable split is refused in
one line.

Decoding runs in a pool of threads, not DataLoader worker processes: Pillow releases the GIL while
it decodes and resizes, and threads are safe where forking is not (a Streamlit server's threads, a
Dask worker, which may not have child processes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from compression import CompressionError
from compression.paths import home_dir

IMAGE_SIZE = 32      # side images are resized to unless the reference says ?size=N
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
DECODER = "2"        # part of the cache key: change it when decoding changes
SPLITS = ("train", "test")
PREFIX = "imagefolder:"
SHUFFLE_SEED = 0     # the order of a split's images: a fixed permutation of the files sorted by class and name
WINDOW = 256         # images decoded between two writes (bounds what waits in memory)


# ---------------------------------------------------------------------------------------------
# names

def parse_image_folder(name: str) -> tuple[Path, int]:
    """'imagefolder:<path>[?size=N]' or '<uploaded name>[?size=N]' -> (folder, side)."""
    spec = name[len(PREFIX):] if name.startswith(PREFIX) else name
    size = IMAGE_SIZE
    if "?size=" in spec:
        spec, _, text = spec.rpartition("?size=")
        if not text.isdigit() or not 8 <= int(text) <= 1024:
            raise CompressionError(f"imagefolder size {text!r} must be an integer in [8, 1024]")
        size = int(text)
    if name.startswith(PREFIX):
        return Path(spec).expanduser(), size
    return datasets_dir() / spec, size


def datasets_dir() -> Path:
    """Where uploaded folders are kept, one per name."""
    return home_dir() / "datasets"


def uploaded_names() -> list[str]:
    """Names of the folders kept under datasets_dir(), sorted."""
    folder = datasets_dir()
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if folder.is_dir() else []


def is_image_folder(name: str) -> bool:
    """An `imagefolder:` reference, or the name of an uploaded folder (with ?size=N or not)."""
    return name.startswith(PREFIX) or name.partition("?")[0] in uploaded_names()


def class_count(name: str) -> int | None:
    """How many classes an image folder reference has (its class folders in train/ and test/, as
    scan_folder counts them), without decoding an image; None when it is not one or cannot be read."""
    try:
        if not is_image_folder(name):
            return None
        root, _ = parse_image_folder(name)
        found = {d.name for split in ("train", "test", "val") if (root / split).is_dir()
                 for d in (root / split).iterdir() if d.is_dir() and not _hidden(d)}
    except (OSError, CompressionError):
        return None
    return len(found) or None


# ---------------------------------------------------------------------------------------------
# what a folder holds

@dataclass
class Scan:
    root: Path
    classes: tuple[str, ...]
    files: dict[str, list[tuple[Path, int]]]       # split -> (file, label), in a fixed shuffled order
    dirs: dict[str, str] = field(default_factory=dict)  # split -> its folder's name (test/ or val/)
    warnings: list[str] = field(default_factory=list)
    stamp: str = ""                                # changes when a file is added, removed or touched


def _hidden(p: Path) -> bool:
    return p.name.startswith(".") or p.name == "__MACOSX"  # macOS leaves these in zips: nobody's data


def scan_folder(root: Path) -> Scan:
    """The folder's classes and image files per split, with a line for everything left out."""
    if not root.is_dir():
        raise CompressionError(f"imagefolder: {str(root)!r} is not a folder")
    dirs = {"train": root / "train", "test": next((root / d for d in ("test", "val") if (root / d).is_dir()), None)}
    if not dirs["train"].is_dir() or dirs["test"] is None:
        raise CompressionError(
            f"imagefolder:{root}: expected {root}/train/<class>/ and {root}/test/<class>/ folders of images")
    warnings: list[str] = []
    found: dict[str, dict[str, list[Path]]] = {}
    for split, folder in dirs.items():
        found[split] = {}
        for entry in sorted(folder.iterdir()):
            if _hidden(entry):
                continue
            if entry.is_dir():
                found[split][entry.name] = _class_files(entry, root, warnings)
            else:
                warnings.append(f"{entry.relative_to(root)}: not in a class folder; skipped")
    classes = tuple(sorted(set(found["train"]) | set(found["test"])))
    if len(classes) < 2:
        raise CompressionError(f"imagefolder:{root}: need at least 2 class folders in train/ and test/, "
                               f"found {len(classes)}")
    files: dict[str, list[tuple[Path, int]]] = {s: [] for s in SPLITS}
    for label, cls in enumerate(classes):
        for split in SPLITS:
            where = f"{dirs[split].name}/{cls}/"
            if cls not in found[split]:
                warnings.append(f"{where}: missing; class {cls!r} has no {_split_words(split)}")
            elif not found[split][cls]:
                warnings.append(f"{where}: no image files; class {cls!r} has no {_split_words(split)}")
            files[split] += [(p, label) for p in found[split].get(cls, [])]
    h = hashlib.sha256(f"{DECODER}|{classes}".encode())
    for split in SPLITS:
        for p, label in files[split]:
            st = p.stat()
            h.update(f"{p.relative_to(root)}:{label}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        # a fixed shuffle: folders are sorted by class, and whatever takes "the first n images" (--limit,
        # a fine-tuning subset, the monitor's images) must not get only the first classes
        order = torch.randperm(len(files[split]), generator=torch.Generator().manual_seed(SHUFFLE_SEED)).tolist()
        files[split] = [files[split][i] for i in order]
    return Scan(root, classes, files, {s: d.name for s, d in dirs.items()}, warnings, h.hexdigest()[:16])


def _split_words(split: str) -> str:
    return "training images" if split == "train" else "test images (its accuracy is not measured)"


def _class_files(folder: Path, root: Path, warnings: list[str]) -> list[Path]:
    """Image files under a class folder (nested folders too), by name; other files noted."""
    images = []
    for p in sorted(folder.rglob("*")):
        if any(part.startswith(".") or part == "__MACOSX" for part in p.relative_to(folder).parts) or not p.is_file():
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            images.append(p)
        else:
            warnings.append(f"{p.relative_to(root)}: not an image file ({p.suffix or 'no extension'}); skipped")
    return images


# ---------------------------------------------------------------------------------------------
# decoding

def decode_image(path: Path, size: int) -> torch.Tensor:
    """One file -> (3, size, size) uint8: EXIF rotation applied, RGB, resized. Raises on a bad file."""
    from PIL import Image, ImageOps
    with Image.open(path) as im:
        im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale that is still >= size (much faster)
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB").resize((size, size))
        return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def _decode_one(path: Path, size: int) -> tuple[torch.Tensor | None, str]:
    try:
        return decode_image(path, size), ""
    except Exception as exc:  # Pillow raises many types for a bad file (OSError, SyntaxError, ...)
        reason = str(exc).split("\n")[0].replace(f" '{path}'", "").replace(str(path), path.name)
        return None, reason[:160] or type(exc).__name__


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _decode_split(files: list[tuple[Path, int]], size: int, out: Path, root: Path, warnings: list[str],
                  phase: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode `files` into the raw file `out` (rows in order, unreadable files left out); returns
    (labels, per-image channel sums (n, 3, 2): sum and sum of squares)."""
    from compression.training import new_span, tick
    labels, sums, bad = [], [], []
    span = new_span()
    with open(out, "wb") as f, ThreadPoolExecutor(_workers(), thread_name_prefix="decode") as pool:
        for start in range(0, len(files), WINDOW):
            tick(span, phase, start, len(files))
            chunk = files[start:start + WINDOW]
            for (path, label), (img, reason) in zip(chunk, pool.map(lambda fl: _decode_one(fl[0], size), chunk)):
                if img is None:
                    bad.append(f"{path.relative_to(root)}: not a readable image ({reason}); skipped")
                    continue
                f.write(img.numpy().tobytes())
                x = img.to(torch.float64).flatten(1)
                sums.append(torch.stack([x.sum(1), (x * x).sum(1)], dim=1))
                labels.append(label)
    warnings += sorted(bad)
    return torch.tensor(labels, dtype=torch.int64), (torch.stack(sums) if sums else torch.zeros(0, 3, 2))


def _cache_dir(root: Path, size: int, stamp: str) -> Path:
    where = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return home_dir() / "cache" / "datasets" / f"imagefolder-{size}-{where}-{stamp}"


def decoded(scan: Scan, size: int) -> tuple[Path, dict]:
    """(cache folder, meta) of the folder decoded at `size`: read back, or decoded now."""
    target = _cache_dir(scan.root, size, scan.stamp)
    meta = _read_meta(target)
    if meta is not None:
        return target, meta
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}-{threading.get_ident()}")
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        warnings = list(scan.warnings)
        meta = {"decoder": DECODER, "size": size, "classes": list(scan.classes)}
        for split in SPLITS:
            labels, sums = _decode_split(scan.files[split], size, tmp / f"{split}.u8", scan.root, warnings,
                                         f"decoding {split} images at {size} x {size}")
            meta[f"{split}_labels"], meta[f"{split}_sums"] = labels, sums
        for split in SPLITS:  # a class whose every file failed to decode
            listed, seen = {lb for _, lb in scan.files[split]}, set(meta[f"{split}_labels"].tolist())
            for label in sorted(listed - seen):
                cls = scan.classes[label]
                warnings.append(f"{scan.dirs[split]}/{cls}/: no readable image; class {cls!r} has no "
                                f"{_split_words(split)}")
        meta["warnings"] = warnings
        torch.save(meta, tmp / "meta.pt")
        try:
            os.replace(tmp, target)  # atomic: a reader sees the whole folder or none
        except OSError:  # another session finished the same folder first: use theirs
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = _read_meta(target)
    if meta is None:
        raise CompressionError(f"{target}: could not write the decoded-image cache")
    return target, meta


def _read_meta(target: Path) -> dict | None:
    try:
        meta = torch.load(target / "meta.pt", weights_only=True)
    except FileNotFoundError:
        return None
    except Exception:  # half-written or corrupt: decode again
        shutil.rmtree(target, ignore_errors=True)
        return None
    return meta if meta.get("decoder") == DECODER else None


# ---------------------------------------------------------------------------------------------
# the Dataset

_LOADED: dict[tuple, object] = {}
_LOADED_MAX = 4
_LOCK = threading.Lock()


def load_image_folder(name: str):
    """The Dataset of an image folder reference (compression.data.load_dataset calls this)."""
    from compression.lazy_images import memory_budget
    root, size = parse_image_folder(name)
    if not name.startswith(PREFIX) and not root.is_dir():
        raise CompressionError(f"no uploaded dataset named {name.partition('?')[0]!r} in {datasets_dir()}")
    scan = scan_folder(root)
    key = (name, scan.stamp, memory_budget(), str(home_dir().resolve()))
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
    data = _assemble(name, scan, size, memory_budget())
    with _LOCK:
        _LOADED[key] = data
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
    return data


def clear_loaded() -> None:
    """Forget the folders loaded in this process (tests)."""
    with _LOCK:
        _LOADED.clear()


def _assemble(name: str, scan: Scan, size: int, budget: int):
    from compression.data import Dataset, Split, carve_val
    from compression.lazy_images import LazyImages, read_exact
    folder, meta = decoded(scan, size)
    shape = (3, size, size)
    row = 3 * size * size
    counts = {s: len(meta[f"{s}_labels"]) for s in SPLITS}
    for split in SPLITS:
        if counts[split] == 0:
            where = f"{scan.dirs[split]}/"
            mine = sorted((w for w in meta["warnings"] if w.startswith(where)), key=lambda w: "skipped" not in w)
            raise CompressionError(f"imagefolder:{scan.root}: no readable image in {where} "
                                   f"({len(mine)} problem(s) there, first: {(mine or ['no image files'])[0]})")
    in_memory = {"test": counts["test"] * row <= budget}
    in_memory["train"] = (counts["test"] * row if in_memory["test"] else 0) + counts["train"] * row <= budget

    def images(split: str):
        path, n = folder / f"{split}.u8", counts[split]
        if not in_memory[split]:
            return LazyImages(path, shape, torch.arange(n))
        buf = bytearray(n * row)
        with open(path, "rb", buffering=0) as f:
            read_exact(f, memoryview(buf), path)
        return torch.frombuffer(buf, dtype=torch.uint8).view(n, *shape)

    train_x, train_y = images("train"), meta["train_labels"]
    train_idx, val_idx = carve_val(counts["train"])
    sums = meta["train_sums"][train_idx].sum(0)  # (3, 2): sum and sum of squares of 0..255 pixels
    pixels = len(train_idx) * size * size
    mean = sums[:, 0] / pixels
    std = ((sums[:, 1] - pixels * mean ** 2).clamp(min=0) / max(1, pixels - 1)).sqrt()
    mean, std = mean / 255.0, std / 255.0  # of pixels scaled to [0, 1], as the normalization reads them
    take = (lambda idx: train_x.select(idx)) if isinstance(train_x, LazyImages) else (lambda idx: train_x[idx])
    return Dataset(
        name=name, classes=tuple(meta["classes"]),
        train=Split(take(train_idx), train_y[train_idx]), val=Split(take(val_idx), train_y[val_idx]),
        test=Split(images("test"), meta["test_labels"]),
        mean=tuple(round(float(v), 4) for v in mean),
        std=tuple(round(max(float(v), 1e-3), 4) for v in std),  # a constant channel: no division by zero
        source=str(scan.root), warnings=tuple(meta["warnings"]))
