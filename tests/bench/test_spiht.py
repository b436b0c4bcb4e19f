"""SPIHT on real crops: exact bit budget, embedded stream, rising quality, signed and 12-bit data, bad files."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image

from medinr.bench.spiht import Spiht, _Trees
from medinr.errors import BitstreamError
from medinr.metrics import psnr


@pytest.fixture(scope="module")
def cxr(shared_data) -> np.ndarray:
    return np.asarray(Image.open(shared_data / "cxr" / "test" / "00000001_000.png"))[400:464, 150:214].copy()


@pytest.fixture(scope="module")
def mr12(shared_data) -> np.ndarray:
    return pydicom.dcmread(shared_data / "mri" / "test" / "emri_small_head_12bit_10fr.dcm").pixel_array[5].copy()


def test_round_trip_meets_the_budget_and_quality_rises(cxr) -> None:
    codec = Spiht()
    results = []
    for rate in (0.25, 1.0, 4.0):
        data = codec.encode(cxr, rate, bits=8, signed=False)
        decoded = codec.decode(data, bits=8, signed=False)
        assert decoded.shape == cxr.shape and decoded.dtype == np.uint8
        bpp = 8 * len(data) / cxr.size
        assert rate - 8 / cxr.size <= bpp <= rate + 8 / cxr.size
        results.append(psnr(cxr, decoded))
    assert results[0] < results[1] < results[2] and results[2] > 45


def test_stream_is_embedded(cxr) -> None:
    codec = Spiht()
    high = codec.encode(cxr, 2.0, bits=8, signed=False)
    low = codec.encode(cxr, 0.5, bits=8, signed=False)
    assert high[11:len(low) - 1] == low[11:-1]  # same header fields except padding; the stream is a prefix


def test_signed_and_12_bit(mr12) -> None:
    codec = Spiht()
    signed = (mr12.astype(np.int16) - 700).astype(np.int16)
    for pixels, is_signed in ((mr12, False), (signed, True)):
        decoded = codec.decode(codec.encode(pixels, 3.0, bits=12, signed=is_signed), bits=12, signed=is_signed)
        assert decoded.dtype == (np.int16 if is_signed else np.uint16)
        assert psnr(pixels, decoded) > 35


def test_trees_cover_every_coefficient_once() -> None:
    trees = _Trees(32, 64, 3)
    seen = list(trees.roots())
    frontier = list(seen)
    while frontier:
        frontier = [c for k in frontier for c in trees.children(k)]
        seen += frontier
    assert sorted(seen) == list(range(32 * 64))


def test_truncated_header_is_rejected(cxr) -> None:
    with pytest.raises(BitstreamError):
        Spiht().decode(b"\x00" * 5, bits=8, signed=False)
