"""Bit packing round-trips exactly and takes exactly ceil(n * b / 8) bytes."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from compression import CompressionError
from compression.packing import (pack_bits, pack_ternary, packed_length, positions_from_gaps, sparse_gaps,
                                 ternary_length, unpack_bits, unpack_ternary)


@pytest.mark.parametrize("bits", list(range(1, 9)) + [16])
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_pack_round_trips_for_every_width(bits, data):
    values = np.array(data.draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=300)), dtype=np.int64)
    blob = pack_bits(values, bits)
    assert len(blob) == packed_length(len(values), bits) == -(-len(values) * bits // 8)
    assert np.array_equal(unpack_bits(blob, bits, len(values)), values)


def test_values_out_of_range_are_refused():
    with pytest.raises(CompressionError, match=r"\[0, 7\]"):
        pack_bits(np.array([8]), 3)
    with pytest.raises(CompressionError, match="1..16"):
        pack_bits(np.array([1]), 17)


@given(st.lists(st.integers(-1, 1), max_size=500))
@settings(max_examples=50, deadline=None)
def test_ternary_takes_1_6_bits_per_value(values):
    values = np.array(values, dtype=np.int64)
    blob = pack_ternary(values)
    assert len(blob) == ternary_length(len(values)) == -(-len(values) // 5)  # 5 trits per byte
    assert np.array_equal(unpack_ternary(blob, len(values)), values)


@pytest.mark.parametrize("index_bits", [1, 2, 4, 8])
@given(mask=st.lists(st.booleans(), max_size=400), density=st.sampled_from([0.01, 0.1, 0.5]))
@settings(max_examples=25, deadline=None)
def test_sparse_gaps_round_trip(index_bits, mask, density):
    rng = np.random.default_rng(len(mask))
    m = np.array(mask, dtype=bool) & (rng.random(len(mask)) < density * 2)
    gaps = sparse_gaps(m, index_bits)
    assert gaps.max(initial=0) < (1 << index_bits)  # every gap fits its width
    assert np.array_equal(positions_from_gaps(gaps, index_bits), np.flatnonzero(m))
    # one entry per kept position plus one filler per full span skipped
    assert (gaps != 0).sum() == m.sum()
