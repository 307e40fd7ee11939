"""run:<id>: a stored run's artifact as a model reference, so one run continues from another
(`quantize --model run:42` quantizes what run 42 pruned). Its input contract is the one the
artifact's header recorded; its dataset the run's; runs made from it record it as their parent
(the explorer draws the chain)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn as nn

from compression import CompressionError
from compression.contract import InputContract
from compression.data import Dataset
from compression.refs import RUN, ModelRef, Source, register_source


def stored_run(ref: ModelRef | str) -> dict[str, Any]:
    """The run a `run:<id>` reference names, with an artifact file that exists (or one line why not)."""
    from compression.store import RunStore
    text = ref.text if isinstance(ref, ModelRef) else ref
    key = text[len(RUN):]
    if not key.isdigit():
        raise CompressionError(f"run reference {text!r} must be run:<id> with the id of a stored run, e.g. run:42")
    run = RunStore().get(int(key))
    if run is None:
        raise CompressionError(f"no stored run {key} (see `python -m compression runs`)")
    path = run.get("artifact_path")
    if not path or not Path(path).is_file():
        raise CompressionError(f"run {key} kept no artifact file ({path or 'none recorded'}); it cannot be continued")
    return run


def header_contract(architecture: dict[str, Any]) -> dict[str, Any] | None:
    """The contract an artifact's architecture recipe records (attached exits keep it in their base)."""
    while isinstance(architecture, dict):
        if isinstance(architecture.get("contract"), dict):
            return architecture["contract"]
        architecture = (architecture.get("kwargs") or {}).get("base")
    return None


def _header(ref: ModelRef) -> dict[str, Any]:
    from compression.artifact import header_of
    run = stored_run(ref)
    header = header_of(Path(run["artifact_path"]).read_bytes())
    if header is None:
        raise CompressionError(f"run {ref.text[len(RUN):]}'s file was written before the artifact container; "
                               "it records no architecture to continue from")
    return header


class RunSource(Source):
    kind = "run"
    prefix = RUN

    def check(self, ref: ModelRef) -> None:
        if ref.weights:
            raise CompressionError(f"{ref.text} is a stored run with its own weights; --weights does not apply")
        stored_run(ref)

    def default_dataset(self, ref: ModelRef) -> str | None:
        return stored_run(ref)["dataset"]

    def check_input(self, ref: ModelRef, data: Dataset) -> None:
        contract = header_contract(_header(ref)["architecture"])
        if contract and (int(contract["channels"]) != data.input_shape[0] or len(contract["classes"]) != data.num_classes):
            raise CompressionError(f"{ref.text} takes {contract['channels']}-channel images and "
                                   f"{len(contract['classes'])} classes; dataset {data.name!r} has "
                                   f"{data.input_shape[0]} channel(s) and {data.num_classes} classes")

    def contract(self, ref: ModelRef, data: Dataset) -> InputContract:
        contract = header_contract(_header(ref)["architecture"])
        if contract is None:  # an artifact from before models carried their contract: the dataset's, as then
            return InputContract.of_dataset(data, source=f"{ref.text} (dataset's)")
        return InputContract.from_json({**contract, "classes": list(data.classes)},
                                       source=f"{ref.text}: {contract.get('source', 'artifact')}")

    def architecture(self, ref: ModelRef, data: Dataset, contract: InputContract) -> dict[str, Any]:
        recipe = dict(_header(ref)["architecture"])
        recipe.pop("contract", None)
        return recipe

    def build(self, ref: ModelRef, data: Dataset, contract: InputContract) -> nn.Module:
        from compression.artifact import load_artifact
        return load_artifact(Path(stored_run(ref)["artifact_path"]).read_bytes())

    def references(self) -> list[str]:
        return []


register_source(RunSource())
