"""python -m compression evaluate --model NAME [--weights FILE] [--dataset NAME] [--json]"""

from compression.cli import add_common
from compression.device import get_device, parse_device
from compression.evaluate import evaluate


def register(subs) -> None:
    p = subs.add_parser("evaluate", help="measure a zoo model (or your weights for its architecture)")
    p.add_argument("--model", required=True,
                   help="zoo model name (see `zoo list`), or torchvision:<arch> (e.g. torchvision:resnet18)")
    p.add_argument("--pretrained", action="store_true",
                   help="torchvision:<arch> only: use the published ImageNet weights (online or torch cache)")
    p.add_argument("--weights", default=None, help="a state_dict file (.pt/.pth) for the model's architecture")
    add_common(p)
    p.set_defaults(run=run)


def run(args):
    device = parse_device(args.device) if args.device else get_device()
    yield evaluate(args.model, dataset=args.dataset, weights=args.weights, device=device,
                   limit=args.limit, pretrained=args.pretrained)
