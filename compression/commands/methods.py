"""python -m compression methods [NAME] [--json]

Every registered compression method with its knobs (type, default, choices or range), from the
registry itself: what a pipeline step, a sweep point or a search trial may set."""

from compression.cli import add_common


def register(subs) -> None:
    p = subs.add_parser("methods", help="list the registered methods and their knobs")
    p.add_argument("name", nargs="?", default=None, help="one method (default: all)")
    add_common(p, dataset=False)
    p.set_defaults(run=run)


def run(args):
    from compression.knobs import describe
    from compression.methods import get_method, method_names
    names = [get_method(args.name).name] if args.name else method_names()
    for name in names:
        d = describe(name)
        if not args.json:
            knobs = ", ".join(f"{k['name']}={k['default']!r}" for k in d["knobs"])
            d = {"method": name, "usage": d["usage"], "knobs": knobs, "help": d["help"]}
        yield d
