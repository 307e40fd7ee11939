"""Reading a user's weights file without ever unpickling code.

Accepted: a state_dict saved with `torch.save(model.state_dict(), "x.pt")` (read with
`torch.load(..., weights_only=True)`, which refuses any pickled class or function) or a
`.safetensors` file (no pickle at all). Everything else is refused with a message that says what
was found and what to save instead.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from pathlib import Path

import torch

from compression import CompressionError

log = logging.getLogger("compression.weights")
MAX_WEIGHTS_BYTES = 200 * 1024 * 1024  # the stated upload limit (also Streamlit's maxUploadSize)
SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
NESTED_KEYS = ("state_dict", "model_state_dict", "model")  # common checkpoint layouts


def read_weights(data: bytes | Path, filename: str | None = None) -> dict[str, torch.Tensor]:
    """Parse a weights file (its bytes, or a path) into a state_dict of tensors, or raise."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        filename = filename or path.name
        if not path.is_file():
            raise CompressionError(f"weights file {str(path)!r} not found")
        size = path.stat().st_size
        if size > MAX_WEIGHTS_BYTES:
            raise CompressionError(_too_large(filename, size))
        data = path.read_bytes()
    name = filename or "weights"
    if len(data) == 0:
        raise CompressionError(f"{name}: the file is empty")
    if len(data) > MAX_WEIGHTS_BYTES:
        raise CompressionError(_too_large(name, len(data)))
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise CompressionError(f"{name}: unsupported file type {suffix or '(none)'!r}; "
                               f"use a state_dict saved as .pt/.pth, or a .safetensors file")
    state = _read_safetensors(data, name) if suffix == ".safetensors" else _read_torch(data, name)
    return _as_state_dict(state, name)


def _too_large(name: str, size: int) -> str:
    return f"{name}: {size / 2**20:.0f} MiB is over the {MAX_WEIGHTS_BYTES / 2**20:.0f} MiB limit for weights files"


def _read_safetensors(data: bytes, name: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CompressionError(f"{name}: not a valid .safetensors file ({str(exc)[:120]})") from None


def _read_torch(data: bytes, name: str) -> object:
    if data[:8] == b"SAFETENS" or (len(data) > 8 and data[8:9] == b"{"):
        raise CompressionError(f"{name}: looks like a safetensors file; rename it to .safetensors")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol N": we refuse those anyway
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (bad zip), EOFError, ...
        message = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", message)
        culprit = found.group(1) if found else _first_pickled_global(data)
        if culprit or "WeightsUnpickler" in message:
            raise CompressionError(
                f"{name}: holds a pickled object ({culprit or 'pickle data that is not plain weights'}), "
                "not plain weights; it was not loaded. "
                "Save `model.state_dict()` with torch.save, or save a .safetensors file") from None
        if isinstance(exc, EOFError) or "zip" in message.lower() or "truncat" in message.lower():
            raise CompressionError(f"{name}: truncated or corrupt file (its archive cannot be read to the end)") from None
        log.info("%s: torch.load refused it: %s: %s", name, type(exc).__name__, message[:300])
        raise CompressionError(f"{name}: not a readable weights file: neither a torch.save state_dict nor a "
                               ".safetensors file") from None


def _first_pickled_global(data: bytes) -> str | None:
    """The first class/function a raw pickle would import, read with pickletools (which parses
    opcodes and executes nothing); None when there is none or the bytes are not a pickle."""
    import pickletools

    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            if opcode.name == "GLOBAL":
                return str(arg).replace(" ", ".")
            if opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                return f"{strings[-2]}.{strings[-1]}"
            if isinstance(arg, str):
                strings.append(arg)
    except Exception:  # not a pickle, or a damaged one
        return None
    return None


def _as_state_dict(state: object, name: str) -> dict[str, torch.Tensor]:
    if isinstance(state, dict):
        for key in NESTED_KEYS:
            inner = state.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                state = inner
                break
    if not isinstance(state, dict) or not state:
        raise CompressionError(f"{name}: expected a state_dict (a dict of tensors), found {_describe(state)}")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CompressionError(f"{name}: expected a dict of tensors; entry {str(bad[0])!r} is "
                               f"{type(state[bad[0]]).__name__}")
    return state


def _describe(obj: object) -> str:
    if isinstance(obj, dict):
        return "an empty dict" if not obj else f"a dict with keys {', '.join(map(str, list(obj)[:3]))}"
    return f"a {type(obj).__name__}"
