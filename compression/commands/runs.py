"""python -m compression runs [--model NAME] [--dataset NAME] [--method M] [--limit N]
                              [--frontier [--x COST] [--include-simulated]] [--json]"""

from compression.cli import int_range
from compression.pareto import COSTS
from compression.store import RunStore


def register(subs) -> None:
    p = subs.add_parser("runs", help="list stored runs, newest first (or the Pareto frontier, cheapest first)")
    p.add_argument("--model", default=None)
    p.add_argument("--dataset", default=None)
    p.add_argument("--method", default=None)
    p.add_argument("--limit", type=int_range(1), default=None)
    p.add_argument("--frontier", action="store_true",
                   help="only the runs on the accuracy-vs-cost Pareto frontier, per dataset, cheapest first")
    p.add_argument("--x", dest="cost", choices=list(COSTS), default="size_bytes",
                   help="the cost of the frontier (default: size_bytes)")
    p.add_argument("--include-simulated", action="store_true",
                   help="let runs whose gain is simulated on the frontier (left out by default)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def run(args):
    rows = RunStore().runs(model=args.model, dataset=args.dataset, method=args.method, limit=args.limit)
    if args.frontier:
        rows = frontier_rows(rows, args.cost, include_simulated=args.include_simulated)
    for row in rows:
        row["run_id"] = row.pop("id")
        yield row


def frontier_rows(rows, cost, *, include_simulated=False):
    """The frontier of each dataset's runs (accuracies on different test sets don't compare)."""
    from compression.pareto import pareto_frontier

    out = []
    for dataset in sorted({r["dataset"] for r in rows}):
        pool = [r for r in rows if r["dataset"] == dataset and (include_simulated or not r["simulated"])]
        out += pareto_frontier(pool, cost=cost)
    return out
