"""Pipelines: registered methods applied in order, each step measured and kept.

spec (steps as text, recipes, composition rules checked before running) and run (each step through
the method registry, measured, stored as a real artifact). The artifact container and its loader
are compression.artifact's, re-exported here.
"""

from compression.artifact import PAYLOADS, load_artifact, read_artifact, write_artifact
from compression.finetune import DistillStep, FinetuneStep
from compression.pipeline.run import PipelineConfig, StepOutcome, artifact_dir, run_and_store, run_pipeline
from compression.pipeline.spec import (MAX_STEPS, RECIPES, Step, check_composition, method_of, model_kind_problem,
                                       parse_step, parse_steps, recipe_steps, spec_of, step_kind, step_spec)
from compression.pruning.method import PruneStep
from compression.quantization.config import QuantConfig as QuantizeStep

KINDS = ("prune", "finetune", "distill", "quantize")  # the steps the Pipelines page offers


def architecture_of(name: str) -> dict:
    """The rebuild recipe of a model reference (what an artifact's header records)."""
    from compression.refs import architecture_for, dataset_for, parse
    ref = parse(name)
    return architecture_for(ref, dataset_for(ref))


__all__ = ["PAYLOADS", "load_artifact", "read_artifact", "write_artifact", "DistillStep", "FinetuneStep",
           "PruneStep", "QuantizeStep", "PipelineConfig", "StepOutcome", "artifact_dir", "run_and_store",
           "run_pipeline", "MAX_STEPS", "RECIPES", "Step", "check_composition", "method_of", "model_kind_problem",
           "parse_step", "parse_steps", "recipe_steps", "spec_of", "step_kind", "step_spec", "KINDS",
           "architecture_of"]
