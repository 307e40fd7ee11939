"""int8 QDQ ONNX for an 8-bit result: int8 weights with per-channel scales and int8 activations whose
ranges are calibrated on training images, as QuantizeLinear / DequantizeLinear pairs that ONNX
Runtime fuses into its int8 kernels (QLinearConv, QGemm / MatMulInteger).

Made by ONNX Runtime's own tools from the float graph of the run's model: quant_pre_process (shape
inference, BatchNorm folded into the convolutions), then quantize_static (QDQ, symmetric int8
weights, MinMax activation ranges). The run's 8-bit weights already lie on a symmetric int8 grid;
folding BatchNorm rescales them, so the folded weights are quantized again here, and the
activations are quantized where the run kept them float: the re-check says how much that moved."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np

from compression.export.formats import ExportFormat, register_format
from compression.export.notes import strip_activation_quant
from compression.export.onnx_float import (add_metadata, export_graph, exported_module, open_file)
from compression.export.source import Source

CALIBRATION_IMAGES = 512


def refuses(run: dict, payload: str) -> str | None:
    """int8 QDQ is offered for 8-bit uniform results (every layer 8-bit, activations float or 8-bit)."""
    cfg = run.get("config") or {}
    if run["method"] != "quantize" or payload != "quantized":
        return ("int8 QDQ ONNX is for 8-bit quantized results; this run's weights are float "
                "(quantizing them now would be a new result, not this run's: quantize it to 8 bits first)")
    bits = {cfg.get("bits"), *dict(cfg.get("layer_bits") or {}).values()}
    if cfg.get("method") != "uniform" or bits != {8}:
        what = cfg.get("method") if cfg.get("method") != "uniform" else f"{'/'.join(map(str, sorted(bits)))}-bit"
        return f"int8 QDQ ONNX is for 8-bit uniform weights; this run's are {what} (export onnx: float weights, said so)"
    if cfg.get("activation_bits") not in (None, 8):
        return f"this run's activations are {cfg.get('activation_bits')}-bit; int8 QDQ runs them in 8 bits"
    return None


class _Calibration:
    """onnxruntime.quantization.CalibrationDataReader over the first training images."""

    def __init__(self, source: Source, images: int, input_name: str):
        batches = source.dataset.batches("train", 128, limit=images)
        self._items = iter([{input_name: x.numpy()} for x, _ in batches])

    def get_next(self):
        return next(self._items, None)


def write(source: Source, path: Path) -> dict:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from compression.export.onnx_float import INPUT
    from compression.runtimes import quiet
    per_channel = (source.run.get("config") or {}).get("granularity", "channel") == "channel"
    model = strip_activation_quant(copy.deepcopy(source.model))  # ONNX Runtime quantizes the activations
    with tempfile.TemporaryDirectory(prefix="ce-int8-") as tmp:
        fp32, pre = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx"
        export_graph(exported_module(source, model), source, fp32)
        with quiet():
            quant_pre_process(str(fp32), str(pre))
            quantize_static(str(pre), str(path), _Calibration(source, CALIBRATION_IMAGES, INPUT),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel, reduce_range=False,
                            weight_type=QuantType.QInt8, activation_type=QuantType.QInt8)
    add_metadata(path, source, "onnx-int8", compact_initializers=True)  # its weights' names are ORT's, not ours
    return {"calibration_images": CALIBRATION_IMAGES, "per_channel": per_channel, "int8_weights": _int8_weights(path)}


def _int8_weights(path: Path) -> int:
    import onnx
    from onnx import TensorProto
    return sum(int(np.prod(t.dims)) for t in onnx.load(str(path)).graph.initializer if t.data_type == TensorProto.INT8)


FORMAT = register_format(ExportFormat(
    "onnx-int8", "-int8.onnx", "int8 QDQ ONNX: ONNX Runtime's int8 kernels (8-bit results only)",
    "ONNX Runtime (CPUExecutionProvider, int8 kernels)", write, open_file, tolerance="int8", refuses=refuses))
