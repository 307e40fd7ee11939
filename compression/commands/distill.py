"""python -m compression distill --teacher NAME[,NAME...] --student NAME [--student-width W]
[--student-init scratch|pretrained] [--temperature T] [--alpha A] [--epochs N] [--seed S]
[--train-subset N] [--transfer-set labeled|all] [--sweep-temperature T1,T2,...] [--sweep-alpha A1,...]
[--no-baseline] [--json]

Prints the student trained on hard labels alone first (--alpha 0 is that baseline on its own),
then one distilled student per setting; every student is stored as a run under the teacher's name.
Each student is a job of the registered `student` method on the sweep executor (--cluster).
"""

import argparse
import sys

from compression.cli import add_common, add_input_contract, float_range, int_range, list_of
from compression.device import get_device, parse_device
from compression.distillation import (MAX_TEMPERATURE, STUDENT_INITS, TRANSFER_SETS, DistillConfig, StudentSpec,
                                      distill)
from compression.evaluate import dataset_for
from compression.store import RunStore


def _names(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no teacher")
    return names


def register(subs) -> None:
    p = subs.add_parser("distill", help="train a small student from a teacher's soft labels, beside the same "
                                         "student on hard labels alone")
    p.add_argument("--teacher", type=_names, default=["cnn"],
                   help="zoo model (default cnn); several, comma-separated, form an ensemble")
    p.add_argument("--teacher-weights", type=_names, default=None, metavar="FILE[,FILE...]",
                   help="your state_dict for each teacher's architecture, in the order of --teacher")
    p.add_argument("--student", default="lenet5",
                   help="architecture or zoo name of the student (default lenet5), or any model reference "
                        "(torchvision:<arch>, timm:<arch>, hf:<dir>, a named model)")
    p.add_argument("--student-weights", default=None, metavar="FILE",
                   help="start the student from your state_dict for its architecture (a model reference)")
    add_input_contract(p, "the normalization the teachers' weights were trained with (the student learns on the "
                          "first teacher's view)")
    p.add_argument("--student-width", type=float_range(0, 4, lo_open=True), default=1.0,
                   help="width multiplier of the student (default 1; a copy of the teacher needs < 1)")
    p.add_argument("--student-init", choices=STUDENT_INITS, default="scratch",
                   help="scratch: seeded random init; pretrained: the student's zoo checkpoint")
    p.add_argument("--temperature", type=float_range(0, MAX_TEMPERATURE, lo_open=True), default=2.0)
    p.add_argument("--alpha", type=float_range(0, 1), default=0.7,
                   help="weight of the soft-label term (0: hard labels only, the baseline alone)")
    p.add_argument("--epochs", type=int_range(1, 1000), default=10)
    p.add_argument("--lr", type=float_range(0, 10, lo_open=True), default=2e-3)
    p.add_argument("--batch-size", type=int_range(1, 65536), default=128)
    p.add_argument("--seed", type=int_range(0), default=0)
    p.add_argument("--train-subset", type=int_range(1), default=None,
                   help="labeled training images: the first N of the training split (default all)")
    p.add_argument("--transfer-set", choices=TRANSFER_SETS, default="labeled",
                   help="soft labels on the labeled images only, or on all training images")
    p.add_argument("--sweep-temperature", type=list_of(float_range(0, MAX_TEMPERATURE, lo_open=True)),
                   default=None, help="comma-separated temperatures: one distilled student each")
    p.add_argument("--sweep-alpha", type=list_of(float_range(0, 1)), default=None,
                   help="comma-separated alphas: one distilled student each")
    p.add_argument("--no-baseline", action="store_true", help="skip the hard-label student")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress on stderr")
    add_common(p)
    p.set_defaults(run=run)


def references(args) -> tuple[list[str], str]:
    """The teachers and the student as references carrying their weights files (compression.refs)."""
    from compression import CompressionError
    from compression.refs import parse
    teachers, files = list(args.teacher), args.teacher_weights or []
    if files and len(files) != len(teachers):
        raise CompressionError(f"--teacher-weights has {len(files)} file(s) for {len(teachers)} teacher(s): "
                               "give one per teacher, in the same order")
    options = {"normalize": args.normalize, "mean": args.mean, "std": args.std, "input_size": args.input_size}
    teachers = [parse(t, weights=w, **options).spec for t, w in zip(teachers, files or [None] * len(teachers))]
    student = parse(args.student, weights=args.student_weights).spec if args.student_weights else args.student
    return teachers, student


def run(args):
    device = parse_device(args.device) if args.device else get_device()
    args.teacher, args.student = references(args)
    data = dataset_for(args.teacher[0], args.dataset)
    cfg = DistillConfig(temperature=args.temperature, alpha=args.alpha, epochs=args.epochs, lr=args.lr,
                        batch_size=args.batch_size, seed=args.seed, train_subset=args.train_subset,
                        transfer_set=args.transfer_set)
    student = StudentSpec(args.student, width=args.student_width, init=args.student_init)

    def progress(e: dict) -> None:
        if not args.quiet:
            sys.stderr.write(f"{e['run']}: epoch {e['epoch']}/{e['epochs']} loss {e['loss']:.4f} "
                             f"val {e['val_accuracy'] * 100:.2f}%{' (cached)' if e.get('cached') else ''}\n")
    store = None if args.no_store else RunStore()
    # each student is a sweep job (on --cluster's workers when one is set), stored once, here; a cached
    # hard-label student already stored with the same settings is printed with that run's id
    for outcome in distill(args.teacher, student, data, cfg, temperatures=args.sweep_temperature,
                           alphas=args.sweep_alpha, baseline=not args.no_baseline, device=device,
                           limit=args.limit, progress=progress, store=store):
        yield outcome.result
