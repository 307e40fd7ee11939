"""The short Python snippet that rebuilds a model from its safetensors file, shown on the page and
written into the sidecar. How it rebuilds depends on where the architecture comes from:

  torch         a stack of torch.nn layers (nn.Sequential of standard layers, as the zoo's mlp,
                lenet5, cnn and their pruned, converted or slimmed forms): spelled out layer by layer
                at the file's shapes, so torch and safetensors are all it needs
  torchvision   torchvision.models.get_model(arch, num_classes=...), smaller layers given the file's shapes
  entry         the user's builder (an installed package's entry point), called as the run called it
  compression   this project's own architecture (residual, attention and multi-exit models):
                compression.refs.rebuild, which needs this project installed; the .onnx and .pt2
                exports are the files that run without it

A snippet is kept only when it rebuilds the same function: `torch_expression` checks its layers
against the model's, and the re-check runs the snippet itself.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import torch
import torch.nn as nn

from compression.export.notes import activation_ranges, strip_activation_quant

TAKE_SHAPES = '''
def take_shapes(model, state):
    """Layers made smaller by structured pruning get the file's shapes before loading."""
    for key, value in state.items():
        owner, _, attr = key.rpartition(".")
        module = model.get_submodule(owner)
        old = getattr(module, attr)
        if old is not None and old.shape != value.shape:
            if attr == "weight" and isinstance(module, nn.Conv2d) and module.groups == module.out_channels > 1:
                module.groups = value.shape[0]  # a depthwise convolution stays depthwise
            setattr(module, attr, nn.Parameter(value) if isinstance(old, nn.Parameter) else value)


take_shapes(model, state)
'''

FAKE_QUANT = '''
def fake_quant(bits, scale, zero_point):
    """The run's activation quantization: a layer's input rounded to `bits` bits."""
    def hook(module, args):
        q = torch.clamp(torch.round(args[0] / scale) + zero_point, 0, 2 ** bits - 1)
        return ((q - zero_point) * scale,) + tuple(args[1:])
    return hook


for name, r in ACTIVATIONS.items():
    model.get_submodule(name).register_forward_pre_hook(fake_quant(r["bits"], r["scale"], r["zero_point"]))
