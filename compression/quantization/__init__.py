"""Quantization: store (and compute) a model's numbers with fewer bits.

Methods: uniform (affine) b-bit weights, per tensor or per output channel, symmetric or not, with
optional calibrated activation quantization; weight clustering (k-means codebook + b-bit indices),
optionally Huffman-coded; binary and ternary weights. Every Conv2d and Linear weight is quantized;
biases and BatchNorm stay float32. `quantize(model, QuantConfig(...))` returns a new model plus the
packed artifact (`size_bytes` is its length) that `load_artifact` turns back into the same model.
"""

from compression.quantization.artifact import load_artifact, read_artifact, write_artifact
from compression.quantization.config import (ACTIVATION_BITS, BACKENDS, CLUSTER_BITS, GRANULARITIES, METHODS,
                                             WEIGHT_BITS, QuantConfig)
from compression.quantization.core import QuantizedModel, layer_kinds, quantizable_layers, quantize
from compression.quantization.experiments import (bit_configs, layer_sensitivity, quantize_zoo_model,
                                                  staged_quantize, sweep, weight_histogram)

__all__ = ["QuantConfig", "QuantizedModel", "quantize", "quantizable_layers", "layer_kinds", "load_artifact",
           "read_artifact", "write_artifact", "quantize_zoo_model", "staged_quantize", "sweep", "bit_configs", "layer_sensitivity",
           "weight_histogram", "METHODS", "WEIGHT_BITS", "CLUSTER_BITS", "ACTIVATION_BITS", "GRANULARITIES",
           "BACKENDS"]
