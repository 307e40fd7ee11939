"""Huffman decoding returns the symbols exactly; the stream is never longer than fixed width."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from compression.huffman import (MAX_CODE_LENGTH, code_lengths, fixed_width, huffman_decode, huffman_encode,
                                 huffman_table_size)


@given(alphabet=st.sampled_from([1, 2, 3, 16, 32, 256]), data=st.data())
@settings(max_examples=60, deadline=None)
def test_decode_is_exact_and_never_longer_than_fixed_width(alphabet, data):
    symbols = np.array(data.draw(st.lists(st.integers(0, alphabet - 1), max_size=400)), dtype=np.int64)
    blob = huffman_encode(symbols, alphabet)
    decoded, used = huffman_decode(blob + b"trailing bytes are not read")
    assert np.array_equal(decoded, symbols) and used == len(blob)
    stream = len(blob) - huffman_table_size(alphabet)
    assert stream <= -(-len(symbols) * fixed_width(alphabet) // 8)


def test_skewed_indices_take_close_to_their_entropy():
    # cluster indices of bell-shaped weights: Huffman's mean length is within 1 bit of the entropy
    rng = np.random.default_rng(0)
    symbols = np.clip(np.round(rng.normal(16, 3, 50_000)), 0, 31).astype(np.int64)
    p = np.bincount(symbols, minlength=32) / len(symbols)
    entropy = -(p[p > 0] * np.log2(p[p > 0])).sum()
    blob = huffman_encode(symbols, 32)
    bits_per_symbol = 8 * (len(blob) - huffman_table_size(32)) / len(symbols)
    assert entropy <= bits_per_symbol <= entropy + 1 and bits_per_symbol < 5


def test_code_lengths_are_a_complete_prefix_code_within_the_limit():
    freqs = np.array([2 ** i for i in range(40)])  # Fibonacci-like: unlimited Huffman would need 39 bits
    lengths = code_lengths(freqs)
    assert lengths.max() <= MAX_CODE_LENGTH
    assert math.isclose(sum(2.0 ** -int(n) for n in lengths), 1.0)  # Kraft equality: no wasted codes
    symbols = np.repeat(np.arange(40), 3)
    assert np.array_equal(huffman_decode(huffman_encode(symbols, 40))[0], symbols)


@pytest.mark.parametrize("symbols", [[], [5], [7] * 100])
def test_degenerate_streams(symbols):
    s = np.array(symbols, dtype=np.int64)
    blob = huffman_encode(s, 8)
    assert np.array_equal(huffman_decode(blob)[0], s)
    assert len(blob) - huffman_table_size(8) <= math.ceil(len(s) / 8)  # one bit per symbol
