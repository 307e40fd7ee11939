"""python -m compression search --model NAME --objective {size_bytes,macs,latency_ms}
    [--max-bytes N | --max-macs N | --max-latency-ms X] [--methods prune,quantize|deep-compression] [--trials 40]
    [--sampler tpe|nsga2] [--study NAME] [--finetune-epochs E] [--subset N] [--cluster ...] --json

A multi-objective Optuna study (accuracy up, the cost down, the budget as a constraint) over
pruning, quantization and prune -> quantize configurations, or Deep Compression pipelines (prune ->
fine-tune -> cluster (+ Huffman) -> centroid fine-tuning). Bytes, parameters and MACs are predicted
before a trial runs: one over a --max-bytes / --max-macs budget is not evaluated (listed under
"skipped"), and --trials counts evaluated trials. The budget solver's candidates predicted to fit
run first, best-predicted first, then the sampler's. One JSON object per trial as it finishes (each
a stored run), then the study's front and the choice. The study is kept in
$COMPRESSION_HOME/search.sqlite: run again with the same --study to continue it."""

from __future__ import annotations

import argparse

from compression.cli import add_common, add_model, float_range, int_range, list_of


def _method(text: str) -> str:
    from compression.search import SEARCH_METHODS
    if text not in SEARCH_METHODS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a search method; choose from {', '.join(SEARCH_METHODS)}")
    return text


def register(subs) -> None:
    from compression.search import OBJECTIVES, SAMPLERS
    p = subs.add_parser("search", help="multi-objective search (Optuna) for the accuracy / cost front")
    add_model(p)
    p.add_argument("--objective", choices=OBJECTIVES, default="size_bytes", help="the cost to minimize")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--max-bytes", type=int_range(1), help="hard budget on stored bytes")
    which.add_argument("--max-macs", type=int_range(1), help="hard budget on MACs per image")
    which.add_argument("--max-latency-ms", type=float_range(0, 1e6, lo_open=True), help="hard budget on latency, ms")
    p.add_argument("--methods", type=list_of(_method), default=("prune", "quantize"),
                   help="allowed: prune, quantize (both: also prune -> quantize), deep-compression (prune -> "
                        "fine-tune -> cluster -> centroid fine-tuning, its knobs searched)")
    p.add_argument("--trials", type=int_range(1, 10_000), default=24, help="evaluated trials the study should have "
                   "(configurations predicted over the budget are listed, not run)")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    p.add_argument("--study", default=None, help="study name: a new one, or one to continue")
    p.add_argument("--seed", type=int_range(0), default=0)
    p.add_argument("--finetune-epochs", type=int_range(0, 10), default=0, help="fine-tuning after pruning")
    p.add_argument("--subset", type=int_range(1), default=None, help="fine-tune on the first N training images")
    p.add_argument("--no-grid", action="store_true", help="do not start with the budget solver's candidates")
    add_common(p)
    p.set_defaults(run=run)


def run(args):
    from compression import CompressionError
    from compression.device import get_device, heavy_job, parse_device
    from compression.evaluate import dataset_for
    from compression.search import SearchConfig, SearchOutcome, iter_search, summary

    budgets = {"size_bytes": args.max_bytes, "macs": args.max_macs, "latency_ms": args.max_latency_ms}
    given = [k for k, v in budgets.items() if v is not None]
    if given and given[0] != args.objective:
        raise CompressionError(f"the budget is on {given[0]} but the objective is {args.objective}; "
                               f"give --objective {given[0]}")
    cfg = SearchConfig(objective=args.objective, budget=budgets[args.objective], methods=args.methods,
                       trials=args.trials, sampler=args.sampler, seed=args.seed,
                       finetune_epochs=args.finetune_epochs, subset=args.subset, grid_first=not args.no_grid)
    device = parse_device(args.device) if args.device else get_device()
    data = dataset_for(args.model, args.dataset)
    outcome = SearchOutcome(cfg, args.study or "")
    with heavy_job(f"search {args.model}", device):
        for row in iter_search(args.model, data.name, cfg, study=args.study, device=device.type, limit=args.limit,
                               store=not args.no_store, outcome=outcome):
            yield {k: v for k, v in row.items() if k not in ("label",)}
    yield summary(outcome)
