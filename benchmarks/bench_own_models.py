"""Your own model through the commands, and which torchvision architectures each family takes.

Part `resnet18`: a torchvision ResNet-18 trained OUTSIDE this project (a plain PyTorch loop here,
inputs in [0, 1], no normalization) on a 10-class 32 x 32 RGB image folder made from Fashion-MNIST
(each image tinted with a random colour, so colour says nothing about the class; 2,500 train and
1,000 test images by default). Then, through `python -m compression` with `--weights ... --normalize
none`: evaluate (must equal the loop's accuracy to the image), 8-bit per-channel, structured 0.5 with
one fine-tuning epoch (the defaults: split auto, here train, and BatchNorm statistics re-estimated),
exits attached after layer1-3 with a threshold sweep, and prune -> quantize.

Part `torchvision`: every torchvision classification architecture (random init, 3 classes, the
smallest input it takes of 32 / 64 / 224, a handful of images): structured 0.5 and 8-bit each run
(MACs, bytes, and the model still predicts: finite logits of the right shape) or refuse in one line.
Accuracy and size numbers, not timings: they do not depend on the machine's load.

    python -m benchmarks own_models                 # both parts
    python -m benchmarks own_models:resnet18        # OWN_TRAIN=2500 OWN_TEST=1000 OWN_EPOCHS=5
    python -m benchmarks own_models:torchvision     # OWN_ARCH_TIMEOUT=600 seconds per architecture
    OWN_ARCHS=swin_t,maxvit_t python -m benchmarks own_models:torchvision   # re-check a few
    OWN_ARCHS=-vit_h_14,-regnet_y_128gf python -m benchmarks own_models:torchvision   # all but these

With OWN_ARCHS the rows are saved to results/own_models.torchvision+subset.json (the whole table's
file is kept).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS_DIR, parts

ROOT = Path(__file__).resolve().parent.parent


def make_folder(root: Path, train: int, test: int, seed: int = 0) -> Path:
    """Fashion-MNIST, each image tinted with a random colour and resized to 32 x 32 RGB PNGs."""
    from PIL import Image

    from compression.data import load_dataset
    if (root / "done").is_file():
        return root
    data = load_dataset("fashion-mnist")
    gen = torch.Generator().manual_seed(seed)
    for split, part, n in (("train", data.train, train), ("test", data.test, test)):
        for i in range(n):
            gray = part.images[i, 0].float() / 255  # (28, 28)
            tint = 0.3 + 0.7 * torch.rand(3, generator=gen)
            back = 0.3 * torch.rand(3, generator=gen)
            rgb = back.view(3, 1, 1) * (1 - gray) + tint.view(3, 1, 1) * gray  # ink in one colour, paper in another
            img = Image.fromarray((rgb.permute(1, 2, 0) * 255).round().byte().numpy()).resize((32, 32), Image.BILINEAR)
            folder = root / split / f"{int(part.labels[i])}-{data.classes[int(part.labels[i])].replace('/', '-')}"
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / f"{i:05d}.png")
    (root / "done").write_text("ok")
    return root


def train_outside(folder: Path, epochs: int, weights: Path) -> dict:
    """The user's own loop: torchvision ResNet-18, SGD, inputs = pixels / 255 (no normalization)."""
    import numpy
    import torchvision
    from PIL import Image

    def load(split: str):
        classes = sorted(p.name for p in (folder / split).iterdir())
        xs, ys = [], []
        for label, cls in enumerate(classes):
            for path in sorted((folder / split / cls).glob("*.png")):
                with Image.open(path) as im:
                    xs.append(torch.from_numpy(numpy.array(im.convert("RGB"))).permute(2, 0, 1))
                ys.append(label)
        return torch.stack(xs).float() / 255, torch.tensor(ys)
    x, y = load("train")
    tx, ty = load("test")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = epochs * ((len(x) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(128):
            xb = x[idx]
            flip = torch.rand(len(idx)) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
            loss = torch.nn.functional.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        right = int(sum((model(b).argmax(1) == t).sum() for b, t in zip(tx.split(256), ty.split(256))))
    torch.save(model.state_dict(), weights)
    return {"right": right, "n": len(ty), "accuracy": right / len(ty), "train_s": round(time.perf_counter() - start, 1)}


def cli(*argv: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "compression", *argv, "--json"], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def resnet18_rows() -> list[dict]:
    work = Path(os.environ.get("OWN_WORK") or RESULTS_DIR.parent / ".own_models")
    folder = make_folder(work / "folder", int(os.environ.get("OWN_TRAIN", 2500)), int(os.environ.get("OWN_TEST", 1000)))
    weights = work / "resnet18-outside.pt"
    loop_file = work / "loop.json"
    if not weights.is_file() or not loop_file.is_file():
        loop_file.write_text(json.dumps(train_outside(folder, int(os.environ.get("OWN_EPOCHS", 5)), weights)))
    loop = json.loads(loop_file.read_text())
    ref = ["--model", "torchvision:resnet18", "--weights", str(weights), "--normalize", "none",
           "--dataset", f"imagefolder:{folder}"]
    rows = [{"what": "own loop (outside the project)", "accuracy": round(loop["accuracy"], 4), "n": loop["n"],
             "right": loop["right"], "train_s": loop["train_s"]}]
    ev = cli("evaluate", *ref)[0]
    rows.append({"what": "evaluate --weights --normalize none", "accuracy": round(ev["accuracy"], 4),
                 "n": ev["accuracy_n"], "right": round(ev["accuracy"] * ev["accuracy_n"]),
                 "equal_to_loop": round(ev["accuracy"] * ev["accuracy_n"]) == loop["right"]})

    def row(what: str, r: dict) -> dict:
        b = r["baseline"]
        return {"what": what, "accuracy": round(r["accuracy"], 4), "n": r["accuracy_n"],
                "drop_points": round((b["accuracy"] - r["accuracy"]) * 100, 2),
                "bytes_ratio": round(r["size_bytes"] / b["size_bytes"], 3), "macs_ratio": round(r["macs"] / b["macs"], 3),
                "run_id": r.get("run_id")}
    rows.append(row("quantize 8-bit per-channel", cli("quantize", *ref, "--bits", "8")[0]))
    pruned = cli("prune", *ref, "--method", "structured", "--ratio", "0.5", "--finetune-epochs", "1")[0]
    rows.append({**row("prune structured 0.5 + 1 epoch (defaults)", pruned),  # split auto, BN re-estimated
                 "finetune_split": pruned["config"]["finetune_split"],
                 "recalibrate_bn": pruned["config"]["finetune_recalibrate_bn"]})
    for r in cli("early-exit", *ref, "--attach", "layer1,layer2,layer3", "--attach-epochs", "2", "--sweep",
                 "--points", "6"):
        rows.append({**row(f"exits layer1-3, threshold {r['config'].get('thresholds', r['config'])}", r),
                     "exit_shares": r.get("extra", {}).get("exit_shares")})
    for r in cli("pipeline", *ref, "--steps", "prune:structured:0.5:epochs=1,quantize:uniform:8"):
        rows.append(row(f"pipeline step {r.get('config', {}).get('step', '')}".strip(), r))
    rows.append(row("quantize run:<pruned> (chained)", cli("quantize", "--model", f"run:{pruned['run_id']}", "--bits", "8")[0]))
    return rows


# ---------------------------------------------------------------------------------------------
# every torchvision architecture

def one_architecture(arch: str) -> dict:
    """Structured 0.5 and 8-bit on `arch` (random init, 3 classes): numbers or the one-line refusal."""
    import torchvision.models as tvm

    from compression import CompressionError
    from compression.metrics import count_macs
    from compression.models import state_dict_bytes
    from compression.pruning.structured import prune_channels
    from compression.quantization.config import QuantConfig
    from compression.quantization.core import quantize
    from compression.torchvision_models import fixed_size
    row: dict = {"arch": arch}
    for side in (32, 64, 224):
        extra, side = fixed_size(arch, side)
        try:
            torch.manual_seed(0)
            model = tvm.get_model(arch, weights=None, num_classes=3, **extra).eval()
            with torch.no_grad():
                model(torch.rand(2, 3, side, side))
            break
        except Exception as exc:  # too small an input for this architecture: the next size
            row["input_note"] = str(exc).splitlines()[0][:100]
    else:
        row["structured"] = row["int8"] = f"refused: does not run at 224 px ({row.pop('input_note')})"
        return row
    row.pop("input_note", None)
    shape = (3, side, side)
    x = torch.rand(4, *shape)
    row.update(input=side, params=sum(p.numel() for p in model.parameters()), macs=count_macs(model, shape),
               bytes=len(state_dict_bytes(model)))

    def predicts(m) -> bool:
        with torch.no_grad():
            out = m.eval()(x)
        return tuple(out.shape) == (4, 3) and bool(torch.isfinite(out).all())
    try:
        pruned = prune_channels(model, 0.5, input_shape=shape)
        row.update(structured="runs", s_macs_ratio=round(count_macs(pruned, shape) / row["macs"], 3),
                   s_bytes_ratio=round(len(state_dict_bytes(pruned)) / row["bytes"], 3), s_predicts=predicts(pruned))
    except CompressionError as exc:
        row["structured"] = f"refused: {exc}"
    except Exception as exc:  # not refused in words: a failure the table shows as such
        row["structured"] = f"FAILS: {type(exc).__name__}: {str(exc).splitlines()[0][:140]}"
    try:
        q = quantize(model, QuantConfig(method="uniform", bits=8, granularity="channel"))
        row.update(int8="runs", q_bytes_ratio=round(len(q.artifact) / row["bytes"], 3), q_predicts=predicts(q.model),
                   q_coverage=q.coverage())
    except CompressionError as exc:
        row["int8"] = f"refused: {exc}"
    except Exception as exc:
        row["int8"] = f"FAILS: {type(exc).__name__}: {str(exc).splitlines()[0][:140]}"
    return row


def chosen_architectures() -> list[str]:
    """Every torchvision classifier, or OWN_ARCHS: a comma list of names, or of -names to leave out."""
    from compression.torchvision_models import classification_architectures
    every = classification_architectures()
    asked = [a.strip() for a in os.environ.get("OWN_ARCHS", "").split(",") if a.strip()]
    unknown = [a for a in asked if a.lstrip("-") not in every]
    if unknown:
        raise SystemExit(f"error: OWN_ARCHS names {unknown[0]!r}, not a torchvision classification architecture")
    if not asked:
        return every
    os.environ["BENCH_PARTS"] = "torchvision,subset"  # saved beside the whole table, not over it
    left_out = {a[1:] for a in asked if a.startswith("-")}
    named = [a for a in asked if not a.startswith("-")]
    return [a for a in (named or every) if a not in left_out]


def torchvision_rows() -> list[dict]:
    timeout = int(os.environ.get("OWN_ARCH_TIMEOUT", 600))
    rows = []
    for arch in chosen_architectures():
        start = time.monotonic()
        code = ("import json, sys; from benchmarks.bench_own_models import one_architecture; "
                f"print('ROW' + json.dumps(one_architecture({arch!r})))")
        try:
            out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("ROW")), None)
            rows.append(json.loads(line[3:]) if line else
                        {"arch": arch, "structured": f"FAILS: the process ended with code {out.returncode} "  # -9: killed
                                                     f"({(out.stderr.strip().splitlines() or ['no message'])[-1][:140]})"})
        except subprocess.TimeoutExpired:
            rows.append({"arch": arch, "structured": f"not measured: over {timeout} s on this CPU"})
        print(f"{time.monotonic() - start:.0f} s", json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def run() -> list[dict]:
    rows = []
    chosen = parts(["resnet18", "torchvision"])
    if "resnet18" in chosen:
        rows += resnet18_rows()
    if "torchvision" in chosen:
        rows += torchvision_rows()
    return rows
