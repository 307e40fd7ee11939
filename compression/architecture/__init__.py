"""Architecture design: depthwise-separable convolution and low-rank factorization.

A standard k x k convolution stores k*k*I*O weights: every filter covers every input channel. A
depthwise-separable one (MobileNet) splits it into a depthwise step, one k x k filter per input
channel (k*k*I), and a pointwise 1 x 1 step that mixes channels (I*O): the ratio is
1/O + 1/k^2. For a Linear layer the analogue is low-rank factorization: the M x N weight becomes
(M x K) @ (K x N), K*(M + N) weights, initialized from the truncated SVD of the trained weight.

Four parts: the calculator (pure arithmetic, `compare_conv`); the converters
(`to_depthwise_separable`, `low_rank`, `convert`; new models, inputs untouched) with a measured
per-layer table (`layer_table`); recovery (`recover`: optionally `match_layers`, which fits each new
layer to the original layer's output, then fine-tuning or distillation from the original); and
`converted_result` / `recovered_result`, which measure and return `Result`s. `ds_cnn` is the cnn
built from the same blocks, for the zoo.

Modules, by role: calculator, blocks (SeparableConv2d, LowRankLinear, SVD factors), conversion
(configs, converters, per-layer table), recovery, run (measured results), zoo_models (ds_cnn).
"""

from compression.architecture.blocks import (LowRankLinear, SeparableConv2d, factorize_linear, kept_energy,
                                             rank_for_energy)
from compression.architecture.calculator import (CALCULATOR_LIMITS, ConvComparison, compare_conv, conv_macs,
                                                 conv_params, linear_params, low_rank_params, low_rank_saves,
                                                 separable_conv_macs, separable_conv_params, separable_ratio)
from compression.architecture.conversion import (CONVERSIONS, ArchitectureConfig, LowRankConfig, SeparableConfig,
                                                 convert, layer_table, low_rank, to_depthwise_separable)
from compression.architecture.recovery import RECOVERY_METHODS, RecoveryConfig, match_layers, recover
from compression.architecture.run import architecture_results, converted_result, recovered_result
from compression.architecture.zoo_models import ds_cnn

__all__ = ["compare_conv", "ConvComparison", "CALCULATOR_LIMITS", "conv_params", "separable_conv_params", "conv_macs",
           "separable_conv_macs", "separable_ratio", "linear_params", "low_rank_params", "low_rank_saves",
           "SeparableConv2d", "LowRankLinear", "factorize_linear", "rank_for_energy", "kept_energy",
           "CONVERSIONS", "SeparableConfig", "LowRankConfig", "ArchitectureConfig", "to_depthwise_separable",
           "low_rank", "convert", "layer_table",
           "RECOVERY_METHODS", "RecoveryConfig", "match_layers", "recover",
           "converted_result", "recovered_result", "architecture_results", "ds_cnn"]
