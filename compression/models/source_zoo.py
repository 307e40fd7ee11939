"""Zoo models (assets/models/) and named models (kept under $COMPRESSION_HOME/models by `models add`):
both are a model card beside a state_dict; the reference is the bare name."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from compression import CompressionError
from compression.contract import InputContract
from compression.data import Dataset
from compression.refs import ModelRef, Source, register_source


class ZooSource(Source):
    kind = "zoo"
    prefix = ""

    def check(self, ref: ModelRef) -> None:
        from compression.models import model_card
        model_card(ref.text)  # unknown names fail here, listing the zoo

    def default_dataset(self, ref: ModelRef) -> str | None:
        from compression.models import model_card
        return model_card(ref.text)["dataset"]

    def check_input(self, ref: ModelRef, data: Dataset) -> None:
        from compression.evaluate import check_compatible
        from compression.models import model_card
        card = model_card(ref.text)
        if "input_contract" in card:  # a named model: the view resizes, so channels and classes must fit
            contract = card["input_contract"]
            if data.input_shape[0] != int(contract["channels"]) or data.num_classes != len(contract["classes"]):
                raise CompressionError(
                    f"model {ref.text!r} takes {contract['channels']}-channel images and {len(contract['classes'])} "
                    f"classes; dataset {data.name!r} has {data.input_shape[0]} channel(s) and {data.num_classes} classes")
        elif not ref.input_size:
            check_compatible(ref.text, data)

    def contract(self, ref: ModelRef, data: Dataset) -> InputContract:
        from compression.models import expected_input, model_card
        card = model_card(ref.text)
        if "input_contract" in card:
            return InputContract.from_json({**card["input_contract"], "classes": list(data.classes)},
                                           source=card.get("input_contract", {}).get("source") or "model card")
        c, h, w, _ = expected_input(ref.text)
        trained_on = data
        if card.get("dataset") and card["dataset"] != data.name:  # as trained: its own dataset's statistics
            from compression.data import load_dataset
            try:
                trained_on = load_dataset(card["dataset"])
            except CompressionError:
                trained_on = data
        return InputContract(tuple(trained_on.mean), tuple(trained_on.std), (h, w), c, tuple(data.classes),
                             "zoo card")

    def architecture(self, ref: ModelRef, data: Dataset, contract: InputContract) -> dict[str, Any]:
        from compression.models import model_card
        card = model_card(ref.text)
        return {"name": ref.text, "builder": card["builder"], "kwargs": card.get("builder_kwargs", {})}

    def build(self, ref: ModelRef, data: Dataset, contract: InputContract) -> nn.Module:
        from compression.models import build_from_card, load_pretrained
        return build_from_card(ref.text) if ref.weights else load_pretrained(ref.text)


register_source(ZooSource())
