"""python -m compression zoo list | zoo train NAME"""

from compression.device import get_device, parse_device
from compression.models import model_card, zoo_names


def register(subs) -> None:
    p = subs.add_parser("zoo", help="list the pretrained models, or retrain one from its recipe")
    zoo = p.add_subparsers(dest="zoo_command", metavar="{list,train,add}")
    zoo.required = True
    lst = zoo.add_parser("list", help="the zoo's models with their recorded numbers")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(run=run_list)
    tr = zoo.add_parser("train", help="reproduce a checkpoint from the recipe in its model card, or train a "
                                      "model that has only a recipe yet (assets/recipes/: resnet, vit, ...)")
    tr.add_argument("name", help="zoo model name")
    tr.add_argument("--device", default=None)
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(run=run_train)
    add = zoo.add_parser("add", help="keep your own weights for a zoo architecture as a named model")
    add.add_argument("name", help="name for the new model (letters, digits, _ - .)")
    add.add_argument("--base", required=True, help="zoo model whose architecture the weights fit")
    add.add_argument("--weights", required=True, help="state_dict file: .pt/.pth (torch.save) or .safetensors")
    add.add_argument("--device", default=None)
    add.add_argument("--json", action="store_true")
    add.set_defaults(run=run_add)


CARD_KEYS = ("name", "description", "dataset", "test_accuracy", "accuracy_n", "params",
             "size_bytes", "macs", "train_time_s", "trained_on")


def run_list(args):
    for name in zoo_names():
        card = model_card(name)
        yield {k: card.get(k) for k in CARD_KEYS}


def run_train(args):
    import sys
    from compression.zoo import train_zoo_model, training_card

    training_card(args.name)  # unknown names fail before any work
    device = parse_device(args.device) if args.device else get_device()

    def progress(entry):
        sys.stderr.write(f"{args.name}: epoch {entry['epoch']}/{entry['epochs']} loss {entry['loss']:.4f} "
                         f"val {entry['val_accuracy'] * 100:.2f}% ({entry['seconds']:.0f} s)\n")
    card = train_zoo_model(args.name, device=device, progress=progress)
    yield {k: card.get(k) for k in CARD_KEYS}


def run_add(args):
    from compression.evaluate import add_user_model

    device = parse_device(args.device) if args.device else get_device()
    card = add_user_model(args.base, args.weights, name=args.name, device=device)
    yield {k: card.get(k) for k in CARD_KEYS}
