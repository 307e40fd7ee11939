"""python -m compression runs [--model NAME] [--dataset NAME] [--method M] [--limit N] [--json]"""

from compression.cli import int_range
from compression.store import RunStore


def register(subs) -> None:
    p = subs.add_parser("runs", help="list stored runs, newest first")
    p.add_argument("--model", default=None)
    p.add_argument("--dataset", default=None)
    p.add_argument("--method", default=None)
    p.add_argument("--limit", type=int_range(1), default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def run(args):
    for row in RunStore().runs(model=args.model, dataset=args.dataset, method=args.method, limit=args.limit):
        row["run_id"] = row.pop("id")
        yield row
