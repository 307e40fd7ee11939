"""Network pruning: remove the least important weights (unstructured) or whole channels and
neurons (structured), fine-tune to recover, repeat.

Three separate roles, as in Torch-Pruning: *importance* (weight magnitude; a channel's group L1/L2
norm or first-order Taylor score, from Torch-Pruning), *schedule* (`ratio_schedule`, a pure
function ramping the ratio over the steps) and *mechanics* (zeroing weights here; physically
removing channels through Torch-Pruning's dependency graph, which adjusts BatchNorm, the next
conv/linear layer, residual additions and concatenations).

What the two granularities give, and what we measure:

- unstructured: the network keeps its shape with zeros inside. A dense kernel runs it exactly as
  fast as before, so the speed gain is *simulated*; only a sparse storage format (`sparse_bytes`:
  a bitmask or relative indices plus the nonzero values) makes it smaller, and that size is real.
- structured: a smaller dense network whose size, MACs and latency are all measured on it.

Every function copies the model it is given; the input is never modified.

Modules, by role: config (PruneConfig, FinetuneConfig), unstructured (weights, masks, sparsity),
structured (channel removal, loading the smaller network back), sparse_format (the sparse
container), schedule (ratio ramp, prune -> fine-tune -> repeat), layer_sensitivity (one layer
pruned at a time, cached), run (measured results: run_prune, sweep).
"""

from compression.pruning.config import (IMPORTANCES, METHODS, PRUNABLE, SCOPES, SPLITS, FinetuneConfig, PruneConfig,
                                        config_dict)
from compression.pruning.layer_sensitivity import cached_sensitivity, sensitivity
from compression.pruning.run import (PruneOutcome, artifact_bytes, describe_gain, layer_table, run_prune,
                                     staged_prune, sweep)
from compression.pruning.schedule import PruneRun, monitor_split, prune, prune_finetune, ratio_schedule
from compression.pruning.sparse_format import SPARSE_MAGIC, load_sparse, read_sparse, sparse_bytes
from compression.pruning.structured import (channel_counts, export_program, load_structured, output_layer,
                                            prune_channels, resize_to)
from compression.pruning.unstructured import (apply_masks, prunable_parameters, prune_weights, sparse_macs, sparsity,
                                              weight_masks)

__all__ = ["PruneConfig", "FinetuneConfig", "config_dict", "METHODS", "SCOPES", "IMPORTANCES", "SPLITS", "PRUNABLE",
           "prunable_parameters", "prune_weights", "weight_masks", "apply_masks", "sparsity", "sparse_macs",
           "output_layer", "channel_counts", "prune_channels", "resize_to", "load_structured", "export_program",
           "SPARSE_MAGIC", "sparse_bytes", "read_sparse", "load_sparse",
           "ratio_schedule", "prune", "PruneRun", "monitor_split", "prune_finetune",
           "sensitivity", "cached_sensitivity",
           "PruneOutcome", "artifact_bytes", "layer_table", "describe_gain", "run_prune", "staged_prune", "sweep"]
