"""python -m compression budget --model NAME (--max-bytes N | --max-macs N | --max-latency-ms X)
    [--methods prune,quantize] [--finetune-epochs E] [--subset N] --json

The search engine (compression.search) with the grid sampler: the budget solver's pruning /
quantization / prune-then-quantize configurations predicted to fit (compression.budget), best-predicted
first, one stored run each (printed as it finishes, with `within_budget`); the grid's points
predicted over the budget are not run (listed under "skipped" in the summary line). Then the most
accurate configuration whose measured cost fits the budget."""

from __future__ import annotations

import argparse

from compression.cli import add_common, add_model, float_range, int_range


def _methods(text: str) -> tuple[str, ...]:
    from compression.budget import SEARCH_METHODS
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in parts if p not in SEARCH_METHODS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"{(bad or [text])[0]!r} is not a search method; "
                                         f"choose from {', '.join(SEARCH_METHODS)}")
    return parts


def register(subs) -> None:
    p = subs.add_parser("budget", help="find the most accurate configuration within a size, MACs or latency budget")
    add_model(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--max-bytes", type=int_range(1), help="stored size budget, bytes")
    which.add_argument("--max-macs", type=int_range(1), help="multiply-accumulates per image")
    which.add_argument("--max-latency-ms", type=float_range(0, 1e6, lo_open=True), help="batch-1 latency, ms")
    p.add_argument("--methods", type=_methods, default=("prune", "quantize"),
                   help="allowed methods, comma-separated: prune, quantize (both: also prune -> quantize)")
    p.add_argument("--finetune-epochs", type=int_range(0, 10), default=0, help="fine-tuning after pruning")
    p.add_argument("--subset", type=int_range(1), default=None, help="fine-tune on the first N training images")
    add_common(p)
    p.set_defaults(run=run)


def run(args):
    from compression.budget import BudgetConfig, BudgetOutcome, iter_search, summary
    from compression.device import get_device, heavy_job, parse_device
    from compression.evaluate import dataset_for

    metric, limit = next((m, v) for m, v in (("size_bytes", args.max_bytes), ("macs", args.max_macs),
                                             ("latency_ms", args.max_latency_ms)) if v is not None)
    cfg = BudgetConfig(metric=metric, limit=limit, methods=args.methods, finetune_epochs=args.finetune_epochs,
                       subset=args.subset)
    device = parse_device(args.device) if args.device else get_device()
    data = dataset_for(args.model, args.dataset)
    outcome = BudgetOutcome(cfg)
    with heavy_job(f"budget search {args.model}", device):
        for row in iter_search(args.model, data.name, cfg, outcome, device=device.type, limit=args.limit,
                               store=not args.no_store):
            yield {**{k: v for k, v in row.items() if k not in ("fits", "index", "seconds")},
                   "within_budget": row["fits"]}
    yield summary(outcome)
