"""A folder of real-sized photos: torchvision ResNet-18 (random init: the timing does not depend on
the weights) at 224 x 224 on a 10-class image folder of 500 x 375 JPEGs (smooth noise plus a
shape per class), 2,000 images (half train, half test; BENCH_IMAGEFOLDER_IMAGES sets the number).

Each row is a fresh process (its peak RSS is its own; the first load finds no decoded cache):
- decode: the first load (every JPEG decoded at 224 px by the thread pool, the cache written);
- load from cache: the same folder again (no image file read);
- home baseline: what the home page measures (accuracy on every test image, MACs, batch-1
  latency), with the default memory budget (the splits in memory) and with 1 MiB (on disk, read a
  batch at a time), beside the peak of the imports alone;
- slider first numbers, after the home baseline (as in the app: its logits and rate seed the
  preview) and cold: the Pruning slider's first stage (unstructured 0.5: accuracy on the preview
  sample with its interval, counts, the file's bytes), from the move to the numbers, its image
  count (from the measured throughput: compression.preview_subset), then a second move (0.3: the
  count is known, the baseline's sample logits kept), and the full result of the first.
Target: first numbers <= 1.5 s. Parts: decode, home, slider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import common

IMAGES = int(os.environ.get("BENCH_IMAGEFOLDER_IMAGES", "2000"))
CLASSES = 10
SIDE = 224
MODEL = "torchvision:resnet18"


def make_folder(root: Path, images: int = IMAGES, classes: int = CLASSES, seed: int = 0) -> Path:
    """train/ and test/ of `classes` classes, images // 2 each, 500 x 375 JPEGs (quality 90)."""
    import numpy as np
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    per = max(1, images // (2 * classes))
    for split in ("train", "test"):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per):
                coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)  # smooth background, like a photo's
                img = Image.fromarray(coarse).resize((500, 375), Image.BICUBIC)
                fine = np.asarray(img, dtype=np.int16) + rng.integers(-20, 21, (375, 500, 3))
                img = Image.fromarray(np.clip(fine, 0, 255).astype(np.uint8))
                draw = ImageDraw.Draw(img)
                x, y = rng.integers(20, 300), rng.integers(20, 200)
                w, h = rng.integers(60, 180, 2)
                box, colour = [x, y, x + w, y + h], (c * 25, 255 - c * 25, (c * 97) % 256)  # shape and colour: the class
                if c % 3 == 0:
                    draw.ellipse(box, fill=colour)
                elif c % 3 == 1:
                    draw.rectangle(box, fill=colour)
                else:
                    draw.chord(box, 0, 180 + 18 * c, fill=colour)
                img.save(folder / f"{i:05d}.jpg", quality=90)
    return root


def _child(kind: str, folder: str, home: str) -> None:
    """One measurement in this (fresh) process; prints one JSON object."""
    import resource
    import time
    import torch
    from compression.data import load_dataset
    out: dict = {}
    if kind == "imports":  # what the process holds before any image: the floor under every peak below
        import torchvision  # noqa: F401
        import compression.refs  # noqa: F401
        print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    name = f"imagefolder:{folder}?size={SIDE}"
    start = time.perf_counter()
    data = load_dataset(name)
    out["load_s"] = time.perf_counter() - start
    out["test_images"], out["train_images"] = len(data.test), len(data.train) + len(data.val)
    out["on_disk"] = data.test.on_disk
    if kind == "home":
        from compression.refs import baseline, resolve
        start = time.perf_counter()
        resolved = resolve(MODEL, data, device="cpu")
        m = baseline(resolved, "cpu")
        out.update(home_s=time.perf_counter() - start, accuracy_n=m.accuracy_n, macs=m.macs,
                   latency_ms=m.latency_ms)
    elif kind in ("slider", "slider-cold"):
        from compression.metrics import wilson_interval
        from compression.pruning import PruneConfig, staged_prune
        from compression.refs import baseline, resolve
        resolved = resolve(MODEL, data, device="cpu")
        if kind == "slider":  # as in the app: the home page measured the baseline before the slider moves
            start = time.perf_counter()
            baseline(resolved, "cpu")
            out["home_s"] = time.perf_counter() - start
        for label, ratio in (("first", 0.5), ("second", 0.3)):
            start = time.perf_counter()
            stages = staged_prune(MODEL, data, PruneConfig("unstructured", ratio, "layer"), model=resolved.model)
            stage = next(stages)
            out[f"{label}_s"] = time.perf_counter() - start
            if stage.final:  # a test split no larger than the preview: one stage, every test image
                m = stage.value.result.metrics
                out[f"{label}_n"], out[f"{label}_interval"] = m.accuracy_n, list(wilson_interval(m.accuracy, m.accuracy_n))
            else:
                out[f"{label}_n"], out[f"{label}_interval"] = stage.value.accuracy_n, list(stage.value.interval)
            if label == "first":
                for stage in stages:
                    pass
                out["full_s"] = time.perf_counter() - start
            else:
                stages.close()
        if kind == "slider":  # the floor under any first numbers: one evaluation of the 100 preview images
            from compression.preview_subset import MIN_IMAGES, preview_indices
            from compression.training import predict
            sample = data.test.take(preview_indices(data.test.labels, MIN_IMAGES))
            times = []
            for _ in range(3):
                start = time.perf_counter()
                predict(resolved.model, data, sample)
                times.append(time.perf_counter() - start)
            out["floor_s"] = sorted(times)[1]
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["torch_threads"] = torch.get_num_threads()
    print(json.dumps(out))


