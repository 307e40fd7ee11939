"""What a user keeps about a stored run besides its numbers: its name, its tags, the group of runs
made together (a sweep, search, budget search or pipeline), and where its artifact file is.
Checked here, at the boundary, with messages that name the bad value (compression.store stores them).

And how every view labels a run (`run_title`: its name, else `describe`: what it did in a few words;
`run_choice`: as a picker offers it)."""

from __future__ import annotations

import functools
import uuid
from pathlib import Path
from typing import Any, Mapping

from compression import CompressionError
from compression.paths import home_dir

GROUP_KINDS = ("sweep", "search", "budget", "pipeline")
NAME_MAX, TAG_MAX, TAGS_MAX = 80, 32, 20


def artifact_file(path: str | None) -> Path | None:
    """A run's artifact file if it is still on disk: an absolute path, or a relative one as written
    (from the working folder) or under the app's data folder; None otherwise."""
    if not path:
        return None
    p = Path(path)
    for candidate in ([p] if p.is_absolute() else [p, home_dir() / p]):
        if candidate.is_file():
            return candidate
    return None


def new_group_id(kind: str, key: str | None = None) -> str:
    """The group id of runs made together: "<kind>:<key>", the key a short random one unless given
    (a search's study name, so a continued study stays one group)."""
    if kind not in GROUP_KINDS:
        raise CompressionError(f"unknown run group kind {kind!r}; one of {', '.join(GROUP_KINDS)}")
    key = (key or "").strip() or uuid.uuid4().hex[:8]
    return f"{kind}:{key}"


def check_name(name: str) -> str | None:
    """A run's name as stored: stripped, None when empty (the name is cleared)."""
    if not isinstance(name, str):
        raise CompressionError(f"a run name is text, got {name!r}")
    text = name.strip()
    if len(text) > NAME_MAX:
        raise CompressionError(f"run name {text[:40]!r}... is {len(text)} characters; at most {NAME_MAX}")
    if any(ord(c) < 32 for c in text):
        raise CompressionError(f"run name {text!r} has a line break or control character")
    return text or None


def check_tag(tag: str) -> str:
    """One tag as stored (stripped); refused: empty, commas, control characters, too long."""
    if not isinstance(tag, str):
        raise CompressionError(f"a tag is text, got {tag!r}")
    text = tag.strip()
    if not text:
        raise CompressionError(f"empty tag {tag!r}")
    if "," in text:
        raise CompressionError(f"tag {text!r} has a comma; give one tag at a time")
    if len(text) > TAG_MAX:
        raise CompressionError(f"tag {text!r} is {len(text)} characters; at most {TAG_MAX}")
    if any(ord(c) < 32 for c in text):
        raise CompressionError(f"tag {text!r} has a line break or control character")
    return text


def check_tags(tags) -> list[str]:
    """A run's tags: each checked, duplicates dropped (first kept), at most TAGS_MAX."""
    if isinstance(tags, str):
        raise CompressionError(f"tags are a list, got the text {tags!r}")
    out: list[str] = []
    for tag in tags:
        text = check_tag(tag)
        if text not in out:
            out.append(text)
    if len(out) > TAGS_MAX:
        raise CompressionError(f"{len(out)} tags; a run takes at most {TAGS_MAX}")
    return out


# ---- what a run did, in a few words --------------------------------------------------------------
# One label per run for every run picker, chart, table, the story, the report and the CSV: the name
# the user gave it, else a short description of what was done ("structured 0.5, 1 epoch", "8-bit
# per-channel", "unstructured 0.8 → 4-bit clusters"): never the raw config (the details show that).

def _num(value, digits: int = 3) -> str:
    """0.5 -> '0.5', 0.333333 -> '0.333', 4.0 -> '4'."""
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return str(value)


def _epochs(n, word: str = "epoch") -> str:
    n = int(n)
    return f"{n} {word}{'' if n == 1 else 's'}"


def _prune(c: dict) -> str:
    kind = c.get("method") or ("structured" if c.get("structured") is True else "unstructured")
    text = f"{kind} {_num(c['ratio'])}"
    if c.get("importance") == "taylor":
        text += " taylor"
    steps, epochs = int(c.get("steps") or 1), int(c.get("finetune_epochs", c.get("epochs")) or 0)
    if steps > 1:
        text += f", {steps} steps" + (f" × {_epochs(epochs)}" if epochs else "")
    elif epochs:
        text += f", {_epochs(epochs)}"
    if float(c.get("finetune_distill") or 0):
        text += ", distilled"
    return text


def _quantize(c: dict) -> str:
    kind = c.get("method") or c.get("scheme") or "uniform"
    bits = c.get("bits", 1) if kind in ("binary", "ternary") else c["bits"]
    if kind in ("binary", "ternary"):
        text = kind
    elif str(kind).startswith("cluster"):
        text = f"{bits}-bit clustered" + (" + Huffman" if kind == "cluster-huffman" else "")
    elif int(bits) >= 16:
        text = f"float{bits}"
    else:
        text = f"{bits}-bit per-{c.get('granularity', 'channel')}" + ("" if c.get("symmetric", True) else " affine")
    if c.get("activation_bits"):
        text += f", {c['activation_bits']}-bit activations"
    if c.get("layer_bits"):
        text += ", mixed precision"
    if c.get("qat_epochs"):
        text += f", QAT {_epochs(c['qat_epochs'])}"
    if c.get("centroid_epochs"):
        text += f", centroids tuned {_epochs(c['centroid_epochs'])}"
    return text


