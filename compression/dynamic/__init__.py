"""Dynamic computation: one model, computation chosen at run time.

Dynamic depth (BranchyNet, Teerapittayanon et al. 2016): extra classifiers ("exits") after early
stages let a confident image leave early; the later stages are not run for it. Dynamic width
(slimmable networks, Yu et al. 2018): one set of weights runs at 0.25-1.0 of its channels, with a
separate BatchNorm per width ("switchable BN").

The threshold sweep is cheap: every exit's logits over a split are computed once (`exit_table`),
and accuracy, mean MACs and exit shares for any thresholds are then tensor arithmetic (`sweep`).
`early_exit_forward` is the real thing (samples that left are dropped from the batch), and the
tests check that both agree image for image.

Modules, by role: exits (multi-exit networks, joint training), exit_rule (thresholds, real
early-exit inference, exit costs), threshold_sweep (exit table, sweeps, threshold choice),
exit_results (measured latency, throughput, Result), slimmable (dynamic width), zoo_models (the
registered builders the model cards name).
"""

from compression.dynamic.exit_results import early_exit_latency, early_exit_result, early_exit_throughput
from compression.dynamic.exit_rule import CRITERIA, EarlyExitConfig, early_exit_forward, exit_costs, exit_score, leaves
from compression.dynamic.exits import ExitHead, MultiExitNet, require_multi_exit, train_exits
from compression.dynamic.slimmable import (SLIM_WIDTHS, SlimmableCNN, WidthConfig, require_slimmable, slim_to_static,
                                           train_slimmable, width_result, width_results)
from compression.dynamic.threshold_sweep import (ExitTable, Sweep, choose_thresholds, curve_thresholds, exit_table,
                                                 sweep, sweep_shared)
from compression.dynamic.zoo_models import cnn_exits, cnn_slim, lenet5_exits, resnet_exits, vit_exits
from compression.model_kinds import refuse_slimmable

__all__ = ["MultiExitNet", "ExitHead", "require_multi_exit", "train_exits",
           "CRITERIA", "EarlyExitConfig", "exit_score", "leaves", "early_exit_forward", "exit_costs",
           "ExitTable", "exit_table", "Sweep", "sweep", "sweep_shared", "curve_thresholds", "choose_thresholds",
           "early_exit_latency", "early_exit_throughput", "early_exit_result",
           "SLIM_WIDTHS", "WidthConfig", "SlimmableCNN", "require_slimmable", "slim_to_static", "train_slimmable",
           "width_result", "width_results", "refuse_slimmable",
           "lenet5_exits", "cnn_exits", "cnn_slim", "resnet_exits", "vit_exits"]