'''


class _NotPlain(Exception):
    pass


def _is_plain_sequential(m: nn.Module) -> bool:
    return isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward


def _expr(m: nn.Module, depth: int) -> str:
    pad = "    " * (depth + 1)
    if _is_plain_sequential(m):
        children = list(m.named_children())
        items = [_expr(c, depth + 1) for _, c in children]
        if [n for n, _ in children] == [str(i) for i in range(len(children))]:
            body = "".join(f"{pad}{item},\n" for item in items)
            return f"nn.Sequential(\n{body}{'    ' * depth})"
        body = "".join(f"{pad}({name!r}, {item}),\n" for (name, _), item in zip(children, items))
        return f"nn.Sequential(OrderedDict([\n{body}{'    ' * depth}]))"
    if list(m.children()) or not type(m).__module__.startswith("torch.nn.modules"):
        raise _NotPlain(type(m).__name__)
    text = repr(m)
    if "\n" in text:
        raise _NotPlain(type(m).__name__)
    return f"nn.{text}"


def torch_expression(model: nn.Module, input_shape: tuple[int, ...]) -> str | None:
    """Python source (torch.nn only) that builds `model`'s layers at their present shapes, or None
    when the model is not a stack of standard torch.nn layers or the source does not rebuild the
    same function (same state_dict keys and shapes, the same outputs with the same weights)."""
    try:
        text = _expr(model, 0)
    except _NotPlain:
        return None
    try:
        built = eval(text, {"nn": nn, "torch": torch, "OrderedDict": OrderedDict})  # our own text, torch.nn only
        state = model.state_dict()
        if {k: tuple(v.shape) for k, v in built.state_dict().items()} != {k: tuple(v.shape) for k, v in state.items()}:
            return None
        built.load_state_dict(state)
        import copy
        plain = strip_activation_quant(copy.deepcopy(model)).eval()
        x = torch.randn(4, *input_shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            if not torch.allclose(built.eval()(x), plain(x), rtol=1e-5, atol=1e-6):
                return None
    except Exception:  # a layer whose repr is not its constructor: no torch-only snippet
        return None
    return text


def changed_shapes(model: nn.Module, architecture: dict[str, Any] | None) -> dict[str, list[list[int]]]:
    """state_dict key -> [the file's shape, the builder's shape] where structured pruning (or a width)
    changed it."""
    if not architecture:
        return {}
    from compression.refs import rebuild
    fresh = {k: list(v.shape) for k, v in rebuild(architecture).state_dict().items()}
    return {k: [list(v.shape), fresh[k]] for k, v in model.state_dict().items()
            if k in fresh and list(v.shape) != fresh[k]}


def _entry_call(architecture: dict[str, Any]) -> tuple[str, str] | None:
    """('from team.nets import tiny', 'tiny') for an entry-point builder written as module:function."""
    from compression.refs import ENTRY, entry_points
    ep = entry_points().get(str(architecture["builder"])[len(ENTRY):])
    if ep is None or ":" not in ep.value or "." in ep.value.partition(":")[2]:
        return None
    module, _, fn = ep.value.partition(":")
    return f"from {module.strip()} import {fn.strip()}", fn.strip()


def _kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def rebuild_lines(model: nn.Module, architecture: dict[str, Any] | None, input_shape) -> tuple[str, list[str], list[str]]:
    """(kind, import lines, lines that make `model` and load `state` into it)."""
    expr = torch_expression(model, input_shape)
    if expr is not None:
        imports = ["from collections import OrderedDict"] if "OrderedDict(" in expr else []
        return "torch", imports, [f"model = {expr}", "model.load_state_dict(state)"]
    changed = bool(changed_shapes(model, architecture))
    builder = (architecture or {}).get("builder")
    kwargs = dict((architecture or {}).get("kwargs") or {})
    take = [TAKE_SHAPES.strip("\n")] if changed else []
    if builder == "torchvision" and "imagenet_classes" not in kwargs:
        arch = kwargs.pop("arch")
        return "torchvision", ["import torchvision"], [
            f"model = torchvision.models.get_model({arch!r}, weights=None, {_kwargs(kwargs)})", *take,
            "model.load_state_dict(state)"]
    if isinstance(builder, str) and builder.startswith("entry:") and _entry_call(architecture):
        line, fn = _entry_call(architecture)
        return "entry", [line], [f"model = {fn}({_kwargs(kwargs)})", *take, "model.load_state_dict(state)"]
    recipe = json.dumps(architecture)
    return "compression", ["from compression.pruning import resize_to  # this project's own architecture: "
                           "needs it installed", "from compression.refs import rebuild"], [
        f"model = resize_to(rebuild({recipe}), state)", "model.load_state_dict(state)"]


NEEDS = {"torch": ["torch", "safetensors"], "torchvision": ["torch", "torchvision", "safetensors"],
         "entry": ["torch", "safetensors", "the package that provides the builder"],
         "compression": ["torch", "safetensors", "compression-explorer (this project)"]}


def make_snippet(model: nn.Module, architecture: dict[str, Any] | None, file_name: str, contract) -> tuple[str, str]:
    """(snippet, rebuild kind): the code a deployer runs to get `model` back from `file_name`."""
    kind, imports, lines = rebuild_lines(model, architecture, (contract.channels, *contract.input_size))
    acts = activation_ranges(model)
    head = ["import torch", "from torch import nn", "from safetensors.torch import load_file", *imports, "",
            f"state = load_file({file_name!r})"]
    body = [*lines]
    if acts:
        body += ["", f"ACTIVATIONS = {json.dumps(acts)}", FAKE_QUANT.strip("\n")]
    body += ["model.eval()"]
    h, w = contract.input_size
    tail = [f"# input: float32 (N, {contract.channels}, {h}, {w}): pixels / 255, minus mean {list(contract.mean)}, "
            f"divided by std {list(contract.std)}",
            f"# output: (N, {len(contract.classes)}) logits, classes in order: {list(contract.classes)}"]
    return "\n".join([*head, *body, *tail]) + "\n", kind
