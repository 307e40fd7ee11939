"""Uploaded image folders: a `.zip` of train/<class>/ and test/<class>/ kept as a named dataset.

On a shared server nobody can type a path on their laptop, so a folder comes as a zip file.
`add_zip(source, name)` extracts it into $COMPRESSION_HOME/datasets/<name> (compression.imagefolder
then loads it as `<name>` or `imagefolder:<that path>`), refusing, before anything is kept:

- an archive larger than `max_zip_bytes`, with more than `max_entries` entries, or that is not a zip;
- entries with an absolute path, a drive letter, `..`, a NUL byte, or a name used twice;
- links, device files and anything else that is not a plain file or a folder; encrypted entries;
- zip bombs: more than `max_total_bytes` once extracted, or an entry that inflates more than
  `max_ratio` times (both from the declared sizes first, then counted while writing, so a size
  that lies is caught too).

Extraction writes only inside a fresh temporary folder under the data folder (files created
exclusively, never through a link), and the folder is moved into place only when all of it passed
and holds train/ and test/; on any refusal it is removed. A single top-level folder in the zip
(`flowers/train/...`) is taken as the dataset's root.
"""

from __future__ import annotations

import json
import os
import math
import re
import shutil
import time
import stat
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from compression import CompressionError
from compression.imagefolder import datasets_dir, scan_folder, uploaded_names

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RECORD = ".upload.json"  # who uploaded it, when, from which file (a hidden file: not part of the data)
COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class UploadLimits:
    max_zip_bytes: int = 1 << 30          # the archive as uploaded (Streamlit's own limit may be lower)
    max_total_bytes: int = 8 << 30        # everything once extracted
    max_entries: int = 200_000            # files and folders
    max_ratio: float = 200.0              # extracted / compressed size of one entry (JPEGs and PNGs: ~1)

    def __post_init__(self) -> None:
        for key in ("max_zip_bytes", "max_total_bytes", "max_entries", "max_ratio"):
            value = getattr(self, key)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value <= 0 or (key != "max_ratio" and value != int(value)):
                kind = "a positive number" if key == "max_ratio" else "a positive whole number"
                raise CompressionError(f"upload limit {key} must be {kind}, got {value!r}")


def check_name(name: str) -> str:
    """A dataset name: letters, digits, '_', '-', '.', at most 64, not a registered dataset's."""
    from compression.data import dataset_names
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name.startswith("imagefolder"):
        raise CompressionError(f"dataset name {name!r} must be 1-64 letters, digits, '_', '-' or '.', "
                               "starting with a letter or digit")
    if name in dataset_names():
        raise CompressionError(f"dataset name {name!r} is a built-in dataset's; choose another")
    return name


def name_from_file(filename: str) -> str:
    """A dataset name suggested by an upload's file name: 'My photos (2).zip' -> 'My-photos-2'."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(filename).stem).strip("-._")
    return stem[:64] or "dataset"


def add_zip(source: str | Path | BinaryIO, name: str, *, limits: UploadLimits = UploadLimits(),
            replace: bool = False) -> Path:
    """Extract a zip of an image folder as the dataset `name`; returns its folder. Needs the role
    that may upload (compression.access: editor, with sign-in); replacing one needs the right to
    manage it."""
    from compression import access
    user = access.require("upload", what="uploading a dataset")
    check_name(name)
    target = datasets_dir() / name
    if target.exists() and not replace:
        raise CompressionError(f"a dataset named {name!r} exists already; choose another name or remove it")
    if target.exists():
        access.require("manage", owner=_owner(target), what=f"replacing dataset {name!r}")
    size = _size_of(source)
    if size > limits.max_zip_bytes:
        raise CompressionError(f"the zip file is {size:,} bytes; the limit is {limits.max_zip_bytes:,}")
    tmp = datasets_dir() / f".upload-{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        try:
            with zipfile.ZipFile(source) as zf:
                _extract(zf, tmp, limits)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise CompressionError(f"not a readable zip file ({exc})") from None
        root = _dataset_root(tmp)
        scan_folder(root)  # refuses a zip without train/<class>/ and test/<class>/ in one line
        filename = getattr(source, "name", None) or str(source)
        (root / RECORD).write_text(json.dumps({"owner": user.name, "file": Path(str(filename)).name,
                                               "added": time.strftime("%Y-%m-%d %H:%M:%S %Z")}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(root, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def remove_dataset(name: str) -> None:
    """Delete an uploaded dataset's folder (stored runs keep their numbers); its uploader (editor)
    or an admin may."""
    from compression import access
    if name not in uploaded_names():
        raise CompressionError(f"no uploaded dataset named {name!r}; there are: {', '.join(uploaded_names()) or 'none'}")
    folder = datasets_dir() / check_name(name)
    access.require("manage", owner=_owner(folder), what=f"removing dataset {name!r}")
    shutil.rmtree(folder)


def _owner(folder: Path) -> str | None:
    try:
        return json.loads((folder / RECORD).read_text()).get("owner")
    except (OSError, ValueError, AttributeError):
        return None  # uploaded before owners were recorded, or copied in by hand


def _size_of(source: str | Path | BinaryIO) -> int:
    if isinstance(source, (str, Path)):
        return Path(source).stat().st_size
    here = source.tell()
    size = source.seek(0, os.SEEK_END)
    source.seek(here)
    return size


def _safe_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The entry's path parts, or a refusal naming it."""
    raw = info.filename
    name = raw.replace("\\", "/")
    if "\x00" in name:
        raise CompressionError(f"zip entry {raw!r} has a NUL byte in its name; refused")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise CompressionError(f"zip entry {raw!r} has an absolute path; refused")
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise CompressionError(f"zip entry {raw!r} points outside the folder ('..'); refused")
    return parts


