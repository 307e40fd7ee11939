"""python -m compression prune --model NAME --method {unstructured,structured} --ratio R
    [--scope {layer,global}] [--importance {l1,l2,taylor}] [--finetune-epochs N] [--steps K]
    [--finetune-split {auto,val,train}] [--no-recalibrate-bn] [--lr LR] [--seed S] [--sweep R1,R2,...] [--out DIR] --json

One measured result per ratio (each pruned from the unpruned model)."""

from pathlib import Path

from compression.cli import add_common, add_model, safe_name, float_range, int_range, list_of
from compression.device import get_device, heavy_job, parse_device
from compression.evaluate import dataset_for
from compression import CompressionError
from compression.pruning import IMPORTANCES, METHODS, SCOPES, SPLITS
from compression.pruning.config import BN_HELP, SPLIT_HELP

RATIO = float_range(0, 1, hi_open=True)


def register(subs) -> None:
    p = subs.add_parser("prune", help="prune weights or channels, optionally fine-tune, and measure")
    add_model(p)
    p.add_argument("--method", choices=METHODS, default="unstructured",
                   help="unstructured: single weights (sparse file); structured: whole channels/neurons")
    ratio = p.add_mutually_exclusive_group(required=True)
    ratio.add_argument("--ratio", type=RATIO, help="fraction removed, in [0, 1)")
    ratio.add_argument("--sweep", type=list_of(RATIO), help="several ratios: 0.1,0.3,0.5 (one result each)")
    p.add_argument("--scope", choices=SCOPES, default="layer", help="the ratio in every layer, or one global threshold")
    p.add_argument("--importance", choices=IMPORTANCES, default="l1", help="channel importance (structured)")
    p.add_argument("--finetune-epochs", type=int_range(0, 100), default=0, help="epochs after each pruning step")
    p.add_argument("--steps", type=int_range(1, 20), default=1, help="prune -> fine-tune cycles, ratio ramped")
    p.add_argument("--finetune-split", choices=SPLITS, default="auto", help="images to fine-tune on; " + SPLIT_HELP)
    p.add_argument("--no-recalibrate-bn", dest="recalibrate_bn", action="store_false",
                   help="keep the BatchNorm statistics as pruned; default: " + BN_HELP)
    p.add_argument("--lr", type=float_range(0, 1, lo_open=True), default=1e-3, help="fine-tuning learning rate (Adam, cosine decay)")
    p.add_argument("--seed", type=int_range(0), default=0)
    p.add_argument("--out", default=None, help="folder to write each pruned artifact to")
    add_common(p)
    p.set_defaults(run=run)


def run(args):
    from compression.knobs import spec_of
    from compression.pruning.method import PruneStep
    from compression.sweep import Job, default_executor, run_jobs

    device = parse_device(args.device) if args.device else get_device()
    data = dataset_for(args.model, args.dataset)  # any model reference; a bad one fails before any work
    ratios = args.sweep if args.sweep is not None else [args.ratio]
    steps = [PruneStep(args.method, r, args.scope, args.steps, args.finetune_epochs, args.lr, args.finetune_split,
                       args.importance, recalibrate_bn=args.recalibrate_bn) for r in ratios]  # bad values fail before any work
    jobs = [Job(args.model, data.name, spec_of("prune", s), device=device.type, limit=args.limit, seed=args.seed,
                group=f"prune sweep {args.model}" if len(steps) > 1 else None) for s in steps]
    out = Path(args.out) if args.out else None
    with heavy_job(f"prune {args.model}", device):
        for point in run_jobs(jobs, executor=default_executor(), store=not args.no_store):
            if not point.ok:
                raise CompressionError(point.error)
            result = point.result.result
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                path = out / f"{safe_name(result.model)}-{args.method}-{result.config['ratio']:.2f}.cxp"
                path.write_bytes(point.result.artifact)
                result.extra["artifact"] = str(path)
            yield result