def _distill(c: dict) -> str:
    if "student" not in c and "student_width" not in c:  # a pipeline's distill step: the model itself learns
        text = f"distilled {_epochs(c.get('epochs', 1))}, T={_num(c.get('T', c.get('temperature', 4)))}"
        return text + (f" from {c['teacher']}" if c.get("teacher") else "")
    width = float(c.get("student_width") or 1)
    text = ("pretrained " if c.get("student_init") == "pretrained" else "") + f"student {c.get('student', '')}".rstrip()
    text += f" ×{_num(width)}" if width != 1 else ""
    alpha = c.get("alpha")
    text += ", labels only" if alpha is not None and float(alpha) == 0 else f", T={_num(c['temperature'])}"
    if c.get("epochs"):
        text += f", {_epochs(c['epochs'])}"
    teachers = c.get("teachers") or []
    return text + (f", {1 + len(teachers)} teachers" if teachers else "")


def _architecture(c: dict) -> str:
    convert = str(c.get("convert") or c.get("kind") or "depthwise")
    low_rank = "low-rank" + (f" rank {c['rank']}" if c.get("rank") else
                             f" {_num(float(c['energy']) * 100)} % energy" if c.get("energy") else "")
    text = " + ".join("depthwise-separable" if part == "depthwise" else low_rank if part == "low-rank" else part
                      for part in convert.split("+"))
    recover, epochs = c.get("recover") or "none", c.get("recover_epochs", 0)
    if recover != "none" and epochs:
        text += f", {'fine-tuned' if recover == 'finetune' else 'distilled'} {_epochs(epochs)}"
    return text


def _early_exit(c: dict) -> str:
    values = c.get("thresholds", c.get("threshold"))
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if values == [None]:
        raise KeyError("thresholds")
    shown = "/".join(_num(v, 2) for v in dict.fromkeys(values))
    return f"exit at {c.get('criterion', 'confidence')} {'<' if c.get('criterion') == 'entropy' else '>'} {shown}"


def _pipeline(c: dict) -> str:
    steps = _pipeline_steps(str(c.get("pipeline") or ""))
    if not steps:
        return f"pipeline {c.get('recipe', '')}".strip()
    k = int(c.get("step") or len(steps)) if str(c.get("step", "")).isdigit() else len(steps)
    text = " → ".join(steps[:k])
    return text + (f" (step {k} of {len(steps)})" if k < len(steps) else "")


@functools.lru_cache(maxsize=256)
def _pipeline_steps(spec: str) -> tuple[str, ...]:
    """A pipeline spec's steps, each described (its text where a step no longer parses)."""
    from compression.knobs import parse_spec
    from compression.methods import config_dict
    from compression.pipeline.spec import split_steps
    out = []
    for part in (p.strip() for p in split_steps(spec) if p.strip()):
        try:
            method, config = parse_spec(part)
            out.append(describe(method.family, config_dict(config)))
        except Exception:  # a step of an older spec syntax: its own words
            out.append(part)
    return tuple(out)


_DESCRIBE = {
    "prune": _prune, "quantize": _quantize, "distill": _distill, "architecture": _architecture,
    "early-exit": _early_exit, "pipeline": _pipeline,
    "finetune": lambda c: f"fine-tuned {_epochs(c.get('epochs', 1))}",
    "width": lambda c: f"width ×{_num(c['width'] if 'width' in c else c['multiplier'])}",
    "baseline": lambda c: "uncompressed" + (", own weights" if c.get("weights") else ""),
}


def describe(method: str, config: Mapping[str, Any] | None) -> str:
    """What a run did, in a few words, from its method and stored config: "structured 0.5, 1 epoch",
    "8-bit per-channel", "student lenet5, T=4, 10 epochs", "unstructured 0.9, 3 steps × 4 epochs →
    5-bit clusters + Huffman" (a pipeline: its steps up to this run). A method without its own words
    (or a config it cannot read) gives the method and its first three knobs."""
    c = dict(config) if isinstance(config, Mapping) else {}
    try:
        return _DESCRIBE[method](c)
    except (KeyError, TypeError, ValueError):
        knobs = [f"{k} {_num(v) if isinstance(v, float) else v}" for k, v in c.items()
                 if v is not None and not isinstance(v, (dict, list, tuple))][:3]
        return " ".join([str(method), *knobs]) if knobs else str(method)


def _field(run, key: str):
    return run.get(key) if isinstance(run, Mapping) else getattr(run, key, None)


def run_title(run) -> str:
    """A run's label: its name, else what it did (`describe`). `run`: a stored run, an explorer
    frame row (dict or itertuples row) or a Result.to_dict()."""
    name = _field(run, "name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    return describe(str(_field(run, "method") or ""), _field(run, "config"))


def run_choice(run) -> str:
    """A run as a picker offers it: "run 12 · “Half the channels” · structured 0.5, 1 epoch · cnn ·
    91.20 %" (the description after the name; no name: the description alone)."""
    name = _field(run, "name")
    named = f"“{name.strip()}” · " if isinstance(name, str) and name.strip() else ""
    what = describe(str(_field(run, "method") or ""), _field(run, "config"))
    return f"run {int(_field(run, 'id'))} · {named}{what} · {_field(run, 'model')} · {float(_field(run, 'accuracy')) * 100:.2f} %"
