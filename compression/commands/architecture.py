"""python -m compression architecture --model NAME --convert {depthwise,low-rank}[,...] [--rank K | --energy E]
   [--recover-epochs N] [--recover {finetune,distill}] [--match-steps S] [--seed S] [--json]

Prints the converted model's result (before any training) and, with --recover-epochs, the
recovered one; both go to the run store with their per-layer table."""

import argparse

from compression.cli import add_common, add_model, float_range, int_range, list_of


def _conversion(text: str) -> str:
    from compression.architecture import CONVERSIONS
    if text not in CONVERSIONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a conversion: expected {' or '.join(CONVERSIONS)}")
    return text


def register(subs) -> None:
    p = subs.add_parser("architecture", help="depthwise-separable convs / low-rank Linear layers, then recover")
    add_model(p)
    p.add_argument("--convert", required=True, type=list_of(_conversion),
                   help="depthwise, low-rank, or both: depthwise,low-rank")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--rank", type=int_range(1), default=None, help="low-rank: rank K of every Linear layer")
    how.add_argument("--energy", type=float_range(0, 1, lo_open=True), default=None,
                     help="low-rank: per layer the smallest rank keeping this share of sum(s^2), in (0, 1]")
    p.add_argument("--min-in-channels", type=int_range(1), default=1,
                   help="depthwise: keep convs with fewer input channels (2 keeps a gray-image stem)")
    p.add_argument("--recover-epochs", type=int_range(0, 200), default=0,
                   help="epochs of recovery training after the conversion (0: none)")
    p.add_argument("--recover", choices=("finetune", "distill"), default="finetune",
                   help="fine-tune on the labels, or distill from the original model")
    p.add_argument("--match-steps", type=int_range(0, 100_000), default=0,
                   help="before training: Adam steps per new layer fitting the original layer's output (0: none)")
    p.add_argument("--match-images", type=int_range(1, 100_000), default=2048,
                   help="training images the layer matching draws from")
    p.add_argument("--lr", type=float_range(0, 10, lo_open=True), default=2e-3, help="recovery peak learning rate")
    p.add_argument("--subset", type=int_range(1), default=None, help="recover on the first N training images")
    p.add_argument("--no-augment", action="store_true", help="recover without random shifts and flips")
    p.add_argument("--temperature", type=float_range(0, 100, lo_open=True), default=4.0, help="distill: T")
    p.add_argument("--alpha", type=float_range(0, 1), default=0.9, help="distill: weight of the soft term")
    p.add_argument("--seed", type=int_range(0), default=0, help="initialization of new layers and recovery data order")
    add_common(p)
    p.set_defaults(run=run)


def run(args):
    import sys

    from compression.architecture import ArchitectureConfig, RecoveryConfig, architecture_results
    from compression.device import get_device, heavy_job, parse_device
    from compression.evaluate import dataset_for

    cfg = ArchitectureConfig(convert=tuple(dict.fromkeys(args.convert)), rank=args.rank, energy=args.energy,
                             min_in_channels=args.min_in_channels, seed=args.seed)
    recovery = (RecoveryConfig(method=args.recover, epochs=args.recover_epochs, lr=args.lr, subset=args.subset,
                               augment=not args.no_augment, temperature=args.temperature,
                               alpha=args.alpha, match_steps=args.match_steps,
                               match_images=args.match_images, seed=args.seed)
                if args.recover_epochs or args.match_steps else None)
    device = parse_device(args.device) if args.device else get_device()
    data = dataset_for(args.model, args.dataset)

    def progress(entry):
        if entry.get("stage") == "match":
            sys.stderr.write(f"{args.model}: matched layer {entry['layer']} ({entry['step']}/{entry['steps']}): "
                             f"relative error {entry['relative_error']:.3f}\n")
            return
        if entry.get("stage") == "matched":
            sys.stderr.write(f"{args.model}: after layer matching val {entry['val_accuracy'] * 100:.2f}%\n")
            return
        sys.stderr.write(f"{args.model}: {args.recover} epoch {entry['epoch']}/{entry['epochs']} "
                         f"loss {entry['loss']:.4f} val {entry['val_accuracy'] * 100:.2f}% ({entry['seconds']:.0f} s)\n")
    with heavy_job(f"architecture {args.model}", device):
        yield from architecture_results(args.model, cfg, recovery, dataset=data, device=device,
                                        limit=args.limit, progress=progress)
