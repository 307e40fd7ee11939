"""Pipelines: compression methods applied in order, each step measured and kept.

A pipeline is a tuple of steps, written `kind:positional:...:key=value` and joined by commas:

    prune:unstructured:0.9:scope=global:steps=3:epochs=4   prune (and fine-tune, iteratively)
    prune:structured:0.5:epochs=2                          remove channels, fine-tune 2 epochs
    finetune:3                                             fine-tune 3 epochs (pruned zeros kept)
    distill:2:T=4:alpha=0.7                                2 epochs with the original model as teacher
    quantize:cluster-huffman:5                             the last step: packed weights

Deep Compression (Han et al. 2016) is `prune:unstructured ... , quantize:cluster-huffman:5`: the
zeros of unstructured pruning are kept exact through clustering (left out of k-means) and their
positions are stored as relative gaps, Huffman-coded with the cluster indices.

Composition rules are checked before anything runs (`check_composition`): nothing after quantize
(every other step trains float weights and would undo the stored codes), no structured pruning
after unstructured masks, distillation needs a teacher different from the student, binary
weights have no zero to keep a pruned weight at, and early-exit / slimmable models are refused.

Every step's model is stored as a real artifact (`write_artifact`): a small header naming the zoo
model's builder, then the payload the previous families write (dense state_dict, sparse container
or packed quantized file). `load_artifact(bytes)` rebuilds a runnable model from the file alone,
with the same predictions. `size_bytes` is the length of that file.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Union

import torch
import torch.nn as nn

from compression import CompressionError
from compression.data import Dataset
from compression.metrics import Metrics, Result, baseline_metrics, measure
from compression.models import clone_model, load_pretrained, model_card, state_dict_bytes
from compression.training import ProgressFn, StopFn, TrainConfig, accuracy_on, fit

MAX_STEPS = 8
KINDS = ("prune", "finetune", "distill", "quantize")
SPLITS = ("train", "val")
PAYLOADS = ("dense", "sparse", "quantized")


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CompressionError(f"{what} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _float(value: Any, what: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        raise CompressionError(f"{what} must be a number in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _split(value: Any) -> str:
    if not isinstance(value, str) or value not in SPLITS:
        raise CompressionError(f"fine-tuning split must be one of {', '.join(SPLITS)}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# steps: one frozen config each

@dataclass(frozen=True)
class PruneStep:
    method: str = "unstructured"   # unstructured (single weights, sparse file) | structured (channels)
    ratio: float = 0.5             # fraction removed, [0, 1)
    scope: str = "global"          # global: one threshold over all layers | layer: the ratio in each
    steps: int = 1                 # prune -> fine-tune cycles, the ratio ramped linearly
    epochs: int = 0                # fine-tuning epochs after each pruning cycle
    lr: float = 1e-3
    split: str = "train"
    kind = "prune"

    def __post_init__(self):
        from compression.pruning import FinetuneConfig, PruneConfig
        PruneConfig(self.method, self.ratio, self.scope)
        FinetuneConfig(epochs=self.epochs, steps=self.steps, lr=self.lr, split=self.split)

    def spec(self) -> str:
        return (f"prune:{self.method}:{self.ratio:g}:scope={self.scope}:steps={self.steps}:epochs={self.epochs}"
                f"{_opt_spec(self, ('lr', 'split'))}")


@dataclass(frozen=True)
class FinetuneStep:
    epochs: int = 1
    lr: float = 1e-3
    split: str = "train"
    kind = "finetune"

    def __post_init__(self):
        _int(self.epochs, "fine-tuning epochs", 1, 100)
        _float(self.lr, "fine-tuning learning rate", 0, 1, lo_open=True)
        _split(self.split)

    def spec(self) -> str:
        return f"finetune:{self.epochs}{_opt_spec(self, ('lr', 'split'))}"


@dataclass(frozen=True)
class DistillStep:
    epochs: int = 1
    T: float = 4.0                 # temperature of the softened outputs
    alpha: float = 0.7             # weight of the teacher's soft labels (1 - alpha: hard labels)
    lr: float = 1e-3
    split: str = "train"
    kind = "distill"

    def __post_init__(self):
        _int(self.epochs, "distillation epochs", 1, 100)
        _float(self.T, "temperature T", 0, 100, lo_open=True)
        _float(self.alpha, "alpha", 0, 1, lo_open=True)
        _float(self.lr, "distillation learning rate", 0, 1, lo_open=True)
        _split(self.split)

    def spec(self) -> str:
        return f"distill:{self.epochs}:T={self.T:g}:alpha={self.alpha:g}{_opt_spec(self, ('lr', 'split'))}"


@dataclass(frozen=True)
class QuantizeStep:
    method: str = "uniform"        # uniform | cluster | cluster-huffman | binary | ternary
    bits: int = 8
    kind = "quantize"

    def __post_init__(self):
        from compression.quantization import QuantConfig
        QuantConfig(method=self.method, bits=self.bits)

    def spec(self) -> str:
        return f"quantize:{self.method}:{self.bits}"


Step = Union[PruneStep, FinetuneStep, DistillStep, QuantizeStep]
STEP_TYPES = {"prune": PruneStep, "finetune": FinetuneStep, "distill": DistillStep, "quantize": QuantizeStep}
_POSITIONAL = {"prune": ("method", "ratio"), "finetune": ("epochs",), "distill": ("epochs",),
               "quantize": ("method", "bits")}


def _opt_spec(step: Step, keys: tuple[str, ...]) -> str:
    default = type(step)()
    return "".join(f":{k}={getattr(step, k):g}" if isinstance(getattr(step, k), float) else f":{k}={getattr(step, k)}"
                   for k in keys if getattr(step, k) != getattr(default, k))


def _coerce(kind: str, key: str, text: str) -> Any:
    default = getattr(STEP_TYPES[kind], key)
    if isinstance(default, str):
        return text
    try:
        return int(text) if isinstance(default, int) else float(text)
    except ValueError:
        raise CompressionError(f"{kind} step: {key}={text!r} is not a number") from None


def parse_step(text: str) -> Step:
    """'prune:unstructured:0.9:steps=3' -> PruneStep(...); refuses unknown kinds and keys."""
    parts = [p.strip() for p in text.strip().split(":")]
    kind, args = parts[0], parts[1:]
    if kind not in STEP_TYPES:
        raise CompressionError(f"unknown pipeline step {text.strip()!r}; steps start with one of {', '.join(KINDS)}")
    positional, values = _POSITIONAL[kind], {}
    fields_ = STEP_TYPES[kind].__dataclass_fields__
    for i, arg in enumerate(args):
        key, sep, value = arg.partition("=")
        if not sep:
            if i >= len(positional) or any("=" in a for a in args[:i]):
                raise CompressionError(f"{kind} step {text.strip()!r}: unexpected value {arg!r}; "
                                       f"write {':'.join([kind, *positional])}[:key=value...]")
            key, value = positional[i], arg
        if key not in fields_:
            raise CompressionError(f"{kind} step: unknown option {key!r}; options: {', '.join(fields_)}")
        values[key] = _coerce(kind, key, value)
    return STEP_TYPES[kind](**values)


def parse_steps(text: str) -> tuple[Step, ...]:
    """A comma-separated pipeline: 'prune:unstructured:0.9,finetune:3,quantize:cluster-huffman:5'."""
    items = [t for t in text.split(",") if t.strip()]
    if not items:
        raise CompressionError(f"pipeline {text!r} has no steps")
    if len(items) > MAX_STEPS:
        raise CompressionError(f"pipeline has {len(items)} steps; at most {MAX_STEPS} are allowed")
    return tuple(parse_step(t) for t in items)


def spec_of(steps: tuple[Step, ...]) -> str:
    return ",".join(s.spec() for s in steps)


# named recipes: a spec each, with a line saying what it is for
RECIPES: dict[str, tuple[str, str]] = {
    "deep-compression": (
        "prune:unstructured:0.9:scope=global:steps=3:epochs=4,quantize:cluster-huffman:5",
        "Han et al. 2016: iterative global magnitude pruning to 90 % (3 cycles of 4 fine-tuning epochs), "
        "then 5-bit weight clustering with the zeros kept exact, Huffman-coded indices and relative "
        "sparse positions. The smallest file; speed is not improved (dense kernels)."),
    "slim-int8": (
        "prune:structured:0.5:scope=layer:epochs=2,distill:2:T=4:alpha=0.7,quantize:uniform:8",
        "Structured pruning of half the channels (a smaller dense network: real MACs and latency "
        "gains), fine-tuned, then distilled from the original model, then 8-bit weights."),
    "sparse-int8": (
        "prune:unstructured:0.7:scope=global:steps=2:epochs=2,quantize:uniform:8",
        "Moderate unstructured pruning, then 8-bit uniform weights: zeros stay zero (symmetric "
        "quantization), a gentle recipe that keeps accuracy."),
}


def recipe_steps(name: str) -> tuple[Step, ...]:
    if name not in RECIPES:
        raise CompressionError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return parse_steps(RECIPES[name][0])


# ---------------------------------------------------------------------------------------------
# composition rules

def model_kind_problem(model: nn.Module) -> str | None:
    """Why a model cannot go through a pipeline, or None."""
    from compression.dynamic import MultiExitNet, SlimmableCNN
    if isinstance(model, MultiExitNet):
        return ("early-exit models are not supported in pipelines: pruning, distillation and quantization "
                "here treat the network as one classifier and would not keep the exit heads consistent")
    if isinstance(model, SlimmableCNN):
        return ("slimmable models are not supported in pipelines: their widths share weights; "
                "convert one width to a static network first")
    return None


def check_composition(steps: tuple[Step, ...], model: nn.Module | None = None) -> None:
    """Raise CompressionError naming the first step that cannot follow the ones before it."""
    if not steps:
        raise CompressionError(f"a pipeline needs at least one step, got {list(steps)!r}")
    if len(steps) > MAX_STEPS:
        raise CompressionError(f"pipeline has {len(steps)} steps; at most {MAX_STEPS} are allowed")
    if model is not None and (problem := model_kind_problem(model)):
        raise CompressionError(problem)
    sparse = changed = False  # unstructured zeros present; model differs from the original
    for i, step in enumerate(steps, start=1):
        where = f"step {i} ({step.spec()})"
        if i > 1 and steps[i - 2].kind == "quantize":
            raise CompressionError(f"{where} cannot follow quantize: it would change float weights after they were "
                                   "quantized and the stored codes would no longer match; quantize must be the last step")
        if isinstance(step, PruneStep):
            if step.method == "structured" and sparse:
                raise CompressionError(f"{where}: structured pruning cannot follow unstructured pruning; the zero "
                                       "masks would not survive the rebuilt layers. Put structured pruning first")
            sparse = sparse or (step.method == "unstructured" and step.ratio > 0)
            changed = changed or step.ratio > 0 or step.epochs > 0
        elif isinstance(step, FinetuneStep):
            changed = True
        elif isinstance(step, DistillStep):
            if not changed:
                raise CompressionError(f"{where}: distillation needs a teacher different from the student; the teacher "
                                       "is the original model, so put distill after a step that changes the model")
            changed = True
        elif isinstance(step, QuantizeStep):
            if sparse and step.method == "binary":
                raise CompressionError(f"{where}: binary weights have no zero, so the pruned weights would come back "
                                       "as +/- scale; use ternary, cluster or uniform after unstructured pruning")
            changed = True


# ---------------------------------------------------------------------------------------------
# the artifact: header + payload

MAGIC = b"CXPIPE1\0"


def architecture_of(name: str) -> dict[str, Any]:
    card = model_card(name)
    return {"name": name, "builder": card["builder"], "kwargs": card.get("builder_kwargs", {})}


def write_artifact(payload: bytes, kind: str, architecture: dict[str, Any]) -> bytes:
    """The downloadable file: MAGIC | u32 header length | zlib(JSON header) | payload.

    kind: dense (torch.save state_dict), sparse (pruning's sparse container) or quantized
    (quantization's packed CEQ file)."""
    if kind not in PAYLOADS:
        raise CompressionError(f"artifact payload {kind!r} unknown; one of {', '.join(PAYLOADS)}")
    head = zlib.compress(json.dumps({"format": 1, "payload": kind, "architecture": architecture},
                                    separators=(",", ":")).encode(), 9)
    return MAGIC + struct.pack("<I", len(head)) + head + payload


def read_artifact(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, payload) of a pipeline artifact."""
    if len(blob) < 12 or blob[:8] != MAGIC:
        raise CompressionError("not a Compression Explorer pipeline artifact (bad magic bytes)")
    (n,) = struct.unpack_from("<I", blob, 8)
    try:
        header = json.loads(zlib.decompress(blob[12:12 + n]))
    except (zlib.error, ValueError) as exc:
        raise CompressionError(f"pipeline artifact header unreadable ({exc})") from None
    if header.get("payload") not in PAYLOADS:
        raise CompressionError(f"pipeline artifact payload {header.get('payload')!r} unknown")
    return header, blob[12 + n:]


def _payload_state(kind: str, payload: bytes) -> dict[str, torch.Tensor]:
    if kind == "sparse":
        from compression.pruning import read_sparse
        return read_sparse(payload)
    if kind == "quantized":
        from compression.quantization import read_artifact as read_quantized
        return read_quantized(payload)[0]
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CompressionError(f"pipeline artifact: state_dict unreadable ({type(exc).__name__})") from None


def load_artifact(blob: bytes) -> nn.Module:
    """A runnable model (CPU, eval mode) from a pipeline artifact alone: the builder named in the
    header, layers shrunk to the stored shapes (structured pruning), the stored weights."""
    from compression.models import _resolve_builder, load_state_dict_checked
    from compression.pruning import resize_to

    header, payload = read_artifact(blob)
    arch = header["architecture"]
    state = _payload_state(header["payload"], payload)
    model = resize_to(_resolve_builder({"builder": arch["builder"], "name": arch.get("name")})(**arch["kwargs"]), state)
    if header["payload"] == "quantized":
        from compression.quantization import load_artifact as load_quantized
        return load_quantized(payload, model=model)
    load_state_dict_checked(model, state, source="pipeline artifact")
    return model.eval()


# ---------------------------------------------------------------------------------------------
# running

@dataclass(frozen=True)
class PipelineConfig:
    steps: tuple[Step, ...]
    seed: int = 0
    subset: int | None = None      # train on the first N images of each step's split (tests, demos)
    monitor_images: int = 2000     # validation images for the live accuracy after each epoch

    def __post_init__(self):
        if isinstance(self.steps, (str, bytes)) or not isinstance(self.steps, (list, tuple)):
            raise CompressionError(f"pipeline steps {self.steps!r} must be a list of step configs")
        object.__setattr__(self, "steps", tuple(self.steps))
        for s in self.steps:
            if not isinstance(s, tuple(STEP_TYPES.values())):
                raise CompressionError(f"pipeline step {s!r} is not a step config")
        check_composition(self.steps)
        _int(self.seed, "seed", 0, 2 ** 31 - 1)
        if self.subset is not None:
            _int(self.subset, "training subset", 1, 10 ** 7)
        _int(self.monitor_images, "monitor images", 1, 10 ** 6)

    @property
    def spec(self) -> str:
        return spec_of(self.steps)


@dataclass
class StepOutcome:
    index: int                      # 1-based
    step: Step
    result: Result
    model: nn.Module
    artifact: bytes                 # size_bytes == len(artifact)
    history: list[dict] = field(default_factory=list)


@dataclass
class _State:
    model: nn.Module
    payload: str = "dense"          # how the current model is stored
    sparse: bool = False            # unstructured zeros to keep through later training
    quantized: Any = None           # QuantizedModel of the last step


def _train_config(step, cfg: PipelineConfig) -> TrainConfig:
    return TrainConfig(epochs=step.epochs, lr=step.lr, batch_size=128, optimizer="adam", schedule="cosine",
                       seed=cfg.seed, split=step.split, subset=cfg.subset)


def _train(state: _State, step, cfg: PipelineConfig, dataset: Dataset, device, report, should_stop, loss_fn=None):
    from compression.pruning import apply_masks, weight_masks
    from compression.training import cross_entropy_loss
    masks = weight_masks(state.model) if state.sparse else None
    monitor = lambda m: accuracy_on(m, dataset, "val" if step.split == "train" else "test", device,  # noqa: E731
                                    limit=cfg.monitor_images)
    run = fit(state.model, dataset, _train_config(step, cfg), device=device, progress=report, should_stop=should_stop,
              loss_fn=loss_fn or cross_entropy_loss, evaluate=monitor,
              after_step=(lambda m: apply_masks(m, masks)) if masks else None)
    return run.model.eval(), run.history, run.stopped


def _apply(step: Step, state: _State, cfg: PipelineConfig, name: str, dataset: Dataset, teacher: nn.Module,
           device: torch.device, report: ProgressFn, should_stop: StopFn) -> tuple[_State, list[dict], bool]:
    """Run one step on the state's model; returns (new state, history, stopped)."""
    if isinstance(step, PruneStep):
        from compression.pruning import FinetuneConfig, PruneConfig, prune_finetune
        ft = FinetuneConfig(epochs=step.epochs, steps=step.steps, lr=step.lr, split=step.split, seed=cfg.seed,
                            subset=cfg.subset, monitor_images=cfg.monitor_images)
        run = prune_finetune(state.model, dataset, PruneConfig(step.method, step.ratio, step.scope), ft,
                             device=device, progress=report, should_stop=should_stop)
        sparse = state.sparse or step.method == "unstructured"
        return _State(run.model.eval(), "sparse" if sparse else "dense", sparse), run.history, run.stopped
    if isinstance(step, FinetuneStep):
        model, history, stopped = _train(state, step, cfg, dataset, device, report, should_stop)
        return replace(state, model=model), history, stopped
    if isinstance(step, DistillStep):
        from compression.distillation import distillation_loss
        t = clone_model(teacher).to(device).eval()

        def loss(model, x, y, idx):
            with torch.no_grad():
                soft = t(x)
            return distillation_loss(model(x), soft, y, temperature=step.T, alpha=step.alpha)
        model, history, stopped = _train(state, step, cfg, dataset, device, report, should_stop, loss)
        return replace(state, model=model), history, stopped
    from compression.quantization import QuantConfig, quantize
    qcfg = QuantConfig(method=step.method, bits=step.bits, seed=cfg.seed,
                       keep_zeros=state.sparse and step.method.startswith("cluster"))
    qm = quantize(state.model, qcfg, dataset=dataset, device=device)
    report({"phase": "quantized", "step": 1, "steps": 1})
    return _State(qm.model, "quantized", state.sparse, qm), [], False


def _payload(state: _State) -> bytes:
    if state.payload == "quantized":
        return state.quantized.artifact
    if state.payload == "sparse":
        from compression.pruning import sparse_bytes
        return sparse_bytes(state.model)
    return state_dict_bytes(state.model)


def _kernel_words(kernel: dict[str, Any]) -> str:
    """The chosen int8 kernel, and how it compares with float32 in its own runtime (so that the
    runtime's share of the speed is not passed off as int8's) and with PyTorch float32."""
    text = f"Latency is real: measured on the int8 kernel chosen by measurement ({kernel['description']})"
    torch_x, ort_x = kernel.get("speedup_vs_torch_fp32"), kernel.get("speedup_vs_ort_fp32")
    if kernel["chosen"].startswith("torch") and torch_x:
        return text + f"; at batch {kernel['batch']} it runs {torch_x:.2f}x as fast as PyTorch float32."
    if ort_x and torch_x:
        return text + (f"; at batch {kernel['batch']} it runs {ort_x:.2f}x as fast as ONNX Runtime float32 "
                       f"and {torch_x:.2f}x PyTorch float32.")
    return text + "."


def _gain(state: _State, step: Step, kernel: dict[str, Any] | None = None) -> str:
    if state.payload == "quantized":
        speed = ("Latency is simulated: measured on the dequantized float model."
                 if not (kernel and kernel.get("chosen")) else _kernel_words(kernel))
        text = (f"Size is real: weights stored as {state.quantized.config.label()}"
                f"{' with the pruned zeros kept exact and their positions as relative gaps' if state.quantized.config.keep_zeros else ''}. "
                + speed)
    elif state.sparse:
        text = ("Size is real (sparse file: nonzero values + relative indices or bitmask); speed is simulated: "
                "dense kernels still multiply the zeros.")
    else:
        text = "Real gain: a dense network; size, MACs and latency measured on it."
    return text


def _step_unit_count(step: Step) -> int:
    if isinstance(step, PruneStep):
        return step.steps * (1 + step.epochs)
    if isinstance(step, QuantizeStep):
        return 1
    return step.epochs


def run_pipeline(name: str, dataset: Dataset, cfg: PipelineConfig, *, device: torch.device | str = "cpu",
                 limit: int | None = None, model: nn.Module | None = None,
                 progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Iterator[StepOutcome]:
    """Apply the steps to zoo model `name` in order, yielding one measured StepOutcome per
    finished step. Stop ends it after the finished steps (a step interrupted midway is dropped).

    progress gets {"step", "steps"} over the whole pipeline's units (pruning cycles, epochs,
    the quantization), plus "stage" (1-based step index), "stages", "stage_step", "stage_steps"."""
    device = torch.device(device)
    original = model if model is not None else load_pretrained(name, device)
    check_composition(cfg.steps, original)
    baseline = baseline_metrics(name, dataset, device, limit=limit)
    arch = architecture_of(name)
    stop = should_stop or (lambda: False)
    units = [_step_unit_count(s) for s in cfg.steps]
    total, before = sum(units), 0
    state = _State(clone_model(original).to(device).eval())
    for i, step in enumerate(cfg.steps, start=1):
        if stop():
            return
        seen = {"n": 0}

        def report(entry: dict, i=i, step=step) -> None:
            seen["n"] += 1
            k = min(seen["n"], units[i - 1])
            if progress is not None:
                progress({**{k_: v for k_, v in entry.items() if k_ not in ("step", "steps")},
                          "step": before + k, "steps": total, "stage": i, "stages": len(cfg.steps),
                          "stage_label": step.spec(), "stage_step": k, "stage_steps": units[i - 1]})
        with torch.random.fork_rng(devices=[]):  # dropout draws seeded per step; the caller's RNG untouched
            torch.manual_seed(cfg.seed + i)
            state, history, stopped = _apply(step, state, cfg, name, dataset, original, device, report, stop)
        if stopped:
            return
        before += units[i - 1]
        yield _outcome(i, step, state, history, cfg, name, dataset, device, limit, baseline, arch)


def _outcome(i, step, state, history, cfg, name, dataset, device, limit, baseline: Metrics, arch) -> StepOutcome:
    from compression.pruning import sparsity
    artifact = write_artifact(_payload(state), state.payload, arch)
    simulated = state.sparse or state.payload == "quantized"
    metrics = measure(state.model, dataset, device=device, artifact=artifact, simulated=simulated, limit=limit)
    kernel = None
    if state.payload == "quantized" and not state.sparse:  # a sparse model keeps simulated speed: dense kernels
        from compression.quantization.kernels import with_int8_kernel
        metrics, report, reason = with_int8_kernel(state.model, dataset, state.quantized.config, device, metrics,
                                                   limit=limit)
        kernel = report or {"chosen": None, "reason": reason}
    final = i == len(cfg.steps)
    extra = {
        "pipeline": cfg.spec, "step": i, "steps": len(cfg.steps), "step_spec": step.spec(), "final": final,
        "artifact_format": state.payload, "sparsity": round(sparsity(state.model), 6),
        "compression_ratio": round(baseline.size_bytes / metrics.size_bytes, 3),
        "gain": _gain(state, step, kernel),
        "history": [{k: v for k, v in h.items() if isinstance(v, (int, float, str, bool)) or v is None}
                    for h in history],
    }
    if state.payload == "quantized":
        extra["coverage"] = state.quantized.coverage()
        extra["kernel"] = kernel
    config = {"pipeline": cfg.spec, "step": i, "steps": len(cfg.steps), "step_spec": step.spec(),
              "step_kind": step.kind, **{f"step_{k}": v for k, v in asdict(step).items()},
              "seed": cfg.seed, "subset": cfg.subset}
    result = Result(model=name, dataset=dataset.name, method="pipeline", config=config, device=device.type,
                    metrics=metrics, baseline=baseline, extra=extra)
    return StepOutcome(index=i, step=step, result=result, model=state.model, artifact=artifact, history=history)


def artifact_dir() -> Path:
    from compression.paths import home_dir
    return home_dir() / "artifacts" / "pipelines"


def run_and_store(name: str, dataset: Dataset, cfg: PipelineConfig, store, *, device: torch.device | str = "cpu",
                  limit: int | None = None, model: nn.Module | None = None, progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None, out_dir: Path | None = None) -> Iterator[tuple[StepOutcome, int]]:
    """run_pipeline, storing each step as a run whose parent is the previous step's run and whose
    artifact is written under the data folder. Yields (outcome, run id)."""
    import uuid
    out_dir = Path(out_dir) if out_dir is not None else artifact_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    tag, parent = uuid.uuid4().hex[:8], None
    for outcome in run_pipeline(name, dataset, cfg, device=device, limit=limit, model=model,
                                progress=progress, should_stop=should_stop):
        path = out_dir / f"{name}-{tag}-step{outcome.index}.cxp"
        path.write_bytes(outcome.artifact)
        outcome.result.extra["artifact"] = str(path)
        parent = store.add(outcome.result, parent_id=parent, artifact_path=str(path))
        outcome.result.extra["run_id"] = parent
        yield outcome, parent
