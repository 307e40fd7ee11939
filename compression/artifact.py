"""One artifact container for every compressed model, and one loader.

    MAGIC "CXPIPE1\\0" | u32 header length | zlib(JSON header) | payload

The header says the format version, the payload kind and the model reference with the recipe that
rebuilds its architecture: {"format": 1, "payload": kind, "architecture": {"name": <reference>,
"builder": ..., "kwargs": {...}}}. Payload kinds:

    dense       torch.save state_dict (a structurally pruned model's smaller layers included:
                the loader shrinks the rebuilt layers to the stored shapes)
    sparse      pruning's sparse container (nonzero values + relative indices or bitmask)
    quantized   quantization's packed file (codes, codebooks, Huffman tables)

`load_artifact(bytes)` rebuilds a runnable model (CPU, eval mode) from the file alone. Files of
the formats written before the container (a bare quantized file, a bare sparse file or state_dict
from `prune --out`) still load: a quantized file records its architecture; the other two need
`architecture=` (or the model reference) since they never recorded one.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from typing import Any

import torch
import torch.nn as nn

from compression import CompressionError

MAGIC = b"CXPIPE1\0"
FORMAT = 1
PAYLOADS = ("dense", "sparse", "quantized")
SPARSE_MAGIC = b"CXSPARS1"
QUANTIZED_MAGIC = b"CEQ1"
ZIP_MAGIC = b"PK\x03\x04"   # torch.save's zip container


def write_artifact(payload: bytes, kind: str, architecture: dict[str, Any]) -> bytes:
    """The downloadable file: header (format, payload kind, model reference + recipe) + payload."""
    if kind not in PAYLOADS:
        raise CompressionError(f"artifact payload {kind!r} unknown; one of {', '.join(PAYLOADS)}")
    head = zlib.compress(json.dumps({"format": FORMAT, "payload": kind, "architecture": architecture},
                                    separators=(",", ":")).encode(), 9)
    return MAGIC + struct.pack("<I", len(head)) + head + payload


def read_artifact(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, payload) of a container file."""
    if len(blob) < 12 or blob[:8] != MAGIC:
        raise CompressionError("not a Compression Explorer artifact (bad magic bytes)")
    (n,) = struct.unpack_from("<I", blob, 8)
    try:
        header = json.loads(zlib.decompress(blob[12:12 + n]))
    except (zlib.error, ValueError) as exc:
        raise CompressionError(f"artifact header unreadable ({exc})") from None
    if header.get("format", 1) > FORMAT:
        raise CompressionError(f"artifact format {header.get('format')} is newer than this code ({FORMAT}); upgrade")
    if header.get("payload") not in PAYLOADS:
        raise CompressionError(f"artifact payload {header.get('payload')!r} unknown")
    return header, blob[12 + n:]


def payload_kind(blob: bytes) -> str:
    """What a file is: container, quantized, sparse or state_dict (today's and older formats)."""
    head = bytes(blob[:8])
    if head == MAGIC:
        return "container"
    if head[:4] == QUANTIZED_MAGIC:
        return "quantized"
    if head == SPARSE_MAGIC:
        return "sparse"
    if head[:4] == ZIP_MAGIC:
        return "dense"
    raise CompressionError("not a model file this app writes (no container, quantized, sparse or "
                           "state_dict signature)")


def _state(kind: str, payload: bytes) -> dict[str, torch.Tensor]:
    if kind == "sparse":
        from compression.pruning import read_sparse
        return read_sparse(payload)
    if kind == "quantized":
        from compression.quantization import read_artifact as read_quantized
        return read_quantized(payload)[0]
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CompressionError(f"artifact: state_dict unreadable ({type(exc).__name__})") from None


def _fill(model: nn.Module, kind: str, payload: bytes) -> nn.Module:
    from compression.models import load_state_dict_checked
    from compression.pruning import resize_to
    state = _state(kind, payload)
    model = resize_to(model, state)
    if kind == "quantized":
        from compression.quantization import load_artifact as load_quantized
        return load_quantized(payload, model=model)
    load_state_dict_checked(model, state, source=f"{kind} artifact")
    return model.eval()


def load_artifact(blob: bytes, *, architecture: dict[str, Any] | str | None = None) -> nn.Module:
    """A runnable model (CPU, eval mode) from an artifact: the container, or a file written before
    it (then `architecture`, a recipe or a model reference, names what to load it into)."""
    from compression.refs import rebuild
    kind = payload_kind(blob)
    if kind == "container":
        header, payload = read_artifact(blob)
        return _fill(rebuild(header["architecture"]), header["payload"], payload)
    if kind == "quantized" and architecture is None:
        from compression.quantization import load_artifact as load_quantized
        return load_quantized(blob)
    if architecture is None:
        raise CompressionError(f"this {kind} file records no architecture (written before the artifact "
                               "container): give the model it came from")
    if isinstance(architecture, str):
        from compression.refs import architecture_for, dataset_for, parse
        ref = parse(architecture)
        architecture = architecture_for(ref, dataset_for(ref))
    return _fill(rebuild(architecture), kind, blob)


def header_of(blob: bytes) -> dict[str, Any] | None:
    """The container header, or None for a file written before the container."""
    return read_artifact(blob)[0] if payload_kind(blob) == "container" else None
