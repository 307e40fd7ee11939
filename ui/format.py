"""Numbers with units, the same way on every page."""

from __future__ import annotations

from compression.metrics import wilson_interval


def fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}" if n / size < 10 else f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def fmt_count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"


def fmt_pct(x: float, digits: int = 2) -> str:
    return f"{x * 100:.{digits}f} %"


def fmt_accuracy_ci(accuracy: float, n: int) -> str:
    lo, hi = wilson_interval(accuracy, n)
    return f"95% CI {lo * 100:.2f}–{hi * 100:.2f} % on {n:,} test images"


def fmt_ms(ms: float) -> str:
    return f"{ms * 1000:.0f} µs" if ms < 1 else f"{ms:.2f} ms"


def fmt_ratio(new: float, old: float) -> str:
    """'0.25x' (smaller is better for size, MACs, latency)."""
    return f"{new / old:.3g}x" if old else "n/a"
