"""The search space of compression.search: the knobs a trial draws, and the pipeline spec they make.

A trial is a pruning, quantization or prune-then-quantize configuration, or a Deep Compression
pipeline (Han et al. 2016: unstructured pruning -> fine-tuning -> weight clustering, Huffman or
not -> centroid fine-tuning) over its own knobs. `suggest(trial, cfg)` draws one (define-by-run);
`spec_of_params(params, cfg)` writes the spec of a fixed point, so that a configuration proposed
by the budget solver and one drawn by the sampler read the same, and an enqueued point records its
knobs for the sampler to learn from.
"""

from __future__ import annotations

from typing import Any

# Deep Compression's knobs (prefixed dc_ in the study): pruning ratio and cycles, fine-tuning epochs,
# cluster bits, Huffman coding, centroid fine-tuning epochs
DC_RANGES = {"ratio": (0.85, 0.97), "steps": (1, 3), "epochs": (1, 4), "bits": (3, 6), "centroid_epochs": (0, 2)}
# first trials: on mlp 0.92 in 3 cycles + 3 epochs, 4 bits measured 43.3x at -0.75 points by hand (2026-12-02)
DC_GRID = ((0.92, 3, 3, 4, True, 1), (0.9, 1, 2, 5, True, 0), (0.93, 2, 3, 3, True, 1), (0.95, 1, 3, 4, False, 1))
RATIO_RANGE = (0.05, 0.95)
BITS_RANGE = (2, 8)
QUANT_METHODS = ("uniform", "cluster-huffman")


def deep_compression_spec(ratio: float, steps: int, epochs: int, bits: int, huffman: bool, centroid_epochs: int) -> str:
    """prune (global magnitude; over several cycles with 1 fine-tuning epoch after each) -> finetune
    -> cluster (+ Huffman) with the zeros kept exact -> centroid fine-tuning, as a pipeline spec."""
    return (f"prune:unstructured:{ratio:.4g}:scope=global" + (f":steps={steps}:epochs=1" if steps > 1 else "")
            + f",finetune:{epochs},quantize:{'cluster-huffman' if huffman else 'cluster'}:{bits}"
            + (f":centroid_epochs={centroid_epochs}" if centroid_epochs else ""))


def _suggest_deep_compression(trial: Any) -> str:
    r = DC_RANGES
    return deep_compression_spec(trial.suggest_float("dc_ratio", *r["ratio"]), trial.suggest_int("dc_steps", *r["steps"]),
                                 trial.suggest_int("dc_epochs", *r["epochs"]), trial.suggest_int("dc_bits", *r["bits"]),
                                 trial.suggest_categorical("dc_huffman", [True, False]),
                                 trial.suggest_int("dc_centroid_epochs", *r["centroid_epochs"]))


def suggest(trial: Any, cfg: Any) -> str:
    """Draw one configuration (define-by-run: a knob exists only where its family was drawn).
    `cfg`: a compression.search.SearchConfig (its families and fine-tuning epochs)."""
    family = trial.suggest_categorical("family", list(cfg.families))
    if family == "deep-compression":
        return _suggest_deep_compression(trial)
    steps = []
    if "prune" in family:
        method = trial.suggest_categorical("prune_method", ["unstructured", "structured"])
        ratio = trial.suggest_float("ratio", *RATIO_RANGE)
        scope = trial.suggest_categorical("scope", ["layer", "global"])
        steps.append(f"prune:{method}:{ratio:.4g}:scope={scope}"
                     + (f":epochs={cfg.finetune_epochs}" if cfg.finetune_epochs else ""))
    if "quantize" in family:
        method = trial.suggest_categorical("quant_method", list(QUANT_METHODS))
        bits = trial.suggest_int("bits", *BITS_RANGE)
        steps.append(f"quantize:{method}:{bits}")
    return ",".join(steps)


def grid_params(spec: str) -> dict[str, Any]:
    """The search-space point of a spec (so a grid or solver point can be enqueued as a trial)."""
    from compression.pipeline import parse_steps, step_kind
    steps = parse_steps(spec)
    if [step_kind(s) for s in steps] == ["prune", "finetune", "quantize"]:
        prune, ft, quant = steps
        return {"family": "deep-compression", "dc_ratio": float(prune.ratio), "dc_steps": prune.steps,
                "dc_epochs": ft.epochs, "dc_bits": quant.bits, "dc_huffman": quant.method == "cluster-huffman",
                "dc_centroid_epochs": quant.centroid_epochs}
    params: dict[str, Any] = {}
    for step in steps:
        if step_kind(step) == "prune":
            params.update(prune_method=step.method, ratio=float(step.ratio), scope=step.scope)
        else:
            params.update(quant_method=step.method, bits=int(step.bits))
    params["family"] = "+".join(k for k in ("prune", "quantize") if ("ratio" if k == "prune" else "bits") in params)
    return params


def fixed(params: dict[str, Any], cfg: Any) -> tuple[str, Any]:
    """(the spec, the FixedTrial holding its params and distributions) of a point of the space."""
    import optuna
    trial = optuna.trial.FixedTrial(params)
    return suggest(trial, cfg), trial


def spec_of_params(params: dict[str, Any], cfg: Any) -> str:
    return fixed(params, cfg)[0]


def canonical(spec: str, cfg: Any) -> str:
    """`spec` as the sampler writes the same point (a grid's "prune:unstructured:0.5" ->
    "prune:unstructured:0.5:scope=global")."""
    return spec_of_params(grid_params(spec), cfg)
