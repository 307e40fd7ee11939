"""Named models: a user's model of any architecture, kept under $COMPRESSION_HOME/models and then
used by name everywhere, like the zoo's (`python -m compression models add|list|remove`).

A named model is a card `<name>.json` beside a plain state_dict `<name>.pt`. The card records the
architecture reference it came from (`reference`), the recipe that rebuilds it (`builder`,
`builder_kwargs`: compression's own builders, torchvision, timm, hf, entry points), the dataset, the
input contract (mean, std, input size, channels, classes), the accuracy measured when it was added
with its 95 % interval, the SHA-256 of the file the user gave and of the kept checkpoint, the source
("uploaded", or "fine-tuned from published weights" with the recipe), and the date. Removing a named
model leaves the stored runs made with it (they keep their numbers and artifacts).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from compression import CompressionError

ProgressFn = Callable[[dict], None]
UPLOADED = "uploaded"
FINETUNED = "fine-tuned from published weights"


def check_new_name(name: str) -> None:
    from compression.models import MODELS_DIR, NAME_PATTERN
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise CompressionError(f"model name {name!r} must be 1-64 letters, digits, '_', '-' or '.' "
                               "(starting with a letter or digit)")
    if (MODELS_DIR / f"{name}.json").is_file():
        raise CompressionError(f"model name {name!r} is taken by the zoo; choose another")


def _write_atomically(folder: Path, name: str, blob: bytes) -> None:
    tmp = folder / f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"  # two sessions never share a temp file
    tmp.write_bytes(blob)
    os.replace(tmp, folder / name)


def add_named_model(name: str, reference: str, *, dataset: str | None = None, weights: bytes | str | Path | None = None,
                    filename: str | None = None, pretrained: bool = False, finetune_epochs: int = 0,
                    lr: float = 1e-3, subset: int | None = None, device: torch.device | str = "cpu",
                    limit: int | None = None, progress: ProgressFn | None = None,
                    should_stop: Callable[[], bool] | None = None, **options: Any) -> dict[str, Any]:
    """Evaluate `reference` (any architecture; with the user's `weights` file or bytes, or its
    published weights fine-tuned for the dataset's classes) and keep it as the named model `name`.

    `options`: normalize, mean, std, input_size (the contract the weights expect). `progress`
    gets {"stage", "epoch", "epochs", "val_accuracy", "seconds", "eta_s"} while fine-tuning and
    {"stage": "evaluating"} before the test images. Returns the card."""
    from compression.models import user_models_dir
    from compression.refs import parse, resolve
    check_new_name(name)
    if weights is not None and pretrained:
        raise CompressionError("give either a weights file or --pretrained, not both")
    if finetune_epochs and not pretrained and weights is None:
        raise CompressionError("--finetune-epochs starts from published weights: add --pretrained (or give --weights)")
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    upload, given_sha = None, None
    if isinstance(weights, (bytes, bytearray)):
        suffix = Path(filename or "weights.pt").suffix.lower() or ".pt"
        upload = folder / f".{name}.upload-{uuid.uuid4().hex[:8]}{suffix}"
        upload.write_bytes(bytes(weights))
        given_sha, filename, weights = hashlib.sha256(weights).hexdigest(), filename or f"weights{suffix}", upload
    try:
        if weights is not None:
            given_sha = given_sha or hashlib.sha256(Path(weights).read_bytes()).hexdigest()
            filename = filename or Path(weights).name
        base = parse(reference, weights=weights, **options)
        start = parse(parse(reference).text, **options)  # without weights: the architecture, its contract
        if pretrained:
            resolved = resolve(start, dataset, device=device)
            model = published_start(start, resolved, device)
        else:
            resolved = resolve(base, dataset, device=device)
            model = resolved.model
        recipe = None
        if finetune_epochs:
            model, recipe = _finetune(model, resolved, finetune_epochs, lr, subset, device, progress, should_stop)
        if progress is not None:
            progress({"stage": "evaluating"})
        card = _card(name, base, resolved, model, filename, given_sha, recipe, pretrained, device, limit)
    finally:
        if upload is not None:
            upload.unlink(missing_ok=True)
    from compression.models import state_dict_bytes
    blob = state_dict_bytes(model.cpu())
    card["checkpoint_sha256"] = hashlib.sha256(blob).hexdigest()
    _write_atomically(folder, f"{name}.pt", blob)
    _write_atomically(folder, f"{name}.json", (json.dumps(card, indent=2) + "\n").encode())
    return card


def published_start(ref, resolved, device) -> nn.Module:
    """The architecture with its published weights and a fresh classifier for the dataset's classes."""
    data = resolved.dataset
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if ref.kind == "torchvision":
            import torchvision.models as tvm

            from compression.torchvision_models import published_state_dict, replace_classifier
            net = tvm.get_model(ref.text.split(":", 1)[1], weights=None)
            net.load_state_dict(published_state_dict(ref.text))
            model = replace_classifier(net, data.num_classes)
        elif ref.kind == "timm":
            from compression.models.source_timm import published_model
            model = published_model(ref.text.split(":", 1)[1], resolved.architecture["kwargs"])
        else:
            raise CompressionError(f"--pretrained is for torchvision:<arch> and timm:<arch>, not {ref.text!r}")
    own = {k: tuple(v.shape) for k, v in resolved.model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if own != got:  # the fine-tuned model must load into the architecture its card names
        diff = sorted(set(own.items()) ^ set(got.items()))[:2]
        raise CompressionError(f"{ref.text}: the published model does not match the architecture built for "
                               f"{data.name} ({diff})")
    return model.to(device).eval()


def _finetune(model, resolved, epochs, lr, subset, device, progress, should_stop):
    """Fine-tune on the training split seen through the model's contract; progress with time left."""
    from compression.training import TrainConfig, fit
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=64, subset=subset, augment=True, schedule="cosine")
    start = time.perf_counter()

    def report(entry: dict) -> None:
        if progress is None:
            return
        done = entry["epoch"] - (1 if entry.get("partial") else 0)
        per_epoch = entry["seconds"] / max(1, entry["epoch"])
        progress({"stage": "fine-tuning", **entry, "eta_s": round(per_epoch * (entry["epochs"] - done), 1)})
    result = fit(model, resolved.dataset, cfg, device=device, progress=report, should_stop=should_stop)
    recipe = {"from": "published weights", "epochs": epochs, "epochs_done": len(result.history), "lr": lr,
              "batch_size": cfg.batch_size, "optimizer": cfg.optimizer, "schedule": cfg.schedule,
              "augment": cfg.augment, "subset": subset, "seed": cfg.seed,
              "seconds": round(time.perf_counter() - start, 1),
              "history": [{k: round(v, 5) if isinstance(v, float) else v for k, v in h.items()} for h in result.history]}
    return result.model.eval(), recipe


def _card(name, ref, resolved, model, filename, given_sha, recipe, pretrained, device, limit) -> dict[str, Any]:
    from compression.metrics import measure, wilson_interval
    from compression.models import state_dict_bytes
    data, contract = resolved.dataset, resolved.contract
    metrics = measure(model.to(device).eval(), data, device=device, artifact=state_dict_bytes(model), limit=limit)
    low, high = wilson_interval(metrics.accuracy, metrics.accuracy_n)
    arch = resolved.architecture
    source = FINETUNED if pretrained else UPLOADED
    described = (f"{ref.text} fine-tuned from its published weights for {data.name}" if pretrained
                 else f"Your weights ({filename}) for {ref.text}" if filename else f"{ref.text} as built")
    return {
        "name": name, "description": f"{described}.", "reference": ref.text, "architecture_reference": ref.text,
        "builder": arch["builder"], "builder_kwargs": arch.get("kwargs", {}), "dataset": data.name,
        "checkpoint": f"{name}.pt", "source": source, "base": ref.text, "uploaded_from": filename,
        "weights_sha256": given_sha,
        "input_contract": {**contract.to_json(), "source": contract.source},
        "recipe": recipe, "test_accuracy": metrics.accuracy, "accuracy_n": metrics.accuracy_n,
        "accuracy_interval": [round(low, 5), round(high, 5)], "params": metrics.params,
        "size_bytes": metrics.size_bytes, "macs": metrics.macs, "train_time_s": (recipe or {}).get("seconds"),
        "trained_on": str(torch.device(device)) if recipe else None,
        "added_at": dt.datetime.now().isoformat(timespec="seconds"),
    }


def named_models() -> list[dict[str, Any]]:
    """The cards of the models users added (not the zoo's), by name."""
    from compression.models import user_models_dir
    folder = user_models_dir()
    cards = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            cards.append(json.loads(path.read_text()))
        except ValueError:
            continue
    return cards


def remove_named_model(name: str) -> dict[str, Any]:
    """Delete a named model's card and checkpoint (stored runs keep their numbers and artifacts)."""
    from compression.models import MODELS_DIR, user_models_dir
    if (MODELS_DIR / f"{name}.json").is_file():
        raise CompressionError(f"{name!r} is a zoo model; only named models you added can be removed")
    folder = user_models_dir()
    card_path = folder / f"{name}.json"
    if not card_path.is_file():
        known = ", ".join(c.get("name", "?") for c in named_models()) or "none added"
        raise CompressionError(f"no named model {name!r} ({known})")
    card = json.loads(card_path.read_text())
    (folder / card.get("checkpoint", f"{name}.pt")).unlink(missing_ok=True)
    card_path.unlink()
    from compression import refs
    with refs._LOCK:  # a resolved copy of the removed model must not be served again
        for key in [k for k in refs._CACHE if k[0].text == name]:
            refs._CACHE.pop(key, None)
    return card