def _kind(info: zipfile.ZipInfo) -> str:
    """'dir', 'file', or what else the entry is (a link, a device...)."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    if info.is_dir():
        return "dir"
    if kind in (0, stat.S_IFREG):  # zips made on Windows (and Python's writestr) carry no file type
        return "file"
    return "link" if kind == stat.S_IFLNK else "folder" if kind == stat.S_IFDIR else "special file"


def _extract(zf: zipfile.ZipFile, dest: Path, limits: UploadLimits) -> None:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise CompressionError(f"the zip holds {len(infos):,} entries; the limit is {limits.max_entries:,}")
    seen: set[tuple[str, ...]] = set()
    declared = 0
    for info in infos:  # every check that needs no extraction first: nothing is written for a bad zip
        parts = _safe_parts(info)
        kind = _kind(info)
        if kind == "folder":
            raise CompressionError(f"zip entry {info.filename!r} is a folder without a trailing '/'; refused")
        if kind not in ("dir", "file"):
            raise CompressionError(f"zip entry {info.filename!r} is a {kind}; only files and folders are accepted")
        if info.flag_bits & 0x1:
            raise CompressionError(f"zip entry {info.filename!r} is encrypted; refused")
        if kind == "file":
            if not parts:
                raise CompressionError(f"zip entry {info.filename!r} has no name; refused")
            if parts in seen:
                raise CompressionError(f"zip entry {info.filename!r} appears twice; refused")
            seen.add(parts)
            declared += info.file_size
            if info.file_size > limits.max_ratio * max(info.compress_size, 1) and info.file_size > COPY_CHUNK:
                raise CompressionError(f"zip entry {info.filename!r} inflates {info.file_size / max(info.compress_size, 1):,.0f}"
                                       f" times (a zip bomb?); the limit is {limits.max_ratio:g}")
    if declared > limits.max_total_bytes:
        raise CompressionError(f"the zip extracts to {declared:,} bytes; the limit is {limits.max_total_bytes:,}")
    root = dest.resolve()
    written = 0
    for info in infos:
        parts = _safe_parts(info)
        if not parts:
            continue
        path = dest.joinpath(*parts)
        if not path.resolve().is_relative_to(root):  # cannot happen after the checks above; kept as a guard
            raise CompressionError(f"zip entry {info.filename!r} points outside the folder; refused")
        try:
            if _kind(info) == "dir":
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            written += _write_entry(zf, info, path, limits, limits.max_total_bytes - written)
        except OSError as exc:  # a file and a folder of the same name, a name too long...
            raise CompressionError(f"zip entry {info.filename!r} cannot be written ({exc.strerror or exc})") from None


def _write_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, limits: UploadLimits, room: int) -> int:
    """Copy one entry to a new file, counting: more than declared, the ratio or `room` is refused."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    count = 0
    allowed = min(room, max(info.file_size, 0), int(limits.max_ratio * max(info.compress_size, 1)) + COPY_CHUNK)
    with os.fdopen(fd, "wb") as out, zf.open(info) as src:
        while True:
            chunk = src.read(COPY_CHUNK)
            if not chunk:
                break
            count += len(chunk)
            if count > allowed:
                raise CompressionError(f"zip entry {info.filename!r} extracts to more than its declared or allowed "
                                       "size (a zip bomb?); refused")
            out.write(chunk)
    return count


def _dataset_root(tmp: Path) -> Path:
    """The extracted folder that holds train/: the top, or its one folder (macOS' __MACOSX ignored)."""
    if (tmp / "train").is_dir():
        return tmp
    children = [p for p in tmp.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(children) == 1 and children[0].is_dir() and (children[0] / "train").is_dir():
        return children[0]
    found = ", ".join(sorted(p.name for p in children)[:6]) or "nothing"
    raise CompressionError(f"the zip must hold train/<class>/ and test/<class>/ folders (at its top or in one "
                           f"folder); found {found}")
