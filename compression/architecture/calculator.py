"""The calculator: weights and MACs of standard against depthwise-separable convolution (k*k*I*O
against k*k*I + I*O) and of a Linear layer against its rank-K factors. Pure arithmetic, no model
work."""

from __future__ import annotations

from dataclasses import dataclass

from compression import CompressionError

def _area(k: int | tuple[int, int]) -> int:
    return k[0] * k[1] if isinstance(k, tuple) else k * k


def conv_params(k: int | tuple[int, int], i: int, o: int, *, bias: bool = False) -> int:
    """Standard convolution: k*k*I*O weights (+ O biases)."""
    return _area(k) * i * o + (o if bias else 0)


def separable_conv_params(k: int | tuple[int, int], i: int, o: int, *, bias: bool = False,
                          batchnorm: bool = False) -> int:
    """Depthwise (k*k*I) + pointwise (I*O) weights; the bias sits on the pointwise step (+O),
    the BatchNorm between the two steps (MobileNet) adds a scale and a shift per channel (+2I)."""
    return _area(k) * i + i * o + (o if bias else 0) + (2 * i if batchnorm else 0)


def conv_macs(k: int | tuple[int, int], i: int, o: int, h: int, w: int | None = None) -> int:
    """Multiply-accumulates of a standard convolution with an h x w output: k*k*I*O per position."""
    return _area(k) * i * o * h * (h if w is None else w)


def separable_conv_macs(k: int | tuple[int, int], i: int, o: int, h: int, w: int | None = None) -> int:
    """(k*k*I + I*O) per output position: the depthwise output has the same size as the original's."""
    return (_area(k) * i + i * o) * h * (h if w is None else w)


def separable_ratio(k: int, o: int) -> float:
    """The closed form of separable / standard (weights and MACs, no bias): 1/O + 1/k^2."""
    return 1 / o + 1 / (k * k)


def linear_params(m: int, n: int, *, bias: bool = True) -> int:
    """An N -> M Linear layer: M*N weights (+ M biases)."""
    return m * n + (m if bias else 0)


def low_rank_params(m: int, n: int, rank: int, *, bias: bool = True) -> int:
    """(M x K) @ (K x N): K*(M + N) weights (+ M biases, kept on the second factor)."""
    return rank * (m + n) + (m if bias else 0)


def low_rank_saves(m: int, n: int, rank: int) -> bool:
    """Factorizing saves weights only while K*(M + N) < M*N."""
    return rank * (m + n) < m * n


@dataclass(frozen=True)
class ConvComparison:
    k: int
    i: int
    o: int
    size: int                # output feature map is size x size
    bias: bool
    standard_params: int
    separable_params: int
    standard_macs: int
    separable_macs: int
    closed_form: float       # 1/O + 1/k^2

    @property
    def param_ratio(self) -> float:
        return self.separable_params / self.standard_params

    @property
    def mac_ratio(self) -> float:
        return self.separable_macs / self.standard_macs


CALCULATOR_LIMITS = {"k": (1, 15), "i": (1, 4096), "o": (1, 4096), "size": (1, 1024)}


def compare_conv(k: int, i: int, o: int, size: int = 1, *, bias: bool = False) -> ConvComparison:
    """Standard vs depthwise-separable convolution: weights, MACs and the closed-form ratio."""
    for name, value in (("k", k), ("i", i), ("o", o), ("size", size)):
        lo, hi = CALCULATOR_LIMITS[name]
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise CompressionError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return ConvComparison(
        k=k, i=i, o=o, size=size, bias=bias,
        standard_params=conv_params(k, i, o, bias=bias),
        separable_params=separable_conv_params(k, i, o, bias=bias),
        standard_macs=conv_macs(k, i, o, size), separable_macs=separable_conv_macs(k, i, o, size),
        closed_form=separable_ratio(k, o))
