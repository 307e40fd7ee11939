"""python -m compression runs [--model NAME] [--dataset NAME] [--method M] [--tag TAG] [--starred]
                              [--group GROUP] [--owner WHO] [--runtime R] [--hidden] [--limit N]
                              [--frontier [--x COST] [--include-simulated]] [--json]
   python -m compression runs --name ID NAME | --add-tag ID TAG | --remove-tag ID TAG |
                              --star ID... | --unstar ID... | --hide ID... | --unhide ID... |
                              --delete ID... [--json]

Listing leaves hidden runs out unless --hidden. Each run says who made it ("owner": the signed-in
user's e-mail, "local" in the app without sign-in, the CLI's --user or OS user name). A change names its runs by id and prints each
changed run (with "change": what was done); --delete also removes the run's predictions and its
artifact file (only a file under the app's data folder) and detaches its child runs. Every id is
checked before anything changes: an unknown one is named and nothing is done (exit status 2)."""

from __future__ import annotations

from compression import CompressionError
from compression.cli import int_range
from compression.pareto import COSTS, runtime_of
from compression.runtimes import RUNTIMES
from compression.run_labels import check_name, check_tag
from compression.store import RunStore

_LIST_FILTERS = ("model", "dataset", "method", "tag", "starred", "group", "owner", "runtime", "hidden", "limit", "frontier",
                 "include_simulated")
_FLAGS = (("star", dict(starred=True)), ("unstar", dict(starred=False)),
          ("hide", dict(hidden=True)), ("unhide", dict(hidden=False)))


