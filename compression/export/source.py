"""What an export starts from: a stored run (or a page's preview) with its artifact loaded, its test
images, its stored predictions and the input contract the exported file will carry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch.nn as nn

from compression import CompressionError


def contract_of(run: Mapping[str, Any], dataset: Any = None):
    """The input contract a stored run's model expects (compression.contract.InputContract).

    The one its model recorded (extra.model_source.contract: the zoo card's, torchvision/timm/HF
    metadata, or what the user stated); for runs stored before models carried their contract, the
    normalization, size and classes of the dataset it was measured on, as they were then."""
    from compression.contract import InputContract
    from compression.data import load_dataset
    recorded = ((run.get("extra") or {}).get("model_source") or {}).get("contract")
    if isinstance(recorded, dict):
        return InputContract.from_json(recorded, source=(run.get("extra") or {}).get("model_source", {}).get(
            "contract_source") or "run")
    return InputContract.of_dataset(dataset if dataset is not None else load_dataset(run["dataset"]))


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text)).strip("._") or "model"


def download_name(run: Mapping[str, Any], suffix: str = ".cxp") -> str:
    """The one file name a run's downloads have everywhere: `<name or model>-<method>-<id>` plus the
    format's ending ("preview" for a result not stored yet)."""
    run_id = run.get("id", run.get("run_id"))
    stem = f"{_safe(run.get('name') or run['model'])[:48]}-{_safe(run['method'])}-{run_id if run_id is not None else 'preview'}"
    return stem + suffix


@dataclass
class Source:
    """A run ready to export."""
    run: dict[str, Any]             # id (None for a preview), name, model, dataset, method, config, accuracy,
    #                                 accuracy_n, extra (dict)
    blob: bytes                     # the artifact file (compression.artifact)
    model: nn.Module                # the artifact loaded: CPU, eval mode
    architecture: dict[str, Any] | None  # the rebuild recipe its header records
    payload: str                    # dense | sparse | quantized
    dataset: Any                    # compression.data.Dataset the run was measured on
    contract: Any                   # compression.contract.InputContract
    predictions: Any                # compression.predictions.Predictions stored with the run, or None

    @property
    def run_id(self) -> int | None:
        return self.run.get("id")

    @property
    def images(self) -> int:
        """The run's test images: the first n of the test split, n as its predictions (or accuracy) say."""
        return self.predictions.n if self.predictions is not None else int(self.run["accuracy_n"])

    @property
    def exits(self) -> int:
        """Number of exits (1: a plain classifier)."""
        from compression.model_kinds import is_multi_exit
        return int(self.model.num_exits) if is_multi_exit(self.model) else 1

    @property
    def exit_rule(self) -> dict[str, Any] | None:
        """{"criterion", "thresholds" (one per early exit)} for an early-exit run; None otherwise."""
        if self.exits == 1 or self.run["method"] != "early-exit":
            return None
        cfg = self.run.get("config") or {}
        taus = list(cfg.get("thresholds") or [])
        taus = taus * (self.exits - 1) if len(taus) == 1 else taus
        return {"criterion": cfg.get("criterion", "confidence"), "thresholds": [float(t) for t in taus]}

    def stem(self) -> str:
        return download_name(self.run, "")

    def label(self) -> str:
        what = f"run {self.run_id}" if self.run_id is not None else "preview"
        return f"{what} ({self.run['method']} on {self.run['model']})"


def _normal(run: Mapping[str, Any]) -> dict[str, Any]:
    """A stored run (extra nested) or a page's flat result dict, as one shape."""
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {k: v for k, v in run.items()}
    run_id = run.get("id", run.get("run_id"))
    return {"id": run_id, "name": run.get("name"), "model": run["model"], "dataset": run["dataset"],
            "method": run["method"], "config": dict(run.get("config") or {}), "accuracy": float(run["accuracy"]),
            "accuracy_n": int(run["accuracy_n"]), "extra": extra}


def source_of(run: Mapping[str, Any], blob: bytes, predictions: Any = None) -> Source:
    """A Source from a run (stored or a page's result) and its artifact bytes."""
    from compression.artifact import header_of, load_artifact, payload_kind
    from compression.data import load_dataset
    run = _normal(run)
    header = header_of(blob)
    model = load_artifact(blob).cpu().eval()
    from compression.contract import model_view
    dataset = load_dataset(run["dataset"])
    dataset = model_view(dataset, contract_of(run, dataset))  # the re-check feeds what the model expects
    return Source(run, blob, model, header["architecture"] if header else None,
                  header["payload"] if header else payload_kind(blob), dataset, contract_of(run, dataset), predictions)


def source_of_run(run_id: int, *, store: Any = None) -> Source:
    """A stored run's Source; one-line errors for a run that is not there or whose file is gone."""
    from compression.run_labels import artifact_file
    from compression.store import RunStore
    store = store or RunStore()
    run = store.get(int(run_id))
    if run is None:
        raise CompressionError(f"no run {run_id} in the run store (python -m compression runs lists them)")
    if not run.get("artifact_path"):
        raise CompressionError(f"run {run_id}: no artifact file was kept for it, so there is no model to export")
    path = artifact_file(run["artifact_path"])
    if path is None:
        raise CompressionError(f"run {run_id}: its artifact file {run['artifact_path']!r} is gone (deleted or moved), "
                               "so there is no model to export")
    return source_of(run, path.read_bytes(), store.predictions(int(run_id)))


def source_of_preview(preview: Mapping[str, Any]) -> Source:
    """A page's preview (compression.previews): measured, shown, not stored yet."""
    from compression.predictions import Predictions
    record = preview["record"]
    run = {**record, **record["metrics"], "extra": record.get("extra") or {}, "id": None}
    preds = Predictions.from_bytes(record["predictions"]) if record.get("predictions") else None
    return source_of(run, bytes(preview["artifact"]), preds)


def exports_dir(run_id: int | None, blob: bytes | None = None) -> Path:
    """Where the app keeps a run's exported files and their re-check reports (a preview's: by a
    digest of its artifact bytes)."""
    import hashlib

    from compression.paths import home_dir
    key = f"run-{run_id}" if run_id is not None else f"preview-{hashlib.sha256(blob or b'').hexdigest()[:16]}"
    return home_dir() / "exports" / key
