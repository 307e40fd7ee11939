"""Pipeline specs: steps as text, named recipes, and the composition rules checked before running.

A step is any registered method with its config (compression.methods): written
`method:positional:...:key=value`, joined by commas:

    prune:unstructured:0.9:scope=global:steps=3:epochs=4   prune (and fine-tune, iteratively)
    prune:structured:0.5:epochs=2:importance=taylor        remove channels, fine-tune 2 epochs
    finetune:3                                             fine-tune 3 epochs (pruned zeros kept)
    distill:2:T=4:alpha=0.7                                2 epochs with the original model as teacher
    quantize:cluster-huffman:5                             the last step: packed weights

Deep Compression (Han et al. 2016) is `prune:unstructured ... , quantize:cluster-huffman:5`: the
zeros of unstructured pruning are kept exact through clustering (left out of k-means) and their
positions are stored as relative gaps, Huffman-coded with the cluster indices.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from compression import CompressionError
from compression.knobs import parse_spec, spec_of as method_spec
from compression.methods import Method, get_method, method_names

MAX_STEPS = 8
Step = Any  # a registered method's config object


def method_of(step: Step) -> Method:
    """The registered method whose config type `step` is."""
    for name in method_names():
        method = get_method(name)
        if type(step) is method.config_type:
            return method
    raise CompressionError(f"pipeline step {step!r} is not a registered method's config")


def step_kind(step: Step) -> str:
    return method_of(step).name


def step_spec(step: Step) -> str:
    return method_spec(step_kind(step), step)


def parse_step(text: str) -> Step:
    if not isinstance(text, str) or not text.strip():
        raise CompressionError(f"empty pipeline step {text!r}")
    name = text.strip().split(":", 1)[0]
    if name not in method_names():
        raise CompressionError(f"unknown step {name!r}; choose one of {', '.join(method_names())}")
    return parse_spec(text)[1]


def parse_steps(text: str) -> tuple[Step, ...]:
    """'prune:unstructured:0.9,quantize:cluster-huffman:5' -> step configs (each validated)."""
    if not isinstance(text, str) or not text.strip():
        raise CompressionError(f"pipeline spec {text!r} is empty; e.g. prune:unstructured:0.9,quantize:cluster-huffman:5")
    steps = tuple(parse_step(part) for part in split_steps(text) if part.strip())
    if len(steps) > MAX_STEPS:
        raise CompressionError(f"pipeline has {len(steps)} steps; at most {MAX_STEPS} are allowed")
    return steps


def split_steps(text: str) -> list[str]:
    """Split at the commas between steps, not those inside a JSON value (layer_bits=[["conv1",4],...])."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "[{":
            depth += 1
        elif not quoted and ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0 and not quoted:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def spec_of(steps: tuple[Step, ...]) -> str:
    return ",".join(step_spec(s) for s in steps)


# named recipes: a spec each, with a line saying what it is for
RECIPES: dict[str, tuple[str, str]] = {
    "deep-compression": (
        "prune:unstructured:0.9:scope=global:steps=3:epochs=4,quantize:cluster-huffman:5",
        "Han et al. 2016: iterative global magnitude pruning to 90 % (3 cycles of 4 fine-tuning epochs), "
        "then 5-bit weight clustering with the zeros kept exact, Huffman-coded indices and relative "
        "sparse positions. The smallest file; speed is not improved (dense kernels)."),
    "slim-int8": (
        "prune:structured:0.5:scope=layer:epochs=2,distill:2:T=4:alpha=0.7,quantize:uniform:8",
        "Structured pruning of half the channels (a smaller dense network: real MACs and latency "
        "gains), fine-tuned, then distilled from the original model, then 8-bit weights."),
    "sparse-int8": (
        "prune:unstructured:0.7:scope=global:steps=2:epochs=2,quantize:uniform:8",
        "Moderate unstructured pruning, then 8-bit uniform weights: zeros stay zero (symmetric "
        "quantization), a gentle recipe that keeps accuracy."),
}


def recipe_steps(name: str) -> tuple[Step, ...]:
    if name not in RECIPES:
        raise CompressionError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return parse_steps(RECIPES[name][0])


# ---------------------------------------------------------------------------------------------
# composition rules

def model_kind_problem(model: nn.Module) -> str | None:
    """Why a model cannot go through a pipeline, or None."""
    from compression.model_kinds import is_multi_exit, is_slimmable
    if is_multi_exit(model):
        return ("early-exit models are not supported in pipelines: pruning, distillation and quantization "
                "here treat the network as one classifier and would not keep the exit heads consistent")
    if is_slimmable(model):
        return ("slimmable models are not supported in pipelines: their widths share weights; "
                "convert one width to a static network first")
    return None


def check_composition(steps: tuple[Step, ...], model: nn.Module | None = None) -> None:
    """Raise CompressionError naming the first step that cannot follow the ones before it."""
    if not steps:
        raise CompressionError(f"a pipeline needs at least one step, got {list(steps)!r}")
    if len(steps) > MAX_STEPS:
        raise CompressionError(f"pipeline has {len(steps)} steps; at most {MAX_STEPS} are allowed")
    if model is not None and (problem := model_kind_problem(model)):
        raise CompressionError(problem)
    sparse = changed = False  # unstructured zeros present; model differs from the original
    kinds = [step_kind(s) for s in steps]
    for i, (step, kind) in enumerate(zip(steps, kinds), start=1):
        where = f"step {i} ({step_spec(step)})"
        if i > 1 and kinds[i - 2] == "quantize":
            raise CompressionError(f"{where} cannot follow quantize: it would change float weights after they were "
                                   "quantized and the stored codes would no longer match; quantize must be the last step")
        if kind == "prune":
            if step.method == "structured" and sparse:
                raise CompressionError(f"{where}: structured pruning cannot follow unstructured pruning; the zero "
                                       "masks would not survive the rebuilt layers. Put structured pruning first")
            sparse = sparse or (step.method == "unstructured" and step.ratio > 0)
            changed = changed or step.ratio > 0 or step.epochs > 0
        elif kind == "distill":
            if not changed and step.teacher is None:
                raise CompressionError(f"{where}: distillation needs a teacher different from the student; the teacher "
                                       "is the original model, so put distill after a step that changes the model")
            changed = True
        elif kind == "quantize":
            if sparse and step.method == "binary":
                raise CompressionError(f"{where}: binary weights have no zero, so the pruned weights would come back "
                                       "as +/- scale; use ternary, cluster or uniform after unstructured pruning")
            changed = True
        else:
            changed = True
