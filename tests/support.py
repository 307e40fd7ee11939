"""Helpers shared by the tests of torchvision / entry-point references (test_method_contract,
test_every_page_every_model). A module of its own, not conftest: tests/e2e has a conftest too, and
`from conftest import ...` gets whichever of the two pytest imported first."""

import contextlib

import pytest


def write_tinted_folder(root, *, classes: int, train: int, test: int, tint) -> str:
    """An `imagefolder:` dataset of RGB 32x32 PNGs: class c is a tint (`tint(c)` -> (channel, value))
    plus noise; returns its reference."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            channel, value = tint(c)
            for i in range(n):
                img = np.zeros((32, 32, 3), np.int64)
                img[..., channel] = value
                img += rng.integers(0, 60, (32, 32, 3))
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"{i}.png")
    return f"imagefolder:{root}"


@contextlib.contextmanager
def quick_cpu_timing():
    """Latency timed on 3 forwards (3 interleaved rounds beside the baseline) and one intra-op thread (on 2 busy shared cores, two threads
    that wait for each other make a resnet18 forward ~15x slower): for tests that check what a
    method did, not how fast it runs."""
    import torch

    import compression.metrics as metrics
    import compression.timing as timing
    real, threads = metrics.latency_ms, torch.get_num_threads()

    def quick(model, input_shape, device="cpu", *, batch_size=1, warmup=10, repeats=50):
        return real(model, input_shape, device, batch_size=batch_size, warmup=1, repeats=3)
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(metrics, "latency_ms", quick)
            # a result and its baseline timed side by side: 3 rounds of 1 call after 1 warm-up each
            mp.setattr(timing, "ROUNDS", 3)
            mp.setattr(timing, "CALLS", 1)
            mp.setattr(timing, "WARMUP", 1)
            yield
    finally:
        torch.set_num_threads(threads)


def without_a_cxx_compiler(monkeypatch):
    """torch.compile fails as it does on a machine without a C++ compiler (compiling takes minutes
    here): tests of the all-runtimes plumbing, and of what a runtime that cannot run says."""
    import compression.runtimes as runtimes

    def no_compiler(model, x):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")
    monkeypatch.setattr(runtimes, "_compiled", no_compiler)


def every_runtime_table(at, job_key: str, column: str):
    """Press "Time on every runtime" under a page's result, wait for its job (quick timing) and
    return the table drawn (the dataframe that has `column`, e.g. "result vs teacher")."""
    (button,) = [b for b in at.button if b.label == "Time on every runtime"]
    with quick_cpu_timing():
        button.click().run()
        at.session_state[job_key].wait(300)
    at.run()
    assert not at.exception
    return next(d.value for d in at.dataframe if column in d.value.columns)


def cli_in_process(*args, home=None, env=None):
    """`python -m compression ARGS` run in this process (main(argv) with stdout/stderr captured):
    a subprocess costs ~4 s of imports on this machine, so the tests of what one command prints
    use this and a few keep the real subprocess. Returns (returncode, stdout, stderr) as
    subprocess.CompletedProcess does."""
    import io
    import subprocess
    from contextlib import redirect_stderr, redirect_stdout

    from compression.cli import main
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**(env or {}), **({"COMPRESSION_HOME": str(home)} if home is not None else {})}.items():
            mp.setenv(key, value)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse refusals
                code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["python", "-m", "compression", *args], code, out.getvalue(), err.getvalue())


COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def colour_folder(root):
    """A 3-class image folder of 32 x 32 PNGs in shades of red, green and blue (20 train, 6 test
    images per class): a user's own data for the own-model tests."""
    from PIL import Image
    for split, n in (("train", 20), ("test", 6)):
        for cls, colour in COLOURS.items():
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                shade = tuple(max(0, min(255, c + 9 * (i % 5) - 18)) for c in colour)
                Image.new("RGB", (32, 32), shade).save(root / split / cls / f"{i}.png")
    return root