def _run_child(kind: str, folder: Path, home: Path, budget: str | None = None) -> dict:
    env = {**os.environ, "COMPRESSION_HOME": str(home), "COMPRESSION_WARM": "0"}
    env.pop("COMPRESSION_PREVIEW_IMAGES", None)  # the count from the measured throughput, as in the app
    if budget:
        env["COMPRESSION_MEMORY_BUDGET"] = budget
    code = f"from benchmarks.bench_imagefolder import _child; _child({kind!r}, {str(folder)!r}, {str(home)!r})"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False,
                          cwd=str(Path(__file__).resolve().parent.parent))
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> list[dict]:
    chosen = common.parts(["decode", "home", "slider"])
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-imagefolder-") as tmp:
        folder, home = make_folder(Path(tmp) / "photos"), Path(tmp) / "home"
        size_mb = sum(p.stat().st_size for p in folder.rglob("*.jpg")) / 2 ** 20
        what = f"{IMAGES:,} JPEGs 500x375 ({size_mb:.0f} MB) -> {SIDE} px"
        first = _run_child("load", folder, home)  # decodes (the cache is empty), whatever parts are chosen
        if "decode" in chosen:
            again = _run_child("load", folder, home)
            rows.append({"what": f"decode: first load, {what}", "seconds": first["load_s"],
                         "images/s": (first["test_images"] + first["train_images"]) / first["load_s"],
                         "peak RSS MiB": first["peak_rss_mib"]})
            rows.append({"what": "load again (decoded cache)", "seconds": again["load_s"],
                         "peak RSS MiB": again["peak_rss_mib"]})
        if "home" in chosen:
            floor = _run_child("imports", folder, home)["peak_rss_mib"]
            rows.append({"what": "python with torch, torchvision and compression imported (no image)", "peak RSS MiB": floor})
            for budget, label in ((None, "splits in memory"), ("1M", "budget 1 MiB: every split on disk, per batch")):
                r = _run_child("home", folder, home, budget)
                rows.append({"what": f"home baseline {MODEL} ({label})", "seconds": r["home_s"],
                             "test images": r["accuracy_n"], "on disk": r["on_disk"],
                             "MACs": r["macs"], "latency ms": r["latency_ms"], "peak RSS MiB": r["peak_rss_mib"]})
        if "slider" in chosen:
            for kind, when in (("slider", "after the home baseline"), ("slider-cold", "cold, no home baseline")):
                r = _run_child(kind, folder, home)
                for label, ratio in (("first", 0.5), ("second", 0.3)):
                    lo, hi = r[f"{label}_interval"]
                    rows.append({"what": f"slider {label} move ({when}): unstructured {ratio}, first numbers "
                                         "(target <= 1.5 s)", "seconds": r[f"{label}_s"], "test images": r[f"{label}_n"],
                                 "interval": f"{lo * 100:.1f}-{hi * 100:.1f} %", "peak RSS MiB": r["peak_rss_mib"]})
                rows.append({"what": f"slider first move ({when}): full result (every test image, latency)",
                             "seconds": r["full_s"], "test images": r["test_images"]})
                if "floor_s" in r:
                    rows.append({"what": f"the floor: {MODEL} evaluating the preview's minimum of 100 images "
                                         "(median of 3)", "seconds": r["floor_s"], "test images": 100})
    return rows
