"""Command line: `python -m compression <command> ... [--json]`.

Each command is a module in compression/commands/ with `register(subparsers)`; the parser it adds
sets `run(args) -> Iterable[Result | dict]`. Results are stored in the run store (unless
--no-store) and printed: one JSON object per line with --json, else one readable line each.
User errors (CompressionError, bad arguments) print one line naming the bad value and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from typing import Any, Callable, Iterable, Sequence

from compression import CompressionError
from compression.runtimes import RUNTIMES

EXIT_USER_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line instead of usage + message."""

    def error(self, message: str):  # type: ignore[override]
        sys.stderr.write(f"error: {self.prog}: {message}\n")
        sys.exit(EXIT_USER_ERROR)


# ---------------------------------------------------------------------------------------------
# argument types: each names the bad value in its message

def _typed(kind: Callable[[str], Any], what: str, check: Callable[[Any], bool] | None = None,
           allowed: str = "") -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if check is not None and not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: {allowed}")
        return value
    return parse


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    desc = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    return _typed(int, "an integer", lambda v: v >= lo and (hi is None or v <= hi), f"expected {desc}")


def float_range(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Callable[[str], float]:
    desc = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"

    def ok(v: float) -> bool:
        return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    return _typed(float, "a number", ok, f"expected a number in {desc}")


def list_of(item: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """Comma-separated values, each parsed by `item`: '0.1,0.5,0.9'."""
    def parse(text: str) -> list[Any]:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"{text!r} is an empty list")
        return [item(p) for p in parts]
    return parse


# ---------------------------------------------------------------------------------------------
# shared options and output

def add_common(parser: argparse.ArgumentParser, *, dataset: bool = True) -> None:
    """--json, --device, --runtime, --no-store, --limit, --cluster and (optionally) --dataset."""
    parser.add_argument("--json", action="store_true", help="print one JSON object per result")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--no-store", action="store_true", help="do not save results to the run store")
    parser.add_argument("--limit", type=int_range(1), default=None,
                        help="evaluate on the first N test images only (default: all)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="eager",
                        help="where latency is timed, the result and its baseline alike: eager (PyTorch), compile "
                             "(torch.compile, inductor) or onnxruntime (ONNX Runtime, CPU); accuracy is measured in "
                             "eager. A runtime that cannot run the model falls back to eager and says why")
    parser.add_argument("--cluster", default=None,
                        help="where sweep points and search trials run: local, local:N (a Dask LocalCluster of N "
                             "worker processes) or tcp://HOST:8786 (a running Dask scheduler); default "
                             "$COMPRESSION_CLUSTER, else in this process")
    if dataset:
        parser.add_argument("--dataset", default=None,
                            help="dataset name (default: the model's own), an uploaded folder's name, or "
                                 "imagefolder:<path>[?size=N]")
        parser.set_defaults(loads_dataset=True)  # its problems are listed first (dataset_notes)


def add_model(parser: argparse.ArgumentParser, flag: str = "--model", *, required: bool = True,
              help: str | None = None, default: Any = None) -> None:
    """--model REF and what makes it the user's model: --weights, --pretrained, --normalize,
    --mean/--std, --input-size (folded into the reference text by `main`, see compression.refs)."""
    parser.add_argument(flag, required=required, default=default, help=help or (
        "model reference: a zoo or named model (see `models list`), torchvision:<arch>, timm:<arch>, "
        "hf:<directory>, entry:<name>, or run:<id> (a stored run's artifact)"))
    parser.add_argument("--weights", default=None, metavar="FILE",
                        help="your state_dict for the architecture (.pt/.pth/.safetensors, read without unpickling)")
    parser.add_argument("--pretrained", action="store_true",
                        help="torchvision:/timm: the published weights (local cache; downloaded when online)")
    add_input_contract(parser, "the normalization your weights were trained with: the dataset's mean/std, "
                               "ImageNet's, or none (pixels in [0, 1]); default: the model's own (ImageNet for "
                               "torchvision/timm)")
    parser.set_defaults(_model_flags=[flag.lstrip("-").replace("-", "_")])


def add_input_contract(parser: argparse.ArgumentParser, normalize_help: str) -> None:
    """--normalize (or --mean with --std) and --input-size: the input contract a model's weights expect."""
    norm = parser.add_mutually_exclusive_group()
    norm.add_argument("--normalize", choices=("dataset", "imagenet", "none"), default=None, help=normalize_help)
    norm.add_argument("--mean", default=None, metavar="A,B,C", help="per-channel mean of [0, 1] pixels (with --std)")
    parser.add_argument("--std", default=None, metavar="A,B,C", help="per-channel std (with --mean)")
    parser.add_argument("--input-size", type=int_range(8, 1024), default=None, metavar="N",
                        help="resize images to N x N for the model (default: its own, else the dataset's)")


def compose_reference(args: argparse.Namespace, dest: str = "model") -> None:
    """Fold --weights, --pretrained, --normalize, --mean/--std and --input-size into args.<dest>: one
    reference text (compression.refs.ModelRef.spec) that every job and step carries whole."""
    from compression.refs import parse
    text = getattr(args, dest, None)
    given = {k: getattr(args, k, None) for k in ("weights", "normalize", "mean", "std", "input_size")}
    pretrained = bool(getattr(args, "pretrained", False))
    if not text:
        if any(v is not None for v in given.values()) or pretrained:
            raise CompressionError(f"--weights and the normalization options need --{dest.replace('_', '-')}")
        return
    if given["weights"] is not None and not __import__("os").path.isfile(given["weights"]):
        raise CompressionError(f"weights file {given['weights']!r} not found")
    setattr(args, dest, parse(text, pretrained=pretrained, **given).spec)


def safe_name(text: str) -> str:
    """A file-name-safe form of a model name (torchvision:resnet18+mine.pt -> torchvision_resnet18_mine.pt)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:64]


def format_line(d: dict[str, Any]) -> str:
    """One readable line for a result dict."""
    if "accuracy" not in d:
        return "  ".join(f"{k}={v}" for k, v in d.items() if not isinstance(v, (dict, list)))
    from compression.charts.format import fmt_change, latency_change
    from compression.honesty import sanity_warning, simulated_metrics
    base = d.get("baseline") or {}
    sim = simulated_metrics(d)
    ratio = (f" ({fmt_change(d['size_bytes'], base['size_bytes'], 'size_bytes', simulated='size_bytes' in sim).text})"
             if base.get("size_bytes") else "")
    latency = latency_change(d).text if base.get("latency_ms") else "n/a"
    latency = f" ({latency})" if latency != "n/a" else ""
    extra = d.get("extra") if isinstance(d.get("extra"), dict) else {}
    runtime = d.get("runtime") or extra.get("runtime")
    runtime = f", {runtime}" if runtime else ""
    kept = ""
    if "starred" in d:  # a stored run (`runs`): its id, what changed, and what the user keeps about it
        kept = "".join([f"{d['change']}: " if d.get("change") else "", f"run {d.get('run_id')}  ",
                        "* " if d["starred"] else "", f"{d['name']!r} " if d.get("name") else "",
                        f"[{', '.join(d['tags'])}] " if d.get("tags") else "", "(hidden) " if d.get("hidden") else ""])
    line = (f"{kept}{d['model']:<14} {d['method']:<14} acc {d['accuracy'] * 100:6.2f}% (n={d['accuracy_n']})  "
            f"params {d['params']:>9,}  nonzero {d['nonzero_params']:>9,}  "
            f"size {d['size_bytes'] / 1024:9.1f} KiB{ratio}  MACs {d['macs'] / 1e6:7.3f} M  "
            f"latency {d['latency_ms']:7.3f} ms{latency}  "
            f"{'simulated: ' + ', '.join(sim) + ' ' if sim else ''}[{d['device']}{runtime}]")
    warning = extra.get("warning") or sanity_warning(d)
    return line + (f"\n  warning: {warning}" if warning else "")


def emit(results: Iterable[Any], args: argparse.Namespace) -> None:
    """Store and print results as they arrive (sweeps print point by point)."""
    from compression.metrics import Result

    store = None
    for item in results:
        if isinstance(item, Result):
            if "run_id" in item.extra:  # stored already, with its artifact (run_method, sweeps)
                d = item.to_dict()
            elif not getattr(args, "no_store", True):
                if store is None:
                    from compression.store import RunStore
                    store = RunStore()
                run_id = store.add(item)
                d = {**item.to_dict(), "run_id": run_id}
            else:
                d = item.to_dict()
        else:
            d = item
        print(json.dumps(d, default=str) if args.json else format_line(d), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m compression",
                           description="Compression Explorer: compress image classifiers and measure the result.")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subs.required = True
    import compression.commands as commands
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"compression.commands.{info.name}").register(subs)
    for sub in _leaf_parsers(subs):  # every command: who is acting (the owner of the runs it stores)
        sub.add_argument("--user", default=None,
                         help="who made these runs, stored as their owner (default: $COMPRESSION_USER, else the "
                              "OS user name)")
    return parser


def _leaf_parsers(subs) -> list[argparse.ArgumentParser]:
    out = []
    for sub in dict.fromkeys(subs.choices.values()):
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        out += _leaf_parsers(nested[0]) if nested else [sub]
    return out


def _executor(args: argparse.Namespace):
    """The sweep executor --cluster / $COMPRESSION_CLUSTER names, made the default for this command."""
    import os
    from compression.sweep import from_setting, parse_setting, set_default_executor
    setting = getattr(args, "cluster", None) or os.environ.get("COMPRESSION_CLUSTER")
    if parse_setting(setting)[0] == "in-process":
        return None
    executor = from_setting(setting)
    set_default_executor(executor)
    return executor


def dataset_notes(args: argparse.Namespace, limit: int = 20) -> None:
    """An image folder's problems (files skipped, classes without images), on stderr before the
    results: one line each, the first `limit` of them."""
    name = getattr(args, "dataset", None)
    from compression.data import dataset_names, load_dataset
    if not getattr(args, "loads_dataset", False) or not isinstance(name, str) or name in dataset_names():
        return
    notes = load_dataset(name).warnings
    for line in notes[:limit]:
        sys.stderr.write(f"warning: {name}: {line}\n")
    if len(notes) > limit:
        sys.stderr.write(f"warning: {name}: and {len(notes) - limit} more problem(s) like these\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    executor = None
    try:
        from compression.access import set_cli_user
        set_cli_user(getattr(args, "user", None))
        for dest in getattr(args, "_model_flags", []):
            compose_reference(args, dest)
        dataset_notes(args)
        executor = _executor(args)
        from compression.runtimes import using_runtime
        with using_runtime(getattr(args, "runtime", None)):  # every measurement of this command, sweep jobs too
            emit(args.run(args), args)
    except CompressionError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if executor is not None:
            from compression.sweep import InProcessExecutor, set_default_executor
            set_default_executor(InProcessExecutor())
            executor.close()
    return 0
