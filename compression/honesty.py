"""Which of a result's gains are realized, and whether its accuracy looks broken: one list, one
honesty sentence and one sanity sentence for every page, the explorer, the report and the CLI.

`simulated` (DESIGN.md) says that *some* gain is simulated; `simulated_metrics` says which of
`size_bytes`, `macs`, `latency_ms` are (the others were measured on the stored bytes and the model
as it runs). Per family:

| method | simulated_metrics | why |
|---|---|---|
| prune unstructured (and fine-tune/distill steps after it) | latency_ms | the sparse file's bytes are real; the model runs dense kernels that multiply every zero (MACs are counted on those kernels, so they claim no gain) |
| prune structured | [] | channels removed: a smaller dense network, measured |
| quantize, no int8 kernel ran | latency_ms | the packed file's bytes are real; latency is the dequantized float model's (MACs: the same count either way) |
| quantize, an int8 kernel ran | [] | latency measured on that kernel |
| distill (student), architecture, early-exit, width | [] | a real model, measured as it runs (early exit: with real exits) |
| pipeline | the union of its steps' lists | each step's list already carries the sparse state forward |

Runs stored before the list existed: `simulated: true` -> all three (conservative), false -> [].
`parameters` and accuracy are never simulated: both are measured on the model the file holds.

No streamlit here (compression/ never imports it).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

SIMULATABLE = ("size_bytes", "macs", "latency_ms")
METRIC_WORDS = {"size_bytes": "size", "macs": "MACs", "latency_ms": "latency", "params": "parameters"}

# how far from chance (points) and under the baseline (points) a result must be to be flagged
CHANCE_MARGIN_POINTS = 2.0
BELOW_BASELINE_POINTS = 20.0


def _flag(value: Any) -> bool:
    """A stored / pandas boolean (numpy bool, 0/1, NaN for a missing column) as a plain bool."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)


def _listed(run: Any) -> list[str] | None:
    """The list the run carries, or None when it was stored before the list existed."""
    if hasattr(run, "metrics") and hasattr(run, "extra"):  # a compression.metrics.Result
        listed = run.extra.get("simulated_metrics")
    else:
        listed = run.get("simulated_metrics")
        if not isinstance(listed, (list, tuple)):
            extra = run.get("extra")
            listed = extra.get("simulated_metrics") if isinstance(extra, Mapping) else None
    if isinstance(listed, (list, tuple)):
        return [k for k in SIMULATABLE if k in listed]
    return None


def _simulated(run: Any) -> bool:
    if hasattr(run, "metrics") and hasattr(run, "extra"):
        return bool(run.metrics.simulated)
    return _flag(run.get("simulated"))


def simulated_metrics(run: Any) -> list[str]:
    """The metrics among size_bytes, macs, latency_ms whose gain is simulated for this run.

    `run`: a Result, a Result.to_dict() / CLI JSON object, a RunStore row (extra decoded) or an
    explorer frame row. A run without the list (stored before it existed) with `simulated: true`
    gets all three (conservative); with `simulated: false`, none."""
    listed = _listed(run)
    if listed is not None:
        return listed
    return list(SIMULATABLE) if _simulated(run) else []


def merge_simulated(*lists: Any) -> list[str]:
    """The union of several simulated_metrics lists, in SIMULATABLE order (a pipeline's steps)."""
    seen = {k for lst in lists for k in (lst or ())}
    return [k for k in SIMULATABLE if k in seen]


def axis_is_real(run: Any, axis: str) -> bool:
    """Is this run's number on this axis realized? Accuracy and parameters always are (counted on
    the model the file holds); size, MACs and latency unless listed in simulated_metrics."""
    return axis not in SIMULATABLE or axis not in simulated_metrics(run)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _step_kind(run: Any) -> str:
    """The family of what produced the run (a pipeline step's own kind)."""
    method = run.method if hasattr(run, "method") else run.get("method")
    config = (run.config if hasattr(run, "config") else run.get("config")) or {}
    if method == "pipeline" and isinstance(config, Mapping):
        return str(config.get("step_kind") or "pipeline")
    return str(method or "")


