"""python -m compression evaluate --model REF [--weights FILE] [--normalize ...] [--dataset NAME] [--json]"""

from compression.cli import add_common, add_model
from compression.device import get_device, parse_device
from compression.evaluate import evaluate


def register(subs) -> None:
    p = subs.add_parser("evaluate", help="measure a model as given (a zoo or named model, or your weights for "
                                         "an architecture)")
    add_model(p)
    add_common(p)
    p.set_defaults(run=run)


def run(args):
    device = parse_device(args.device) if args.device else get_device()
    yield evaluate(args.model, dataset=args.dataset, device=device, limit=args.limit)
