"""What an exported file says about itself: the input contract, the run it came from, what its
weights are (float, dequantized, int8) and, for an early-exit model, the exit rule with each exit's
MACs. The same JSON objects go into ONNX metadata_props, the .pt2's extra files and the
safetensors header and sidecar."""

from __future__ import annotations

import json
from typing import Any

import torch.nn as nn

from compression.export.source import Source

EXIT_RULE_WORDS = {
    "confidence": "an image leaves at the first early exit k whose softmax maximum is above thresholds[k]; "
                  "otherwise at the last exit",
    "entropy": "an image leaves at the first early exit k whose softmax entropy / log(classes) is below "
               "thresholds[k]; otherwise at the last exit",
}


PAYLOAD_WORDS = {
    "dense": "the model's float32 state_dict",
    "sparse": "the pruned weights stored sparse (nonzero values and their positions)",
    "quantized": "the packed quantized weights (codes, scales or codebooks)",
}


def container_hint(payload: str | None) -> str:
    """One line under a .cxp download: what the file is and how to load it, claiming no other format."""
    inside = PAYLOAD_WORDS.get(payload or "", "the model's weights")
    return (f"Compression Explorer's own container: a header naming the architecture, then {inside}. It is not a "
            "plain torch file; load it with this project: `compression.artifact.load_artifact(open(path, 'rb').read())`. "
            "To run the model without this project, export it to ONNX, .pt2 or safetensors.")


def activation_ranges(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Layer name -> {bits, scale, zero_point} of the activation fake-quantization a quantized run
    attached (forward pre-hooks that describe themselves with as_dict())."""
    found = {}
    for name, module in model.named_modules():
        for hook in module._forward_pre_hooks.values():
            if callable(getattr(hook, "as_dict", None)):
                found[name] = hook.as_dict()
    return found


def strip_activation_quant(model: nn.Module) -> nn.Module:
    """`model` (a copy the caller made) without its activation fake-quantization hooks."""
    for module in model.modules():
        for key, hook in list(module._forward_pre_hooks.items()):
            if callable(getattr(hook, "as_dict", None)):
                del module._forward_pre_hooks[key]
    return model


def quantized_label(source: Source) -> str | None:
    """'uniform 4-bit per-channel', 'cluster-huffman 5-bit codebook', 'binary', ... for a quantized run."""
    if source.payload != "quantized":
        return None
    cfg = source.run.get("config") or {}
    method, bits = cfg.get("method"), cfg.get("bits")
    if source.run["method"] != "quantize" or method is None:
        return "packed quantized"
    if method in ("binary", "ternary"):
        return method
    if str(method).startswith("cluster"):
        return f"{method} {bits}-bit codebook"
    return f"uniform {bits}-bit per-{cfg.get('granularity', 'channel')}"


def weights_note(source: Source, fmt: str) -> str:
    """One sentence: what the file's weights are, honest about what the format keeps and drops."""
    label = quantized_label(source)
    acts = activation_ranges(source.model)
    if fmt == "onnx-int8":
        text = ("int8 weights (QDQ, per-channel scales) and int8 activations calibrated on training images: "
                "ONNX Runtime runs its int8 kernels")
    elif label:
        text = (f"float32 weights dequantized from the run's {label} weights: the file is float, not {label} "
                "(no runtime here has a kernel for them; the .cxp keeps the packed bits)")
    elif source.payload == "sparse":
        text = "float32 weights with the pruned zeros stored dense (the .cxp keeps them sparse)"
    else:
        text = "float32 weights, as the run's model"
    if acts and fmt != "onnx-int8":
        bits = sorted({r["bits"] for r in acts.values()})
        words = ("carried in the graph (Round/Clip in float)" if fmt in ("onnx", "pt2")
                 else "re-attached by the snippet (forward pre-hooks)")
        text += f"; activations fake-quantized to {'/'.join(map(str, bits))} bits as the run measured them, {words}"
    return text


def exit_info(source: Source) -> dict[str, Any] | None:
    """The exit rule (metric, thresholds, in words) and the MACs of leaving at each exit."""
    if source.exits == 1:
        return None
    extra = source.run.get("extra") or {}
    rule = source.exit_rule
    info: dict[str, Any] = {"exits": source.exits, "outputs": [f"exit_{k}" for k in range(source.exits)],
                            "exit_macs": extra.get("exit_costs")}
    if rule:
        info.update(rule, rule=EXIT_RULE_WORDS[rule["criterion"]])
    else:
        info["rule"] = "no exit rule was chosen for this run: the last output is the full network's"
    return info


def run_info(source: Source, fmt: str) -> dict[str, Any]:
    r = source.run
    return {"producer": "Compression Explorer", "format": fmt, "run_id": r["id"], "name": r.get("name"),
            "model": r["model"], "dataset": r["dataset"], "method": r["method"], "config": r.get("config"),
            "accuracy": r["accuracy"], "accuracy_n": r["accuracy_n"], "weights": weights_note(source, fmt)}


def metadata(source: Source, fmt: str) -> dict[str, str]:
    """Key -> JSON text: input_contract (mean, std, input_size, channels, classes), run, and
    exit_rule for an early-exit model."""
    out = {"input_contract": json.dumps(source.contract.to_json()),
           "run": json.dumps(run_info(source, fmt), default=str)}
    exits = exit_info(source)
    if exits:
        out["exit_rule"] = json.dumps(exits)
    return out