def _latency_reason(run: Any) -> str:
    kind = _step_kind(run)
    if kind == "quantize":
        return "it was timed on the dequantized float model (no int8 kernel ran for this configuration here)"
    if kind in ("prune", "finetune", "distill"):
        return "the model still runs dense kernels that multiply every pruned zero, so it is not faster"
    return "the stored model does not run faster in this form"


def honesty_sentence(run: Any) -> str:
    """One sentence saying which gains of this run are real and which simulated, the same on every
    page, the explorer's run details and the report. Accuracy is always real."""
    listed = _listed(run)
    sim = simulated_metrics(run)
    real = [METRIC_WORDS[k] for k in SIMULATABLE if k not in sim]
    if not sim:
        return ("Every gain is real: size, MACs and latency were measured on the stored file and the "
                "model as it runs.")
    if listed is None:
        return ("Simulated gain: this run was stored without saying which of its gains are simulated, so "
                "size, MACs and latency are all treated as simulated. The accuracy is real.")
    joined = _join(real) if real else ""
    real_part = (f"{joined[0].upper() + joined[1:]} {'is' if len(real) == 1 else 'are'} real" if real
                 else "No saving is real")
    sim_words = _join([METRIC_WORDS[k] for k in sim])
    why = _latency_reason(run) if sim == ["latency_ms"] else "the stored or executed model does not realize it"
    return f"{real_part}; {sim_words} {'is' if len(sim) == 1 else 'are'} simulated: {why}. The accuracy is real."


# ---------------------------------------------------------------------------------------------
# sanity: chance level, far below the baseline

def dataset_classes(dataset: str | None) -> int | None:
    """Number of classes of a registered dataset, without loading it (None when not known)."""
    if not dataset:
        return None
    try:
        from compression.data import _LOADERS
    except ImportError:  # pragma: no cover
        return None
    entry = _LOADERS.get(dataset)
    if entry:
        return len(entry[1])
    from compression.imagefolder import class_count  # image folders and uploaded ones: their class folders
    return class_count(dataset)


def run_classes(run: Any, classes: int | None = None) -> int | None:
    """The number of classes a run's model chooses from: given, recorded with the run (`classes`),
    else its dataset's (registered datasets and image folders on disk)."""
    if classes:
        return classes
    extra = run.extra if hasattr(run, "metrics") else run.get("extra") if isinstance(run, Mapping) else None
    recorded = run.get("classes") if isinstance(run, Mapping) else None
    recorded = recorded or (extra.get("classes") if isinstance(extra, Mapping) else None)
    if isinstance(recorded, (int, float)) and not (isinstance(recorded, float) and math.isnan(recorded)) and recorded > 1:
        return int(recorded)
    return dataset_classes(_get(run, "dataset"))


def _get(run: Any, key: str, default: Any = None) -> Any:
    if hasattr(run, "metrics") and hasattr(run, "extra"):
        if key == "baseline":
            b = run.baseline
            return b.to_dict() if b is not None else None
        if key in ("model", "dataset", "method", "config"):
            return getattr(run, key)
        return getattr(run.metrics, key, default)
    value = run.get(key, default)
    return default if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


MODEL_FIX = ("Likely reason: the model's weights do not fit these images: a random init (a torchvision:, timm: or "
             "entry: model without --weights or --pretrained), a wrong input normalization (the model was trained "
             "with other mean/std: --normalize imagenet, dataset or none, or --mean/--std), or weights trained on "
             "other classes. Fix: give the trained weights, and the normalization they were trained with.")


