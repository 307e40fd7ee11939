"""The packed artifact: the bytes a quantized model is downloaded as, and how they load back.

Layout:  b"CEQ1" | u32 header length | zlib(JSON header) | payload (the blobs, back to back)

The header lists every state_dict entry with its encoding, shape and the (offset, length) of its
blobs in the payload, plus the activation ranges and the architecture (builder + kwargs) so the
file alone rebuilds the model. Blob writers (`encode_blobs`) and readers (`decode_blobs`) are
separate functions per encoding so other pipelines (prune -> cluster -> Huffman) can reuse them:

  float32 / float16 / raw  the values as they are (raw: any dtype, e.g. BatchNorm's counter)
  affine    b-bit codes (q - qmin) packed, float32 scale per row, b-bit zero points if asymmetric;
            symmetric codes with many zeros (a pruned layer) as the nonzero codes plus their
            positions as relative gaps, whichever is smaller
  binary    1 bit per weight (the sign), float32 scale per row
  ternary   5 weights per byte (base 3), float32 scale per row
  codebook  float32 codebook, b-bit indices packed or Huffman-coded, and (keep_zeros) the
            positions of the stored weights as relative gaps, packed or Huffman-coded
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from compression import CompressionError
from compression.artifact import MAGIC as CONTAINER_MAGIC
from compression.artifact import PayloadReader, register_payload
from compression.artifact import load_artifact as load_container
from compression.artifact import read_artifact as read_container
from compression.huffman import huffman_decode, huffman_encode
from compression.packing import (pack_bits, pack_ternary, packed_length, positions_from_gaps, sparse_gaps,
                                 unpack_bits, unpack_ternary)
from compression.quantization.quantizers import Encoded

MAGIC = b"CEQ1"
FORMAT_VERSION = 2       # written when a tensor's codes are stored sparse ("gaps" blob); else 1,
READABLE_FORMATS = (1, 2)  # so files without sparse codes still open in code that reads only 1


def _f32(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def _read_f32(blob: memoryview, count: int | None = None) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4", count=-1 if count is None else count).astype(np.float32)


def best_index_bits(mask: np.ndarray, candidates=range(1, 9)) -> int:
    """Gap width (bits) that stores the positions of a sparse mask in the fewest bits."""
    return min(candidates, key=lambda b: len(sparse_gaps(mask, b)) * b)


def _sparse_codes(q: np.ndarray, bits: int, qmin: int) -> tuple[dict[str, bytes], dict[str, Any]] | None:
    """Symmetric codes with zeros among them (a pruned layer: code 0 is exactly 0.0) as the nonzero
    codes plus their positions as relative gaps, as Han et al. store sparse layers; the caller keeps
    it only where it is smaller than the dense codes. None when there is nothing to leave out."""
    mask = q != 0
    if mask.all() or not mask.any():
        return None
    nonzero = int(mask.sum())
    if nonzero * (bits + 1) >= q.size * bits:  # each kept code takes >= 1 gap entry of >= 1 bit: never
        return None                            # smaller than the dense codes (the common case: few zeros)
    ib = best_index_bits(mask)
    gaps = sparse_gaps(mask, ib)
    return ({"q": pack_bits(q[mask] - qmin, bits), "gaps": pack_bits(gaps, ib)},
            {"nonzero": int(mask.sum()), "index_bits": ib, "gap_count": int(len(gaps))})


def encode_blobs(enc: Encoded) -> tuple[dict[str, bytes], dict[str, Any]]:
    """(named blobs, small JSON-able fields) that store `enc` exactly."""
    a, meta = enc.arrays, {}
    if enc.encoding in ("float32", "float16"):
        return {"values": np.ascontiguousarray(a["values"]).astype("<f4" if enc.bits == 32 else "<f2").tobytes()}, meta
    if enc.encoding == "affine":
        qmin, qmax = enc.meta["qmin"], enc.meta["qmax"]
        meta = {"symmetric": enc.meta["symmetric"], "qmin": qmin, "qmax": qmax, "rows": len(a["scale"])}
        blobs = {"q": pack_bits(a["q"] - qmin, enc.bits), "scale": _f32(a["scale"])}
        if not enc.meta["symmetric"]:
            blobs["zero_point"] = pack_bits(a["zero_point"], enc.bits)
        else:
            sparse = _sparse_codes(np.asarray(a["q"]).ravel(), enc.bits, qmin)
            if sparse is not None and len(sparse[0]["q"]) + len(sparse[0]["gaps"]) < len(blobs["q"]):
                blobs.update(sparse[0])
                meta.update(sparse[1])
        return blobs, meta
    if enc.encoding == "binary":
        return {"signs": pack_bits(a["signs"], 1), "scale": _f32(a["scale"])}, {"rows": len(a["scale"])}
    if enc.encoding == "ternary":
        return {"trits": pack_ternary(a["trits"]), "scale": _f32(a["scale"])}, {"rows": len(a["scale"])}
    if enc.encoding == "codebook":
        huff = bool(enc.meta.get("huffman"))
        k = 1 << enc.bits
        blobs = {"codebook": _f32(a["codebook"]),
                 "indices": huffman_encode(a["indices"], k) if huff else pack_bits(a["indices"], enc.bits)}
        meta = {"huffman": huff, "count": int(len(a["indices"]))}
        if "positions" in a:
            mask = np.zeros(int(np.prod(enc.shape)), dtype=bool)
            mask[a["positions"]] = True
            ib = best_index_bits(mask)
            gaps = sparse_gaps(mask, ib)
            blobs["gaps"] = huffman_encode(gaps, 1 << ib) if huff else pack_bits(gaps, ib)
            meta.update(index_bits=ib, gap_count=int(len(gaps)))
        return blobs, meta
    raise CompressionError(f"cannot store encoding {enc.encoding!r}")


def decode_blobs(encoding: str, shape: tuple[int, ...], bits: int, blobs: dict[str, memoryview],
                 meta: dict[str, Any]) -> Encoded:
    """Inverse of `encode_blobs`."""
    n = int(np.prod(shape))
    if encoding in ("float32", "float16"):
        dtype = "<f4" if bits == 32 else "<f2"
        return Encoded(encoding, shape, bits, {"values": np.frombuffer(blobs["values"], dtype=dtype, count=n).copy()})
    if encoding == "affine":
        rows, qmin = meta["rows"], meta["qmin"]
        zp = (unpack_bits(blobs["zero_point"], bits, rows) if "zero_point" in blobs
              else np.zeros(rows, np.int64))
        if "gaps" in blobs:  # sparse: nonzero codes and their positions; every other code is 0
            positions = positions_from_gaps(unpack_bits(blobs["gaps"], meta["index_bits"], meta["gap_count"]),
                                            meta["index_bits"])
            q = np.zeros(n, np.int64)
            q[positions] = unpack_bits(blobs["q"], bits, meta["nonzero"]) + qmin
        else:
            q = unpack_bits(blobs["q"], bits, n) + qmin
        arrays = {"q": q, "scale": _read_f32(blobs["scale"], rows), "zero_point": zp}
        return Encoded("affine", shape, bits, arrays,
                       {"symmetric": meta["symmetric"], "qmin": qmin, "qmax": meta["qmax"]})
    if encoding == "binary":
        return Encoded("binary", shape, 1, {"signs": unpack_bits(blobs["signs"], 1, n),
                                            "scale": _read_f32(blobs["scale"], meta["rows"])})
    if encoding == "ternary":
        return Encoded("ternary", shape, 2, {"trits": unpack_ternary(blobs["trits"], n),
                                             "scale": _read_f32(blobs["scale"], meta["rows"])})
    if encoding == "codebook":
        huff, count = meta["huffman"], meta["count"]
        arrays = {"codebook": _read_f32(blobs["codebook"], 1 << bits),
                  "indices": huffman_decode(blobs["indices"])[0] if huff else unpack_bits(blobs["indices"], bits, count)}
        if "gaps" in blobs:
            ib = meta["index_bits"]
            gaps = huffman_decode(blobs["gaps"])[0] if huff else unpack_bits(blobs["gaps"], ib, meta["gap_count"])
            arrays["positions"] = positions_from_gaps(gaps, ib)
        return Encoded("codebook", shape, bits, arrays, {"huffman": huff, "keep_zeros": "gaps" in blobs})
    raise CompressionError(f"artifact holds unknown encoding {encoding!r}")


def write_artifact(state: dict[str, torch.Tensor], encoded: dict[str, Encoded], *,
                   activations: dict[str, dict[str, Any]] | None = None,
                   architecture: dict[str, Any] | None = None,
                   packed: dict[str, tuple[Encoded, tuple]] | None = None) -> bytes:
    """Pack a model: entries of `encoded` (keyed like the state_dict) as encoded, every other
    state_dict entry as raw bytes of its dtype. Returns the artifact's bytes. `packed`: name ->
    (an Encoded, its encode_blobs output) already computed, used where that Encoded is the one packed."""
    records, payload, offset = [], [], 0
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        if name in encoded:
            enc = encoded[name]
            if tuple(enc.shape) != tuple(t.shape):
                raise CompressionError(f"{name}: encoded shape {enc.shape} differs from the tensor's {tuple(t.shape)}")
            done = (packed or {}).get(name)
            blobs, meta = done[1] if done is not None and done[0] is enc else encode_blobs(enc)
            record = {"name": name, "shape": list(t.shape), "encoding": enc.encoding, "bits": enc.bits, "meta": meta}
        else:
            blobs = {"values": t.numpy().tobytes()}
            record = {"name": name, "shape": list(t.shape), "encoding": "raw", "dtype": str(t.dtype).replace("torch.", "")}
        record["blobs"] = {}
        for key, blob in blobs.items():
            record["blobs"][key] = [offset, len(blob)]
            payload.append(blob)
            offset += len(blob)
        records.append(record)
    sparse_codes = any(r["encoding"] == "affine" and "gaps" in r["blobs"] for r in records)
    header = {"format": FORMAT_VERSION if sparse_codes else 1, "architecture": architecture, "tensors": records,
              "activations": activations or {}}
    head = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)
    return MAGIC + struct.pack("<I", len(head)) + head + b"".join(payload)


def read_header(blob: bytes | memoryview) -> tuple[dict[str, Any], memoryview]:
    view = memoryview(_unwrap(blob))
    if len(view) < 8 or bytes(view[:4]) != MAGIC:
        raise CompressionError("not a Compression Explorer quantized artifact (bad magic bytes)")
    (size,) = struct.unpack_from("<I", view, 4)
    try:
        header = json.loads(zlib.decompress(view[8:8 + size]))
    except (zlib.error, ValueError) as exc:
        raise CompressionError(f"artifact header unreadable ({exc})") from None
    if header.get("format") not in READABLE_FORMATS:
        raise CompressionError(f"artifact format {header.get('format')!r} not supported "
                               f"(this code reads {', '.join(map(str, READABLE_FORMATS))})")
    return header, view[8 + size:]


def _unwrap(blob: bytes | memoryview) -> bytes | memoryview:
    """The quantized payload of a container file (compression.artifact); other bytes unchanged."""
    if bytes(blob[:8]) != CONTAINER_MAGIC:
        return blob
    header, payload = read_container(bytes(blob))
    if header["payload"] != "quantized":
        raise CompressionError(f"this artifact holds a {header['payload']} model, not quantized weights")
    return payload


def read_artifact(blob: bytes | memoryview) -> tuple[dict[str, torch.Tensor], dict[str, Encoded], dict[str, Any]]:
    """(state_dict with dequantized weights, the Encoded of each quantized entry, header). A file in
    the artifact container (compression.artifact) is unwrapped to its quantized payload."""
    blob = _unwrap(blob)
    header, payload = read_header(blob)
    state, encoded = {}, {}
    for rec in header["tensors"]:
        blobs = {k: payload[o:o + n] for k, (o, n) in rec["blobs"].items()}
        if any(len(b) != n for b, (_, n) in zip(blobs.values(), rec["blobs"].values())):
            raise CompressionError(f"artifact truncated in {rec['name']}")
        shape = tuple(rec["shape"])
        if rec["encoding"] == "raw":
            dtype = getattr(torch, rec["dtype"])
            state[rec["name"]] = torch.frombuffer(bytearray(blobs["values"]), dtype=dtype).reshape(shape).clone() \
                if len(blobs["values"]) else torch.zeros(shape, dtype=dtype)
            continue
        enc = decode_blobs(rec["encoding"], shape, rec["bits"], blobs, rec["meta"])
        encoded[rec["name"]] = enc
        state[rec["name"]] = torch.from_numpy(enc.decode())
    return state, encoded, header


def load_artifact(blob: bytes | memoryview, model: nn.Module | None = None) -> nn.Module:
    """The model an artifact describes, in eval mode on the CPU: weights decoded into `model`'s
    architecture (a copy; default: the architecture recorded in the artifact), activation
    fake-quantization re-attached."""
    from compression.models import _resolve_builder, clone_model, load_state_dict_checked
    from compression.quantization.activations import attach_activation_quant

    if model is None and bytes(blob[:8]) == CONTAINER_MAGIC:
        return load_container(bytes(blob))
    state, _, header = read_artifact(blob)
    if model is None:
        arch = header.get("architecture")
        if not arch:
            raise CompressionError("artifact records no architecture: pass the model to load it into")
        model = _resolve_builder({"builder": arch["builder"], "name": arch.get("name")})(**arch.get("kwargs", {}))
    else:
        model = clone_model(model).cpu()
        for m in model.modules():  # a template may carry hooks from an earlier quantization
            m._forward_pre_hooks.clear()
    load_state_dict_checked(model, state, source="quantized artifact")
    attach_activation_quant(model, header.get("activations", {}))
    return model.eval()


def packed_size_estimate(count: int, bits: int) -> int:
    """Bytes of `count` fixed-width `bits`-bit codes (for the fixed-width vs Huffman comparison)."""
    return packed_length(count, bits)


# the artifact container reads the "quantized" payload this family writes (compression.artifact);
# a bare quantized file records its architecture, so it loads on its own
register_payload("quantized", PayloadReader(lambda payload: read_artifact(payload)[0],
                                            load=lambda model, payload: load_artifact(payload, model=model),
                                            magic=MAGIC, standalone=load_artifact))
