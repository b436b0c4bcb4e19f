"""COIN on a real crop: float16 SIREN file of the expected size, deterministic decode, fitting helps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medinr.bench.coin import _HEADER, Coin, siren_parameters
from medinr.errors import BitstreamError, RateControlError
from medinr.metrics import psnr


@pytest.fixture(scope="module")
def cxr(shared_data) -> np.ndarray:
    return np.asarray(Image.open(shared_data / "cxr" / "test" / "00000001_000.png"))[400:432, 150:182].copy()


def test_round_trip_size_and_fitting(cxr) -> None:
    codec = Coin()
    codec.steps = 1
    untrained = codec.decode(codec.encode(cxr, 4.0, bits=8, signed=False), bits=8, signed=False)
    codec.steps = 150
    data = codec.encode(cxr, 4.0, bits=8, signed=False)
    model = codec.describe(data)
    assert len(data) == _HEADER.size + 2 * siren_parameters(model["width"], model["depth"])
    assert 8 * len(data) / cxr.size <= 4.0 and model["width"] == codec.width_for(4.0, cxr.size)
    decoded = codec.decode(data, bits=8, signed=False)
    assert decoded.dtype == np.uint8 and decoded.shape == cxr.shape
    np.testing.assert_array_equal(decoded, codec.decode(data, bits=8, signed=False))
    assert psnr(cxr, decoded) > psnr(cxr, untrained) + 1  # lr 2e-4 as published: slow, but it learns


def test_rate_points_are_network_sizes(cxr) -> None:
    codec = Coin()
    widths = [codec.width_for(r, cxr.size) for r in (1.0, 2.0, 4.0)]
    assert widths == sorted(widths) and len(set(widths)) == 3
    with pytest.raises(RateControlError):
        codec.width_for(0.05, cxr.size)


def test_corrupted_file_is_rejected(cxr) -> None:
    codec = Coin()
    codec.steps = 1
    data = codec.encode(cxr, 2.0, bits=8, signed=False)
    with pytest.raises(BitstreamError):
        codec.decode(data[:-2], bits=8, signed=False)