def _fix(run: Any) -> str:
    """The likely reason and the fix, for the family that produced the run."""
    kind = _step_kind(run)
    if kind in ("baseline", "evaluate"):
        return MODEL_FIX
    config = _get(run, "config") or {}
    c = {k[5:] if k.startswith("step_") else k: v for k, v in config.items()} if isinstance(config, Mapping) else {}
    if kind == "prune":
        epochs = c.get("finetune_epochs", c.get("epochs", 0)) or 0
        ratio = c.get("ratio")
        at = f" at ratio {ratio:g}" if isinstance(ratio, (int, float)) else ""
        if not epochs:
            return (f"Likely reason: pruning{at} without fine-tuning removed weights the model relied on. "
                    "Fix: set fine-tuning epochs (2 or more), or prune less.")
        return f"Likely reason: pruning{at} removed more than fine-tuning recovered. Fix: a lower ratio, more steps or more fine-tuning epochs."
    if kind == "architecture":
        if (c.get("recover") in (None, "none")) or not c.get("recover_epochs", 1):
            return ("Likely reason: the converted layers have not been trained yet (conversion before recovery). "
                    "Fix: run recovery training (fine-tune or distill from the original).")
        return "Likely reason: recovery was too short for the converted layers. Fix: more recovery epochs, or a larger rank."
    if kind == "quantize":
        bits = c.get("bits")
        if c.get("method") in ("binary", "ternary") or (isinstance(bits, (int, float)) and bits <= 4):
            return ("Likely reason: quantization at very low bits loses too much of each weight. "
                    "Fix: more bits, or quantization-aware training (QAT epochs).")
        return "Likely reason: the quantization grid is too coarse for some layers. Fix: per-channel granularity, more bits or QAT."
    if kind in ("distill", "distillation"):
        return "Likely reason: the student has not learned enough yet. Fix: train it for more epochs or on more labels."
    if kind == "early-exit":
        return "Likely reason: the exit thresholds let images leave before the model is sure. Fix: raise the thresholds."
    if kind == "width":
        return "Likely reason: this width keeps too few channels for these weights. Fix: a wider width."
    if kind == "finetune":
        return "Likely reason: fine-tuning diverged or was too short. Fix: a lower learning rate or more epochs."
    return "Fix: check the settings of this run; a compression this lossy is rarely useful."


def sanity_warning(run: Any, *, classes: int | None = None) -> str | None:
    """A sentence when the run's accuracy is within 2 points of chance (1/classes) or more than
    20 points under its baseline, with the likely reason and the fix for its family; else None.

    `classes` defaults to the run's dataset's class count when the dataset is a registered one."""
    acc = _num(_get(run, "accuracy"))
    if acc is None:
        return None
    classes = run_classes(run, classes)
    base = _get(run, "baseline")
    base_acc = _num(base.get("accuracy")) if isinstance(base, Mapping) else None
    at_chance = lambda a: classes and classes > 1 and a is not None and abs(a - 1 / classes) * 100 <= CHANCE_MARGIN_POINTS  # noqa: E731
    if at_chance(acc) and _step_kind(run) not in ("baseline", "evaluate") and at_chance(base_acc):
        return (f"Chance level, and so is the uncompressed model ({base_acc * 100:.2f} % on {classes} classes, "
                f"guessing gives {100 / classes:.2f} %): the cause is the model, not the compression. {MODEL_FIX}")
    if at_chance(acc):
        verb = "does not classify" if _step_kind(run) in ("baseline", "evaluate") else "no longer classifies"
        what = (f"Chance level: {acc * 100:.2f} % on {classes} classes is what guessing gives "
                f"({100 / classes:.2f} %); this model {verb}.")
    elif base_acc is not None and (base_acc - acc) * 100 > BELOW_BASELINE_POINTS:
        what = (f"Far below the baseline: {acc * 100:.2f} % is {(base_acc - acc) * 100:.2f} points under the "
                f"uncompressed {base_acc * 100:.2f} %.")
    else:
        return None
    return f"{what} {_fix(run)}"


def sanity_flag(run: Any, *, classes: int | None = None) -> str:
    """The warning in a few words for a table cell ("chance level", "-35.2 points vs baseline"), ""
    when the run looks sound: the story table, the explorer's table, the CSV and the report."""
    text = sanity_warning(run, classes=classes)
    if not text:
        return ""
    if text.startswith("Chance level"):
        return "chance level"
    base = _get(run, "baseline")
    drop = (_num(base.get("accuracy")) - _num(_get(run, "accuracy"))) * 100 if isinstance(base, Mapping) else None
    return f"-{drop:.1f} points vs baseline" if drop is not None else "far below baseline"
