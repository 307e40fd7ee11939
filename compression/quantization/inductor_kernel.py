"""PyTorch's x86 Inductor int8 path, as an int8 kernel candidate (compression.quantization.kernels).

  inductor-int8  torchao PT2E static quantization with X86InductorQuantizer: the model exported
                 (torch.export, dynamic batch), activation ranges calibrated on validation images,
                 converted, then torch.compile'd with Inductor freezing, which packs the int8 weights
                 for oneDNN's VNNI / AMX int8 kernels (qconv / qlinear with their fused epilogues).
                 The attention's matmuls and scalings stay float32: oneDNN has no int8 batched
                 matmul here, so quantizing them only adds quantize / dequantize work.
  inductor-fp32  the same model torch.compile'd with the same options in float32: the reference
                 for the "same runtime" speed-up, so Inductor's own share is not passed off as int8's.

Both compile with the same options per shape (OPTIONS): freezing always, and at batch 1 also
max-autotune (Inductor's C++ GEMM templates with AMX micro-kernels, benchmarked against the ATen
GEMMs). On a 2-core AMX Xeon (2026-12-02, one thread, `vit`): at batch 1 int8 ran 0.27-0.34 ms with
it against 0.93-1.05 ms without (oneDNN's per-call overhead on 17-row GEMMs); at batch 256 the
autotuner's picks, benchmarked on a loaded machine, were up to 20 % slower than the plain
compile (int8 14.5 against 11.8 ms), so batch 256 compiles without it: int8 10.7-12.5 ms against
16.1-18.5 ms for float32 (1.42-1.59x over five runs), 0.07 point below float32, 99.7 % agreement.

Compiling is static per shape: `run` calls the compiled model at batch 1, or in chunks of CHUNK
images (the last one padded), so only those two shapes are ever compiled. Needs torchao, an x86
CPU and a C++ compiler (Inductor generates C++); `unavailable()` says which is missing.
"""

from __future__ import annotations

import os
import platform
import shutil
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from compression.data import Dataset
from compression.models import clone_model
from compression.quantization.activations import detach_activation_quant

NAME, REFERENCE = "inductor-int8", "inductor-fp32"
CHUNK = 256
OPTIONS = {"freezing": True, "max_autotune": True, "max_autotune_gemm_backends": "CPP,ATEN"}  # batch 1
CHUNK_OPTIONS = {"freezing": True}  # batch CHUNK


def unavailable() -> str | None:
    """Why the Inductor int8 path cannot run here, or None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"X86InductorQuantizer needs an x86 CPU, not {platform.machine()}"
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401
    except Exception as exc:  # ImportError, or a torchao built for another torch
        return f"torchao's X86InductorQuantizer does not import ({type(exc).__name__}: {str(exc)[:120]})"
    compilers = [os.environ.get("CXX"), "g++", "c++", "clang++"]
    if not any(c and shutil.which(c) for c in compilers):
        return "no C++ compiler for TorchInductor (g++, c++ or clang++)"
    return None


def _export(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """torch.export with a dynamic batch; strict (TorchDynamo) first, whose per-call-site source
    metadata lets the quantizer tell apart two calls of one module (a shared ReLU in `resnet`)."""
    dims = ({0: torch.export.Dim("batch", min=1, max=65536)},)
    try:
        return torch.export.export(model, (example,), dynamic_shapes=dims, strict=True).module()
    except Exception:  # noqa: BLE001  strict tracing refuses some Python: the non-strict export then
        return torch.export.export(model, (example,), dynamic_shapes=dims).module()


def quantized_graph(model: nn.Module, dataset: Dataset, calibration_images: int) -> nn.Module:
    """The PT2E-quantized graph of `model` (not yet compiled), calibrated on validation images."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    quantizer.set_function_type_qconfig(torch.matmul, None)
    quantizer.set_function_type_qconfig(torch.mul, None)
    prepared = prepare_pt2e(_export(model, torch.randn(CHUNK, *dataset.input_shape)), quantizer)
    with torch.no_grad():
        for x, _ in dataset.batches("val", CHUNK, limit=calibration_images):
            prepared(x)
    return convert_pt2e(prepared)


def build(name: str, model: nn.Module, dataset: Dataset, calibration_images: int) -> Callable[[torch.Tensor], np.ndarray]:
    """`run(x)` -> numpy logits for inductor-int8 or its inductor-fp32 reference, compiled and
    warmed up at batch 1 and CHUNK."""
    from compression.runtimes import quiet
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    m = clone_model(model).cpu().eval()
    detach_activation_quant(m)
    with quiet():
        graph = quantized_graph(m, dataset, calibration_images) if name == NAME else m
        one, chunk = torch.compile(graph, dynamic=False), torch.compile(graph, dynamic=False)
        patch = torch._inductor.config.patch

        def run(x: torch.Tensor) -> np.ndarray:
            # the options as a config patch around every call: compiling happens in the call (and a
            # recompile, should a guard fail), and torch.compile(options=) does not carry freezing
            with torch.no_grad():
                if x.shape[0] == 1:
                    with patch(OPTIONS):
                        return one(x).numpy()
                out = []
                with patch(CHUNK_OPTIONS):
                    for part in x.split(CHUNK):
                        n = part.shape[0]
                        if n < CHUNK:  # one compiled shape: pad the last chunk
                            part = torch.cat([part, part.new_zeros(CHUNK - n, *part.shape[1:])])
                        out.append(chunk(part)[:n])
                return torch.cat(out).numpy()

        for shape in (1, CHUNK):  # compile both shapes now, not inside the timing
            run(torch.zeros(shape, *dataset.input_shape))
    return run
