"""One artifact container for every compressed model, and one loader.

    MAGIC "CXPIPE1\\0" | u32 header length | zlib(JSON header) | payload

The header says the format version, the payload kind and the model reference with the recipe that
rebuilds its architecture: {"format": 1, "payload": kind, "architecture": {"name": <reference>,
"builder": ..., "kwargs": {...}}}. Payload kinds, by name:

    dense       torch.save state_dict (a structurally pruned model's smaller layers included:
                the loader shrinks the rebuilt layers to the stored shapes)
    sparse      pruning's sparse container (nonzero values + relative indices or bitmask)
    quantized   quantization's packed file (codes, codebooks, Huffman tables)

The container knows the kinds by name only. How a payload is read is registered by the family that
writes it (`register_payload`: compression.pruning.sparse_format, compression.quantization.
artifact), and so is how a rebuilt model is shrunk to a structurally pruned state's shapes
(`register_reshape`: compression.pruning.structured); `dense` is plain torch.save and read here.
This module imports no family: before a lookup it asks compression.families to import them, which
names them as text (see there), so the registry points one way and there is no import circle.

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
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn

from compression import CompressionError

MAGIC = b"CXPIPE1\0"
FORMAT = 1
PAYLOADS = ("dense", "sparse", "quantized")
ZIP_MAGIC = b"PK\x03\x04"   # torch.save's zip container: a bare dense state_dict

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class PayloadReader:
    """How one payload kind is read, as its family registers it."""
    state: Callable[[bytes], State]                      # payload -> state_dict (float tensors)
    load: Callable[[nn.Module, bytes], nn.Module] | None = None  # payload into the rebuilt, reshaped
    #                                                      model; None: load `state` into it (checked)
    magic: bytes = b""                                   # how a bare file of this kind begins
    standalone: Callable[[bytes], nn.Module] | None = None  # a bare file that records its own architecture


_READERS: dict[str, PayloadReader] = {}
_RESHAPES: list[Callable[[nn.Module, State], nn.Module]] = []


def register_payload(kind: str, reader: PayloadReader) -> None:
    """A family says how to read the payload kind it writes (one of PAYLOADS)."""
    if kind not in PAYLOADS:
        raise CompressionError(f"artifact payload {kind!r} unknown; one of {', '.join(PAYLOADS)}")
    _READERS[kind] = reader


def register_reshape(fn: Callable[[nn.Module, State], nn.Module]) -> None:
    """A family whose models change layer shapes says how to shrink a rebuilt model (in place) to a
    state's shapes, before the state is loaded into it."""
    if fn not in _RESHAPES:
        _RESHAPES.append(fn)


def _torch_state(payload: bytes) -> State:
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CompressionError(f"artifact: state_dict unreadable ({type(exc).__name__})") from None


register_payload("dense", PayloadReader(_torch_state, magic=ZIP_MAGIC))


def _registered() -> dict[str, PayloadReader]:
    """Every payload reader, the families' included (compression.families imports them)."""
    from compression.families import load_families
    load_families()
    return _READERS


def reader_of(kind: str) -> PayloadReader:
    readers = _registered()
    if kind not in readers:
        raise CompressionError(f"no reader registered for artifact payload {kind!r}")
    return readers[kind]


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
    """What a file is: container, or the bare payload kind whose registered magic it begins with
    (quantized, sparse, dense: today's and older formats)."""
    head = bytes(blob[:8])
    if head == MAGIC:
        return "container"
    for kind, reader in _registered().items():
        if reader.magic and head.startswith(reader.magic):
            return kind
    raise CompressionError("not a model file this app writes (no container, quantized, sparse or "
                           "state_dict signature)")


def _fill(model: nn.Module, kind: str, payload: bytes) -> nn.Module:
    from compression.models import load_state_dict_checked
    reader = reader_of(kind)
    state = reader.state(payload)
    for reshape in _RESHAPES:
        model = reshape(model, state)
    if reader.load is not None:
        return reader.load(model, payload)
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
    standalone = reader_of(kind).standalone
    if standalone is not None and architecture is None:
        return standalone(blob)
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


def header_of_file(path) -> dict[str, Any] | None:
    """header_of for a file on disk, reading only its first bytes (a large model's file stays unread)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:8] != MAGIC:
            return None
        (n,) = struct.unpack_from("<I", head, 8)
        return read_artifact(head + f.read(n))[0]
