"""python -m compression quantize --model NAME --bits B [--method M] [--activation-bits A]
[--granularity G] [--symmetric/--asymmetric] [--qat-epochs N] [--seed S] [--sweep-bits 2,3,4] [--json]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compression import CompressionError
from compression.cli import add_common, add_model, int_range, list_of
from compression.device import get_device, heavy_job, parse_device
from compression.quantization.config import (BACKENDS, GRANULARITIES, METHODS, WEIGHT_BITS, QuantConfig)


def _bits(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value not in WEIGHT_BITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not an allowed bit width: {', '.join(map(str, WEIGHT_BITS))}")
    return value


def _activation_bits(text: str) -> int | None:
    if text.lower() in ("none", "0", "32"):
        return None
    if text not in ("8", "4"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an activation bit width: none, 8 or 4")
    return int(text)


def _layer_bits(text: str) -> tuple[str, int]:
    name, sep, bits = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not LAYER=BITS (e.g. 0=4)")
    return name.strip(), _bits(bits.strip())


def register(subs) -> None:
    p = subs.add_parser("quantize", help="store a zoo model's weights (and activations) with fewer bits")
    add_model(p)
    p.add_argument("--bits", type=_bits, default=8, help="weight bits: 1-8, or 16/32 (float references)")
    p.add_argument("--method", choices=METHODS, default="uniform")
    p.add_argument("--activation-bits", type=_activation_bits, default=None, help="none (default), 8 or 4")
    p.add_argument("--granularity", choices=GRANULARITIES, default="channel")
    p.add_argument("--symmetric", dest="symmetric", action="store_true", default=True)
    p.add_argument("--asymmetric", dest="symmetric", action="store_false")
    p.add_argument("--calibration-size", type=int_range(1, 5000), default=512,
                   help="validation images for activation ranges and the int8 kernel")
    p.add_argument("--qat-epochs", type=int_range(0, 50), default=0, help="quantization-aware fine-tuning epochs")
    p.add_argument("--qat-subset", type=int_range(1), default=None, help="fine-tune on the first N training images")
    p.add_argument("--qat-lr", type=float, default=1e-4)
    p.add_argument("--keep-zeros", action="store_true", help="clustering: keep exact zeros, store their positions")
    p.add_argument("--layer-bits", type=list_of(_layer_bits), default=None,
                   help="per-layer bits, e.g. 0=4,3=8 (32 keeps a layer float)")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="int8 kernel (auto: fastest by measurement)")
    p.add_argument("--seed", type=int_range(0), default=0)
    p.add_argument("--sweep-bits", type=list_of(_bits), default=None, help="run once per bit width, e.g. 2,3,4,5,6,7,8")
    p.add_argument("--save", default=None, help="write the packed artifact to this file (single run)")
    add_common(p)
    p.set_defaults(run=run)


def config_from_args(args, bits: int) -> QuantConfig:
    return QuantConfig(method=args.method, bits=bits, granularity=args.granularity, symmetric=args.symmetric,
                       activation_bits=args.activation_bits, calibration_size=args.calibration_size,
                       qat_epochs=args.qat_epochs, qat_subset=args.qat_subset, qat_lr=args.qat_lr, seed=args.seed,
                       layer_bits=dict(args.layer_bits or []), keep_zeros=args.keep_zeros, backend=args.backend)


def run(args):
    """Each bit width is a sweep job (compression.sweep) on the configured executor (--cluster),
    stored once with its artifact file unless --no-store."""
    from compression.quantization.experiments import sweep_jobs
    from compression.sweep import default_executor, run_jobs
    from compression.training import tick_sink

    device = parse_device(args.device) if args.device else get_device()
    configs = [config_from_args(args, b) for b in (args.sweep_bits or [args.bits])]  # bad values fail first
    if args.save and len(configs) > 1:
        raise CompressionError("--save writes one artifact; drop --sweep-bits or --save")

    def progress(entry):  # QAT epochs, when the jobs run in this process
        if "epoch" in entry:
            sys.stderr.write(f"{args.model}: QAT epoch {entry['epoch']}/{entry['epochs']} loss {entry['loss']:.4f} "
                             f"val {entry['val_accuracy'] * 100:.2f}% (quantized)\n")

    def save(point):  # --save: written before the run is stored, so that the stored run names it
        if args.save:
            Path(args.save).write_bytes(point.result.artifact)
            point.result.result.extra["artifact_path"] = str(args.save)

    jobs = sweep_jobs(args.model, configs, dataset=args.dataset, device=device, limit=args.limit)
    what = configs[0].label() if len(configs) == 1 else f"{len(configs)} bit widths"
    def stage(t):  # the int8 kernel search, naming each candidate, when the jobs run in this process
        if t["phase"].startswith("int8 kernel search"):
            sys.stderr.write(f"{args.model}: [{t['done']}/{t['total']}] {t['phase']}\n")

    with heavy_job(f"quantize {args.model} {what}", device), tick_sink(stage):
        for point in run_jobs(jobs, executor=default_executor(), store=not args.no_store, job_progress=progress,
                              prepare=save):
            if not point.ok:
                raise CompressionError(point.error)
            yield point.result.result
