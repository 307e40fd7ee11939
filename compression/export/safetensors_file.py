"""safetensors state_dict + JSON sidecar: the weights as a plain, safe tensor file, the sidecar with
the architecture reference, the layer shapes that differ from the builder's, the input contract and
the snippet (compression.export.snippet) that rebuilds the model and loads the file. The header's
metadata carries the input contract too, so the .safetensors alone still says what it expects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from compression import CompressionError
from compression.export.formats import ExportFormat, Opened, register_format
from compression.export.notes import activation_ranges, exit_info, metadata, run_info
from compression.export.snippet import NEEDS, changed_shapes, make_snippet
from compression.export.source import Source


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def sidecar(source: Source, path: Path) -> dict:
    """What the JSON beside the file says (the snippet included)."""
    code, kind = make_snippet(source.model, source.architecture, path.name, source.contract)
    out = {"file": path.name, "format": "safetensors", "input_contract": source.contract.to_json(),
           "architecture": source.architecture, "rebuild": kind, "needs": NEEDS[kind],
           "changed_shapes": {k: {"file": f, "builder": b}
                              for k, (f, b) in changed_shapes(source.model, source.architecture).items()},
           "run": run_info(source, "safetensors"), "snippet": code}
    acts = activation_ranges(source.model)
    if acts:
        out["activation_quant"] = acts
    exits = exit_info(source)
    if exits:
        out["exit_rule"] = exits
        out["exit_note"] = "model(x) is the full network; model.forward_all(x) gives every exit's logits"
    return out


def write(source: Source, path: Path) -> dict:
    from safetensors.torch import save_file
    if source.architecture is None and make_snippet(source.model, None, path.name, source.contract)[1] != "torch":
        raise CompressionError("this artifact records no architecture (written before the container), so no "
                               "snippet can rebuild it: export onnx or pt2")
    state = {k: v.detach().cpu().contiguous().clone() for k, v in source.model.state_dict().items()}
    meta = metadata(source, "safetensors")
    side = sidecar(source, path)
    meta["architecture"] = json.dumps(source.architecture)
    meta["sidecar"] = sidecar_path(path).name
    save_file(state, str(path), metadata=meta)
    sidecar_path(path).write_text(json.dumps(side, indent=1, default=str) + "\n", encoding="utf-8")
    return {"sidecar": str(sidecar_path(path)), "rebuild": side["rebuild"], "snippet": side["snippet"]}


def rebuild_from_snippet(path: Path, source: Source) -> torch.nn.Module:
    """Run the snippet the sidecar holds and the page shows, as a deployer would, on the file at
    `path` (its file name replaced by the full path). The snippet is made again from the run (the
    same text the sidecar got), so no code is ever read back from disk."""
    code, _ = make_snippet(source.model, source.architecture, path.name, source.contract)
    code = code.replace(repr(path.name), repr(str(path)), 1)
    namespace: dict = {"__name__": "snippet"}
    exec(compile(code, f"<{path.name} snippet>", "exec"), namespace)  # our generated snippet (see above)
    return namespace["model"]


def open_file(path: Path, source: Source) -> Opened:
    model = rebuild_from_snippet(path, source)
    exits = source.exits > 1

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            t = torch.from_numpy(x)
            outs = model.forward_all(t) if exits else [model(t)]
        return [o.numpy() for o in outs]

    def probe(x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        found: list[tuple[str, np.ndarray]] = []
        handles = [m.register_forward_hook(lambda mod, args, out, name=name: found.append((name, out.detach().numpy().copy()))
                                           if isinstance(out, torch.Tensor) else None)
                   for name, m in model.named_modules() if name]
        try:
            run(x)
        finally:
            for h in handles:
                h.remove()
        return found
    return Opened(run, probe)


FORMAT = register_format(ExportFormat(
    "safetensors", ".safetensors", "safetensors weights + JSON sidecar with the snippet that rebuilds the model",
    "a fresh rebuild from the snippet + safetensors", write, open_file,
    extra_files=lambda path: [sidecar_path(path)]))
