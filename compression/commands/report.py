"""python -m compression report --out FILE.html [--dataset NAME] [--model NAME] [--method M]"""

from compression.cli import int_range
from compression.store import RunStore


def register(subs) -> None:
    p = subs.add_parser("report", help="write a self-contained HTML report of the stored runs (opens offline)")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--dataset", default=None, help="only runs on this dataset (default: all, one section each)")
    p.add_argument("--model", default=None, help="only runs of this model")
    p.add_argument("--method", default=None, help="only runs of this method")
    p.add_argument("--limit", type=int_range(1), default=None, help="only the newest N runs")
    p.add_argument("--title", default="Compression Explorer report")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def run(args):
    from compression import CompressionError
    from compression.report import write_report

    store = RunStore()
    runs = store.runs(model=args.model, dataset=args.dataset, method=args.method, limit=args.limit)
    if not runs:
        chosen = ", ".join(f"{k}={v}" for k, v in (("dataset", args.dataset), ("model", args.model),
                                                   ("method", args.method)) if v)
        raise CompressionError(f"no stored runs{' for ' + chosen if chosen else ''}; nothing to report")
    filters = ", ".join(f"{k} {v}" for k, v in (("dataset", args.dataset), ("model", args.model),
                                                 ("method", args.method)) if v)
    size = write_report(args.out, runs, title=args.title, store=store,
                        description=f"Runs filtered by {filters}." if filters else "")
    yield {"report": args.out, "runs": len(runs), "bytes": size}
