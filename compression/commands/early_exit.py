"""python -m compression early-exit --model NAME [--criterion {confidence,entropy}]
                                     [--threshold T[,T2...] | --sweep [--points N]] [--json]
   python -m compression early-exit --model REF --attach BLOCK[,BLOCK...] [--attach-epochs N] ...
   python -m compression early-exit --model cnn_slim --width W[,W2...] [--json]

--attach puts an exit head after each named block of any model reference (zoo, your weights,
torchvision:<arch>) and trains the heads only, the backbone frozen; the model with its heads is
stored as each result's artifact.

Without --threshold or --sweep, the thresholds are chosen on the validation split (fewest mean
MACs within --max-drop of the full network's accuracy) and reported on the test split."""

from dataclasses import replace

from compression import CompressionError
from compression.cli import add_common, add_model, float_range, int_range, list_of


def register(subs) -> None:
    p = subs.add_parser("early-exit", help="dynamic depth (early exits) and dynamic width (slimmable models)")
    add_model(p, help="a multi-exit zoo model (lenet5_exits, cnn_exits), cnn_slim, or any model reference with --attach")
    p.add_argument("--criterion", choices=("confidence", "entropy"), default="confidence",
                   help="leave when max softmax > T, or when entropy / log(classes) < T")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--threshold", type=list_of(float_range(0, 1)), default=None,
                     help="T in [0, 1] for every early exit, or one per early exit: 0.9,0.8")
    how.add_argument("--sweep", action="store_true",
                     help="one result per threshold, spread evenly over the first exit's scores")
    how.add_argument("--width", type=list_of(float_range(0, 1, lo_open=True)), default=None,
                     help="slimmable models: width multiplier(s), e.g. 0.5 or 0.25,0.5,0.75,1.0")
    p.add_argument("--attach", type=list_of(str), default=None, metavar="BLOCK[,BLOCK...]",
                   help="any model: attach an exit head after each of these blocks (e.g. layer1,layer2,layer3 of "
                        "a ResNet) and train the heads only, the backbone frozen")
    p.add_argument("--attach-epochs", type=int_range(1, 100), default=2,
                   help="epochs to train the attached heads (default 2)")
    p.add_argument("--points", type=int_range(2, 200), default=11, help="thresholds in a --sweep (default 11)")
    p.add_argument("--max-drop", type=float_range(0, 1), default=0.01,
                   help="for the chosen threshold: accuracy loss allowed, as a fraction (default 0.01 = 1 point)")
    p.add_argument("--latency-images", type=int_range(1, 10000), default=300,
                   help="test images timed one by one for the batch-1 latency (default 300)")
    add_common(p)
    p.set_defaults(run=run)


def run(args):
    from compression.device import get_device, parse_device
    from compression.dynamic import (EarlyExitConfig, MultiExitNet, SlimmableCNN, WidthConfig, choose_thresholds,
                                     curve_thresholds, early_exit_result, exit_table, slim_to_static, width_result)
    from compression.metrics import measure
    from compression.refs import resolve

    device = parse_device(args.device) if args.device else get_device()
    resolved = resolve(args.model, args.dataset, device=device)  # any model reference; unknown ones fail here
    model = resolved.model
    if isinstance(model, SlimmableCNN):
        if args.threshold is not None or args.sweep:
            raise CompressionError(f"{args.model!r} is slimmable (dynamic width): give --width, not thresholds")
        configs = [WidthConfig(w) for w in (args.width or model.widths)]
        for cfg in configs:
            model.check_width(cfg.width)
        data = resolved.dataset
        full = measure(slim_to_static(model, model.widths[-1]).to(device), data, device=device, limit=args.limit)
        for cfg in configs:
            yield width_result(model, data, cfg, name=resolved.name, device=device, limit=args.limit, baseline=full)
        return
    artifact = None
    if args.attach:
        if args.width is not None:
            raise CompressionError("--attach gives a model early exits; --width is for slimmable models")
        model, artifact = _attach(args, resolved, device)
    elif not isinstance(model, MultiExitNet):
        raise CompressionError(f"{args.model!r} has neither early exits nor widths; "
                               "choose lenet5_exits, cnn_exits or cnn_slim, or attach exits with --attach BLOCKS")
    if args.width is not None:
        raise CompressionError(f"--width is for slimmable models; {args.model!r} has early exits: "
                               "give --threshold or --sweep")
    if args.threshold is not None:
        EarlyExitConfig(args.criterion, tuple(args.threshold)).per_exit(model.num_exits)
    data = resolved.dataset
    table = exit_table(model, data, device=device, limit=args.limit)
    if args.sweep:
        settings = [(float(t),) for t in curve_thresholds(table, args.criterion, args.points)]
    elif args.threshold is not None:
        settings = [tuple(args.threshold)]
    else:
        settings = [choose_thresholds(exit_table(model, data, split="val", device=device), args.criterion,
                                      max_drop=args.max_drop)]
    chosen = {} if args.sweep or args.threshold is not None else {"chosen_on": "val", "max_drop": args.max_drop}
    for t in settings:
        result = early_exit_result(model, data, EarlyExitConfig(args.criterion, t), name=resolved.name, device=device,
                                   table=table, latency_images=args.latency_images)
        if artifact is not None:
            result = replace(result, config={**result.config, "attach": list(args.attach),
                                             "attach_epochs": args.attach_epochs},
                             metrics=replace(result.metrics, size_bytes=len(artifact)))
        result = replace(result, config={**result.config, **chosen}) if chosen else result
        result.extra["model_source"] = resolved.provenance
        if artifact is not None and not args.no_store:
            from compression.methods import save_run
            save_run(result, artifact)  # the model with its heads, as a file (run_id in extra: not stored again)
        yield result


def _attach(args, resolved, device):
    """The model with exit heads after args.attach, heads trained (progress on stderr); and its
    artifact bytes (the container whose header rebuilds backbone + heads)."""
    import sys

    from compression.artifact import write_artifact
    from compression.dynamic.attach import architecture_of, attach_exits, train_heads
    from compression.models import state_dict_bytes
    from compression.training import TrainConfig

    data = resolved.dataset
    model = attach_exits(resolved.model, args.attach, data.input_shape, data.num_classes).to(device)

    def progress(e):
        print(f"{resolved.name}: exit heads epoch {e['epoch']}/{e['epochs']} loss {e['loss']:.4f} "
              f"val {e['val_accuracy'] * 100:.2f}% ({e['seconds']:.0f} s)", file=sys.stderr)
    trained = train_heads(model, data, TrainConfig(epochs=args.attach_epochs), device=device,
                          progress=progress).model.eval()
    architecture = architecture_of(trained, resolved.architecture, data.input_shape, data.num_classes)
    return trained, write_artifact(state_dict_bytes(trained), "dense", architecture)
