"""python -m compression models add NAME --model REF (--weights FILE | --pretrained [--finetune-epochs N])
       [--dataset D] [--normalize {dataset,imagenet,none} | --mean A,B,C --std A,B,C] [--input-size N]
   python -m compression models list [--json]
   python -m compression models remove NAME

A named model is any architecture with your weights (or its published weights fine-tuned for your
classes), evaluated once and described by a card like the zoo's; `--model NAME` then works in every
command and the app lists it for its dataset. Removing one keeps the runs stored with it."""

import sys

from compression.cli import add_input_contract, float_range, int_range

CARD_KEYS = ("name", "reference", "dataset", "source", "test_accuracy", "accuracy_n", "params", "size_bytes",
             "macs", "added_at")


def register(subs) -> None:
    p = subs.add_parser("models", help="add, list or remove named models (any architecture with your weights)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    sub.required = True

    add = sub.add_parser("add", help="evaluate a model and keep it under a name")
    add.add_argument("name", help="name for the model (letters, digits, _ - .)")
    add.add_argument("--model", required=True,
                     help="the architecture: a zoo name, torchvision:<arch>, timm:<arch>, hf:<directory>, entry:<name>")
    how = add.add_mutually_exclusive_group()
    how.add_argument("--weights", default=None, metavar="FILE",
                     help="your state_dict (.pt/.pth/.safetensors, read without unpickling)")
    how.add_argument("--pretrained", action="store_true",
                     help="start from the published weights (torch/timm cache; online when allowed), the classifier "
                          "replaced for the dataset's classes")
    add.add_argument("--finetune-epochs", type=int_range(0, 100), default=0,
                     help="fine-tune for N epochs on the dataset's training images (with --pretrained)")
    add.add_argument("--lr", type=float_range(0, 1, lo_open=True), default=1e-3, help="fine-tuning learning rate")
    add.add_argument("--subset", type=int_range(1), default=None, help="fine-tune on the first N training images")
    add.add_argument("--dataset", default=None, help="the dataset (default: the model's own), or imagefolder:<path>")
    add_input_contract(add, "the normalization the weights were trained with (default: the architecture's own: "
                            "ImageNet for torchvision/timm, the processor's for hf, the dataset's for the zoo)")
    add.add_argument("--limit", type=int_range(1), default=None, help="evaluate on the first N test images")
    add.add_argument("--device", default=None)
    add.add_argument("--json", action="store_true")
    add.set_defaults(run=run_add)

    lst = sub.add_parser("list", help="the zoo's models and the named ones, with their numbers")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(run=run_list)

    rm = sub.add_parser("remove", help="delete a named model (its stored runs stay)")
    rm.add_argument("name")
    rm.add_argument("--json", action="store_true")
    rm.set_defaults(run=run_remove)


def run_add(args):
    from compression.device import get_device, parse_device
    from compression.models.named import add_named_model

    device = parse_device(args.device) if args.device else get_device()

    def progress(e: dict) -> None:
        if e.get("stage") == "fine-tuning":
            sys.stderr.write(f"{args.name}: fine-tuning epoch {e['epoch']}/{e['epochs']} loss {e['loss']:.4f} "
                             f"val {e['val_accuracy'] * 100:.2f}% ({e['seconds']:.0f} s, about {e['eta_s']:.0f} s left)\n")
        elif e.get("stage") == "evaluating":
            sys.stderr.write(f"{args.name}: evaluating on the test images\n")
    card = add_named_model(args.name, args.model, dataset=args.dataset, weights=args.weights,
                           pretrained=args.pretrained, finetune_epochs=args.finetune_epochs, lr=args.lr,
                           subset=args.subset, device=device, limit=args.limit, progress=progress,
                           normalize=args.normalize, mean=args.mean, std=args.std, input_size=args.input_size)
    yield {k: card.get(k) for k in (*CARD_KEYS, "accuracy_interval", "weights_sha256", "input_contract")}


def run_list(args):
    from compression.models import model_card, zoo_names
    for name in zoo_names():
        card = model_card(name)
        row = {k: card.get(k) for k in CARD_KEYS}
        row["source"] = card.get("source") or "zoo"
        row["reference"] = card.get("reference") or name
        yield row


def run_remove(args):
    from compression.models.named import remove_named_model
    card = remove_named_model(args.name)
    yield {"removed": card["name"], "reference": card.get("reference"), "dataset": card.get("dataset")}
