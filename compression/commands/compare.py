"""python -m compression compare RUN_A [RUN_B] [--json]

What changed between two stored runs evaluated on the same test images (RUN_B omitted: RUN_A
against its own baseline model): agreement, per-class accuracy of each, right -> wrong and
wrong -> right flips with the image indices. Run ids are in `runs --json` and every result's run_id."""

from compression.cli import add_common, int_range


def register(subs) -> None:
    p = subs.add_parser("compare", help="compare two runs' predictions image by image")
    p.add_argument("run_a", type=int_range(1), help="a run id")
    p.add_argument("run_b", type=int_range(1), nargs="?", default=None, help="another run id (default: RUN_A's baseline)")
    add_common(p, dataset=False)
    p.set_defaults(run=run)


def run(args):
    from compression.compare import compare_runs
    from compression.device import get_device, parse_device
    device = parse_device(args.device) if args.device else get_device()
    out = compare_runs(args.run_a, args.run_b, device=device.type)
    if not args.json:
        out = {"runs": f"{out['run_a'] or 'baseline'} vs {out['run_b']}", "images": out["n"],
               "agreement": f"{out['agreement'] * 100:.2f} %", "right_to_wrong": out["right_to_wrong"],
               "wrong_to_right": out["wrong_to_right"],
               "per_class": "; ".join(f"{c['class']} {c['diff'] * 100:+.1f}" for c in out["per_class"] if c["n"])}
    else:
        out = {k: v for k, v in out.items() if k not in ("right_to_wrong_indices", "wrong_to_right_indices")}
    yield out
