"""Entropy coding of integer tensors round-trips exactly and costs about the source entropy."""

from __future__ import annotations

import numpy as np
import pytest

from medinr.entropy import decode_tensors, encode_tensors, fit_model
from medinr.errors import BitstreamError


def test_round_trip_of_mixed_tensors() -> None:
    rng = np.random.default_rng(1)
    tensors = [np.rint(rng.laplace(0, 4, 3000)).astype(np.int64), np.rint(rng.normal(0, 20, (17, 9))).astype(np.int64),
               np.zeros(11, np.int64), np.array([-3]), np.zeros(0, np.int64), np.full(5, 7)]
    decoded = decode_tensors(encode_tensors(tensors), [t.size for t in tensors])
    for original, back in zip(tensors, decoded):
        np.testing.assert_array_equal(original.ravel(), back)


def test_laplace_data_costs_close_to_its_entropy() -> None:
    rng = np.random.default_rng(2)
    symbols = np.rint(rng.laplace(0, 3, 20000)).astype(np.int64)
    values, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    entropy_bits = -(p * np.log2(p)).sum() * symbols.size
    coded_bits = 8 * len(encode_tensors([symbols]))
    assert coded_bits < 1.02 * entropy_bits + 64


def test_family_choice_follows_the_data() -> None:
    rng = np.random.default_rng(3)
    assert fit_model(np.rint(rng.normal(0, 30, 5000)).astype(int)).family == 1
    assert fit_model(np.rint(rng.laplace(0, 30, 5000)).astype(int)).family == 0


def test_truncated_side_information_raises() -> None:
    data = encode_tensors([np.arange(-50, 50)])
    with pytest.raises(BitstreamError):
        decode_tensors(data[:2], [100])
