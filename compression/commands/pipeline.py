"""python -m compression pipeline --model NAME (--recipe deep-compression | --steps "prune:unstructured:0.9,
finetune:3,quantize:cluster-huffman:5") [--seed S] [--subset N] [--out DIR] [--list-recipes] --json

One measured result per step, the last one the pipeline's. Each step is stored as a run whose
parent is the previous step's run, with its artifact (a file that loads back into the model)."""

from __future__ import annotations

import argparse
from pathlib import Path

from compression import CompressionError
from compression.cli import add_common, add_model, int_range, safe_name


def _steps(text: str):
    from compression.pipeline import parse_steps
    try:
        return parse_steps(text)
    except CompressionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _recipe(text: str) -> str:
    from compression.pipeline import RECIPES
    if text not in RECIPES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a recipe; choose one of {', '.join(RECIPES)}")
    return text


def register(subs) -> None:
    p = subs.add_parser("pipeline", help="apply compression steps in order (e.g. Deep Compression), measuring each")
    add_model(p, required=False)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--recipe", type=_recipe, help="a named recipe (see --list-recipes)")
    which.add_argument("--steps", type=_steps, help='comma-separated steps, e.g. "prune:structured:0.5:epochs=2,'
                                                    'distill:1,quantize:uniform:8"')
    which.add_argument("--list-recipes", action="store_true", help="print the named recipes and exit")
    p.add_argument("--seed", type=int_range(0), default=0)
    p.add_argument("--subset", type=int_range(1), default=None,
                   help="train on the first N images of each step's split only (quick runs)")
    p.add_argument("--out", default=None, help="also copy each step's artifact into this folder")
    add_common(p)
    p.set_defaults(run=run)


def run(args):
    from compression.device import get_device, heavy_job, parse_device
    from compression.evaluate import dataset_for
    from compression.pipeline import RECIPES, PipelineConfig, recipe_steps, run_and_store, run_pipeline

    if args.list_recipes:
        for name, (spec, about) in RECIPES.items():
            yield {"recipe": name, "steps": spec, "about": about}
        return
    if not args.model:
        raise CompressionError("--model is required (see `zoo list`)")
    if not (args.recipe or args.steps):
        raise CompressionError("give --recipe NAME or --steps \"...\" (see --list-recipes)")
    steps = recipe_steps(args.recipe) if args.recipe else args.steps
    cfg = PipelineConfig(steps, seed=args.seed, subset=args.subset)  # refuses bad orders before any work
    device = parse_device(args.device) if args.device else get_device()
    data = dataset_for(args.model, args.dataset)
    out = Path(args.out) if args.out else None
    with heavy_job(f"pipeline {args.model}", device):
        if args.no_store:
            pairs = ((o, None) for o in run_pipeline(args.model, data, cfg, device=device, limit=args.limit))
        else:
            from compression.store import RunStore
            pairs = run_and_store(args.model, data, cfg, RunStore(), device=device, limit=args.limit)
        for outcome, run_id in pairs:
            d = outcome.result.to_dict()
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                path = out / f"{safe_name(outcome.result.model)}-step{outcome.index}.cxp"
                path.write_bytes(outcome.artifact)
                d["artifact"] = str(path)
            if args.recipe:
                d["recipe"] = args.recipe
            if run_id is not None:
                d["run_id"] = run_id
            yield d