def register(subs) -> None:
    p = subs.add_parser("runs", help="list stored runs, newest first (or the Pareto frontier, cheapest first); "
                                     "name, tag, star, hide or delete runs")
    p.add_argument("--model", default=None)
    p.add_argument("--dataset", default=None)
    p.add_argument("--method", default=None)
    p.add_argument("--tag", default=None, help="only the runs with this tag")
    p.add_argument("--starred", action="store_true", help="only the starred runs")
    p.add_argument("--group", default=None,
                   help="only the runs of one sweep, search or pipeline (its group id, e.g. search:mlp-60k)")
    p.add_argument("--owner", default=None, help="only the runs this person made (an e-mail, local, a user name)")
    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="only the runs whose latency was timed on this runtime (runs stored before runtimes: eager)")
    p.add_argument("--hidden", action="store_true", help="include hidden runs (left out by default)")
    p.add_argument("--limit", type=int_range(1), default=None)
    p.add_argument("--frontier", action="store_true",
                   help="only the runs on the accuracy-vs-cost Pareto frontier, per dataset, cheapest first")
    p.add_argument("--x", dest="cost", choices=list(COSTS), default="size_bytes",
                   help="the cost of the frontier (default: size_bytes)")
    p.add_argument("--include-simulated", action="store_true",
                   help="let runs whose number on the --x axis is simulated on the frontier (left out by default; "
                        "a run counts on every axis its simulated_metrics do not list)")
    change = p.add_argument_group("changes (each prints the changed run)")
    change.add_argument("--name", nargs=2, action="append", metavar=("ID", "NAME"), default=[],
                        help='name a run ("" clears the name)')
    change.add_argument("--add-tag", nargs=2, action="append", metavar=("ID", "TAG"), default=[],
                        help="add a tag to a run (no commas, at most 32 characters)")
    change.add_argument("--remove-tag", nargs=2, action="append", metavar=("ID", "TAG"), default=[],
                        help="remove a tag from a run")
    for flag, what in (("star", "star runs: the ones a reviewer follows (the explorer's story view)"),
                       ("unstar", "unstar runs"), ("hide", "hide runs from every list (kept in the store)"),
                       ("unhide", "show hidden runs again")):
        change.add_argument(f"--{flag}", nargs="+", type=int_range(1), metavar="ID", default=[], help=what)
    change.add_argument("--delete", nargs="+", type=int_range(1), metavar="ID", default=[],
                        help="delete runs: the row, its predictions and its artifact file (if under the data folder)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def _changes(args) -> list[tuple[str, int, dict]]:
    """(change, run id, RunStore.update keywords / tag / None) in the order they are applied."""
    out: list[tuple[str, int, dict]] = []
    for text, name in args.name:
        out.append(("name", _run_id(text, "--name"), dict(name=name)))
    for text, tag in args.add_tag:
        out.append(("add-tag", _run_id(text, "--add-tag"), dict(tag=check_tag(tag))))
    for text, tag in args.remove_tag:
        out.append(("remove-tag", _run_id(text, "--remove-tag"), dict(tag=tag.strip())))
    for flag, kwargs in _FLAGS:
        out += [(flag, i, kwargs) for i in getattr(args, flag)]
    out += [("delete", i, {}) for i in args.delete]
    return out


def _run_id(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CompressionError(f"{flag}: run id {text!r} is not a number") from None
    if value < 1:
        raise CompressionError(f"{flag}: run id {text!r} is not a run id (they start at 1)")
    return value


def run(args):
    changes = _changes(args)
    if changes:
        yield from apply_changes(args, changes)
        return
    rows = RunStore().runs(model=args.model, dataset=args.dataset, method=args.method,
                           limit=None if args.runtime else args.limit,  # the limit after the runtime filter
                           tag=args.tag, starred=True if args.starred else None, group=args.group,
                           owner=args.owner, include_hidden=args.hidden)
    if args.runtime:
        rows = [r for r in rows if runtime_of(r) == args.runtime][:args.limit]
    if args.frontier:
        rows = frontier_rows(rows, args.cost, include_simulated=args.include_simulated)
    for row in rows:
        yield _out(row)


def apply_changes(args, changes):
    """Check everything first (filters not mixed in, names, ids, contradictions), then change."""
    mixed = [f for f in _LIST_FILTERS if getattr(args, f) not in (None, False)]
    if mixed:
        raise CompressionError(f"runs: --{mixed[0].replace('_', '-')} lists runs; a change names its runs by id, "
                               "give one or the other")
    for what, _, kw in changes:
        if what == "name":
            check_name(kw["name"])
    for a, b in (("star", "unstar"), ("hide", "unhide")):
        both = sorted(set(getattr(args, a)) & set(getattr(args, b)))
        if both:
            raise CompressionError(f"runs: run {both[0]} is given to both --{a} and --{b}")
    deleted = set(args.delete)
    later = [(what, i) for what, i, _ in changes if what != "delete" and i in deleted]
    if later:
        raise CompressionError(f"runs: run {later[0][1]} is deleted and given to --{later[0][0]}")
    store = RunStore()
    tags = {}
    for what, run_id, kw in changes:  # an unknown id or a missing tag is named before anything changes
        if run_id not in tags:
            row = store.get(run_id)
            if row is None:
                raise CompressionError(f"runs: no run {run_id} in {store.path}")
            tags[run_id] = set(row["tags"])
        if what == "add-tag":
            tags[run_id].add(kw["tag"])
        elif what == "remove-tag" and kw["tag"] not in tags[run_id]:
            raise CompressionError(f"runs: run {run_id} has no tag {kw['tag']!r}")
    for what, run_id, kw in changes:
        if what == "delete":
            row = store.delete(run_id)
        elif what == "add-tag":
            row = store.tag(run_id, kw["tag"])
        elif what == "remove-tag":
            row = store.untag(run_id, kw["tag"])
        else:
            row = store.update(run_id, **kw)
        yield {"change": what, **_out(row)}


def _out(row: dict) -> dict:
    from compression.honesty import simulated_metrics
    row["run_id"] = row.pop("id")
    row["simulated_metrics"] = simulated_metrics(row)  # old runs: derived from `simulated`
    row["runtime"] = (row.get("extra") or {}).get("runtime", "eager")  # where latency was timed (old runs: eager)
    from compression.charts.format import changes_json
    row["changes"] = changes_json(row)  # against its baseline, in the words the story, CSV and report use
    return row


def frontier_rows(rows, cost, *, include_simulated=False):
    """The frontier of each dataset's runs (accuracies on different test sets don't compare),
    from the runs whose number on the `cost` axis is real (compression.pareto.real_on_axis)."""
    from compression.pareto import pareto_frontier, real_on_axis

    out = []
    for dataset in sorted({r["dataset"] for r in rows}):
        pool = real_on_axis([r for r in rows if r["dataset"] == dataset], cost, include_simulated=include_simulated)
        out += pareto_frontier(pool, cost=cost)
    return out
