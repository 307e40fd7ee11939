"""What a configuration costs before it is evaluated: the stored bytes, parameters and MACs of a
pipeline spec, from the compressed model itself rather than a formula.

`CostModel.predict(spec)` applies the spec's steps as the pipeline would (same code, same seeds:
compression.pipeline.run_pipeline) with every training part left out (fine-tuning epochs, QAT,
finetune steps), writes the artifact's bytes in memory and counts the parameters and MACs of the
result. Nothing is evaluated on test images and nothing is timed. For a one-shot configuration the
prediction is the artifact the run will write, byte for byte (`exact`); when training was left out
the shapes, sparsity and file layout are the same and only the trained weights' codes differ, so
the bytes are an estimate (tests/test_costs.py states the tolerance). Latency cannot be predicted.

`accuracy(spec)` ranks configurations before any is evaluated: the untrained configuration's
top-1 on the first PROXY_IMAGES validation images (carved from the training set, never the test
split). It is a ranking, not a result: no page or summary reports it as the configuration's accuracy.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

PREDICTABLE = ("size_bytes", "macs", "params")   # costs known without evaluation
PROXY_IMAGES = 1000
MODELS_MEMORY = 512 * 2 ** 20                    # models kept (pruned ones reused by each quantization)


@dataclass(frozen=True)
class Predicted:
    size_bytes: int          # the artifact's length, as run_pipeline would write it
    params: int
    nonzero_params: int
    macs: int
    exact: bool              # True: no training was left out, the bytes are the file's own
    seconds: float = 0.0     # what the prediction took

    def cost(self, objective: str) -> float | None:
        return float(getattr(self, objective)) if objective in PREDICTABLE else None


def untrained(step: Any) -> tuple[Any, bool] | None:
    """(the step without its training, whether nothing that changes the weights was left out),
    None to leave the step out (finetune), or LookupError when its cost cannot be predicted."""
    from compression.pipeline.spec import step_kind
    kind = step_kind(step)
    if kind == "prune":
        # pruning to the final ratio in one cycle gives the same shapes and zero count as the ramp
        return dataclasses.replace(step, epochs=0, steps=1), step.epochs == 0 and step.steps == 1
    if kind == "finetune":
        return None
    if kind == "quantize":
        # centroid training keeps the codes (and so the file's size); QAT changes the weights coded
        return dataclasses.replace(step, qat_epochs=0, centroid_epochs=0), step.qat_epochs == 0
    raise LookupError(f"the cost of a {kind} step is not predicted (it trains or changes the layers)")


class CostModel:
    """Predictions for one resolved model reference on one device, cached by spec."""

    def __init__(self, resolved: Any, device: torch.device | str = "cpu", *, seed: int = 0,
                 subset: int | None = None):
        self.resolved, self.device, self.seed, self.subset = resolved, torch.device(device), seed, subset
        self._predicted: dict[str, Predicted | None] = {}
        self._accuracy: dict[str, float] = {}
        self._models: OrderedDict[str, tuple[nn.Module, Any, dict, Any]] = OrderedDict()
        weights = sum(p.numel() * p.element_size() for p in resolved.model.parameters())
        self._kept = max(4, min(128, MODELS_MEMORY // max(1, 2 * weights)))  # a model, and its file's payload

    def predict(self, spec: str) -> Predicted | None:
        """The costs of `spec`, or None when one of its steps cannot be predicted."""
        if spec not in self._predicted:
            try:
                self._predicted[spec] = self._predict(spec)
            except LookupError:
                self._predicted[spec] = None
        return self._predicted[spec]

    def base(self) -> Predicted:
        """The uncompressed model's costs (its dense file)."""
        from compression.artifact import write_artifact
        from compression.metrics import count_macs, count_nonzero, count_params
        from compression.models import state_dict_bytes
        if "" not in self._predicted:
            model = self.resolved.model
            size = len(write_artifact(state_dict_bytes(model), "dense", self.resolved.architecture))
            self._predicted[""] = Predicted(size, count_params(model), count_nonzero(model),
                                            int(count_macs(model, self.resolved.dataset.input_shape, self.device)), True)
        return self._predicted[""]

    def accuracy(self, spec: str) -> float:
        """Top-1 of the untrained configuration on the first PROXY_IMAGES validation images."""
        if spec not in self._accuracy:
            from compression.training import accuracy_on
            model = self._apply(spec)[0]
            n = min(PROXY_IMAGES, len(self.resolved.dataset.val))
            self._accuracy[spec] = accuracy_on(model, self.resolved.dataset, "val", self.device, limit=n)
        return self._accuracy[spec]

    def _predict(self, spec: str) -> Predicted:
        from compression.artifact import write_artifact
        from compression.metrics import count_macs, count_nonzero, count_params
        from compression.models import state_dict_bytes
        start = time.perf_counter()
        model, out, architecture, exact = self._apply(spec)
        payload = out.payload if out.payload is not None else state_dict_bytes(out.model)
        size = len(write_artifact(payload, out.kind, architecture))
        return Predicted(size, count_params(model), count_nonzero(model),
                         int(out.macs if out.macs is not None else count_macs(model, self.resolved.dataset.input_shape,
                                                                              self.device)),
                         exact, round(time.perf_counter() - start, 4))

    def _apply(self, spec: str) -> tuple[nn.Module, Any, Any, bool]:
        """The untrained pipeline's model, its last step's output, the architecture its file names,
        and whether the bytes are exact. Steps are applied under run_pipeline's seeds (seed + i)."""
        from compression.methods import Context
        from compression.pipeline import parse_steps
        from compression.pipeline.spec import method_of, split_steps
        if spec in self._models:
            self._models.move_to_end(spec)
            return self._models[spec]
        steps, parts = parse_steps(spec), split_steps(spec)
        current, state, architecture, exact, out = self.resolved.model, {}, self.resolved.architecture, True, None
        prefix_done = 0
        for k in range(len(steps) - 1, 0, -1):  # start from the longest prefix already applied
            prefix = ",".join(parts[:k])
            if prefix in self._models:
                current, out, architecture, exact = self._models[prefix]
                state, prefix_done = out.state, k
                break
        for i, step in enumerate(steps[prefix_done:], start=prefix_done + 1):
            plain = untrained(step)
            if plain is None:
                exact = False
                continue
            run_step, same_bytes = plain
            exact = exact and same_bytes
            run_step = dataclasses.replace(run_step, seed=self.seed) if self.seed and hasattr(run_step, "seed") else run_step
            ctx = Context(self.resolved, self.device, state=state, seed=self.seed, subset=self.subset,
                          options={"kernel": False})
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + i)
                out = method_of(step).apply(current, run_step, ctx)
            architecture = out.architecture or architecture
            current, state = out.model, out.state
            if i < len(steps):
                self._keep(",".join(parts[:i]), (current, out, architecture, exact))
        if out is None:  # only finetune steps: the model as it is
            from compression.methods import Compressed
            out = Compressed(current)
        entry = (current, out, architecture, exact)
        self._keep(spec, entry)
        return entry

    def _keep(self, key: str, entry: tuple) -> None:
        self._models[key] = entry
        self._models.move_to_end(key)
        while len(self._models) > self._kept:
            self._models.popitem(last=False)
