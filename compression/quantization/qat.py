"""Quantization-aware fine-tuning: train the float ("latent") weights while the forward pass uses
their quantized values; gradients pass the rounding unchanged (straight-through estimator,
Bengio et al. 2013). The final weights are then quantized for real by `quantize`."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from compression.data import Dataset
from compression.quantization.activations import attach_activation_quant, calibrate
from compression.quantization.config import QuantConfig
from compression.training import TrainConfig, fit


def qat_finetune(model: nn.Module, config: QuantConfig, dataset: Dataset, *, device: torch.device | str = "cpu",
                 progress: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> tuple[nn.Module, list[dict], bool]:
    """(fine-tuned float model, per-epoch history, stopped). `model` is not modified."""
    from compression.quantization.core import (encode_weight, qat_loss, quantizable_layers, quantized_forward)

    device = torch.device(device)
    model = model.to(device)
    encoded = {}
    for name, module in quantizable_layers(model):
        bits = config.bits_for(name)
        if bits < 16:  # the clip ratios / codebook the STE forward re-applies each step
            encoded[f"{name}.weight" if name else "weight"] = encode_weight(
                module.weight.detach().cpu().numpy(), bits, config)
    if config.activation_bits:  # ranges of the quantized-weight model, fixed during fine-tuning
        probe = _with_weights(model, encoded)
        ranges = calibrate(probe, dataset, [n for n, _ in quantizable_layers(model)
                                            if f"{n}.weight" in encoded or (not n and "weight" in encoded)],
                           config.activation_bits, images=config.calibration_size, device=device)
        model = _copy_with_hooks(model, ranges)

    @torch.inference_mode()
    def val_accuracy(m: nn.Module) -> float:
        m.eval()
        correct = total = 0
        for x, y in dataset.batches("val", 1000, device=device):
            correct += int((quantized_forward(m, x, encoded, config).argmax(1) == y).sum())
            total += len(y)
        m.train()
        return correct / max(1, total)

    cfg = TrainConfig(epochs=config.qat_epochs, lr=config.qat_lr, batch_size=128, optimizer="adam",
                      schedule="cosine", seed=config.seed, subset=config.qat_subset, eval_split="val")
    result = fit(model, dataset, cfg, device=device, loss_fn=qat_loss(encoded, config), progress=progress,
                 should_stop=should_stop, evaluate=val_accuracy)
    return result.model, result.history, result.stopped


def _with_weights(model: nn.Module, encoded) -> nn.Module:
    from compression.models import clone_model, with_own_metadata
    probe = clone_model(model)
    state = probe.state_dict()
    for key, enc in encoded.items():
        state[key] = torch.from_numpy(enc.decode()).to(state[key].device)
    probe.load_state_dict(with_own_metadata(probe, state))
    return probe.eval()


def _copy_with_hooks(model: nn.Module, ranges) -> nn.Module:
    from compression.models import clone_model, with_own_metadata
    out = clone_model(model)
    attach_activation_quant(out, ranges)
    return out
