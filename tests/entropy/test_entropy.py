"""Entropy coding of integer tensors round-trips exactly and costs about the source entropy."""

from __future__ import annotations

import numpy as np
import pytest

from medinr.entropy import (
    COMPACT_MARK,
    decode_tensors,
    encode_tensors,
    fit_model,
    scale_from_index,
)
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


def test_compact_side_information_is_two_bytes_a_tensor_and_one_for_an_all_zero_tensor() -> None:
    rng = np.random.default_rng(4)
    coded = [np.rint(rng.laplace(0, 3, 40)).astype(np.int64) for _ in range(15)]
    assert all(np.abs(t).max() < 128 for t in coded)  # one-byte bounds
    data = encode_tensors(coded)
    assert data[0] == COMPACT_MARK and (len(data) - 1 - 2 * 15) % 4 == 0  # mark, 2 bytes a tensor, 32-bit words
    assert encode_tensors([*coded, np.zeros(9, np.int64)]) == data[:31] + bytes([0]) + data[31:]
    assert decode_tensors(encode_tensors([np.zeros(9, np.int64)]), [9])[0].tolist() == [0] * 9


def test_legacy_side_information_still_decodes() -> None:
    """Streams before format 1.5: flags, scale index, low and span (svarints) per tensor, then the range coder."""
    import constriction

    symbols = np.array([-2, 0, 1, 3, -1], dtype=np.int32)
    coder = constriction.stream.queue.RangeEncoder()
    coder.encode(symbols, constriction.stream.model.QuantizedLaplace(-2, 3, 0.0, scale_from_index(100)))
    legacy = bytes([0, 0, 0, 0]) + bytes([1, 100, 3, 10]) + coder.get_compressed().tobytes()  # zeros(3), symbols
    zeros, back = decode_tensors(legacy, [3, 5])
    np.testing.assert_array_equal(zeros, 0)
    np.testing.assert_array_equal(back, symbols)


@pytest.mark.parametrize("side", [bytes([COMPACT_MARK, 0x80, 5]), bytes([COMPACT_MARK, 0x10, 0]),
                                  bytes([COMPACT_MARK, 0x10])])
def test_corrupted_compact_side_information_raises(side: bytes) -> None:
    """A scale code of 0 on a coded tensor, a bound of 0, a missing bound."""
    with pytest.raises(BitstreamError):
        decode_tensors(side + bytes(4), [10])
