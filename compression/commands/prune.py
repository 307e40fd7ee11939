"""python -m compression prune --model NAME --method {unstructured,structured} --ratio R
    [--scope {layer,global}] [--importance {l1,l2,taylor}] [--finetune-epochs N] [--steps K]
    [--finetune-split {val,train}] [--lr LR] [--seed S] [--sweep R1,R2,...] [--out DIR] --json

One measured result per ratio (each pruned from the unpruned model)."""

from pathlib import Path

from compression.cli import add_common, float_range, int_range, list_of
from compression.device import get_device, heavy_job, parse_device
from compression.evaluate import dataset_for
from compression.pruning import IMPORTANCES, METHODS, SCOPES, SPLITS, FinetuneConfig, PruneConfig, sweep

RATIO = float_range(0, 1, hi_open=True)


def register(subs) -> None:
    p = subs.add_parser("prune", help="prune weights or channels, optionally fine-tune, and measure")
    p.add_argument("--model", required=True, help="zoo model name (see `zoo list`)")
    p.add_argument("--method", choices=METHODS, default="unstructured",
                   help="unstructured: single weights (sparse file); structured: whole channels/neurons")
    ratio = p.add_mutually_exclusive_group(required=True)
    ratio.add_argument("--ratio", type=RATIO, help="fraction removed, in [0, 1)")
    ratio.add_argument("--sweep", type=list_of(RATIO), help="several ratios: 0.1,0.3,0.5 (one result each)")
    p.add_argument("--scope", choices=SCOPES, default="layer", help="the ratio in every layer, or one global threshold")
    p.add_argument("--importance", choices=IMPORTANCES, default="l1", help="channel importance (structured)")
    p.add_argument("--finetune-epochs", type=int_range(0, 100), default=0, help="epochs after each pruning step")
    p.add_argument("--steps", type=int_range(1, 20), default=1, help="prune -> fine-tune cycles, ratio ramped")
    p.add_argument("--finetune-split", choices=SPLITS, default="val", help="images to fine-tune on")
    p.add_argument("--lr", type=float_range(0, 1, lo_open=True), default=1e-3, help="fine-tuning learning rate (Adam, cosine decay)")
    p.add_argument("--seed", type=int_range(0), default=0)
    p.add_argument("--out", default=None, help="folder to write each pruned artifact to")
    add_common(p)
    p.set_defaults(run=run)


def run(args):
    device = parse_device(args.device) if args.device else get_device()
    data = dataset_for(args.model, args.dataset)
    ratios = args.sweep if args.sweep is not None else [args.ratio]
    cfg = PruneConfig(method=args.method, ratio=ratios[0], scope=args.scope, importance=args.importance)
    ft = FinetuneConfig(epochs=args.finetune_epochs, steps=args.steps, lr=args.lr,
                        split=args.finetune_split, seed=args.seed)
    out = Path(args.out) if args.out else None
    with heavy_job(f"prune {args.model}", device):
        for outcome in sweep(args.model, data, cfg, ratios, ft, device=device, limit=args.limit):
            result = outcome.result
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                suffix = "sparse" if args.method == "unstructured" else "pt"
                path = out / f"{args.model}-{args.method}-{result.config['ratio']:.2f}.{suffix}"
                path.write_bytes(outcome.artifact)
                result.extra["artifact"] = str(path)
            yield result
