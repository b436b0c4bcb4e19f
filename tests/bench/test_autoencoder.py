"""Autoencoder baseline on real crops: round trip through the real file, rate control by the latent step,
12-bit input, damaged files and a missing network rejected, and the benchmark finds it."""

from __future__ import annotations

import numpy as np
import pytest

from medinr.bench.autoencoder import AutoEncoderCodec
from medinr.bench.runner import BenchConfig, get_codec
from medinr.errors import BitstreamError, InitError
from medinr.io import read
from medinr.metrics import psnr


@pytest.fixture(scope="module")
def cxr(shared_data) -> np.ndarray:
    return read(shared_data / "cxr" / "train" / "00870a9c.jpg").pixels[900:964, 700:764].copy()


@pytest.fixture(scope="module")
def mri12(shared_data) -> np.ndarray:
    image = read(shared_data / "mri" / "test" / "emri_small_head_12bit_10fr.dcm")
    assert image.bits_stored == 12
    return image.pixels[5, :, :60].copy()  # 60 px wide: not a multiple of 16, exercises padding


def test_round_trip_and_rate_control(cxr) -> None:
    codec = AutoEncoderCodec()
    steps = codec.sweep(8)
    files = [codec.encode(cxr, q, bits=8, signed=False) for q in steps]
    sizes = [len(f) for f in files]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 2 * sizes[-1]  # finer steps, larger files
    decoded = codec.decode(files[0], bits=8, signed=False)
    assert decoded.dtype == np.uint8 and decoded.shape == cxr.shape
    np.testing.assert_array_equal(decoded, codec.decode(files[0], bits=8, signed=False))
    quality = [psnr(cxr, codec.decode(f, bits=8, signed=False)) for f in files[::3]]
    assert quality == sorted(quality, reverse=True) and quality[0] > 27  # an untrained network: about 11 dB


def test_twelve_bit_slice(mri12) -> None:
    codec = AutoEncoderCodec()
    data = codec.encode(mri12, codec.sweep(12)[0], bits=12, signed=False)
    decoded = codec.decode(data, bits=12, signed=False)
    assert decoded.dtype == np.uint16 and decoded.shape == mri12.shape
    assert mri12.min() <= decoded.min() and decoded.max() <= mri12.max()
    assert psnr(mri12, decoded) > 20  # a noisy 64 px head slice: about 24.7 dB


def test_damaged_file_and_missing_network(cxr, tmp_path) -> None:
    codec = AutoEncoderCodec()
    data = codec.encode(cxr, 1.0, bits=8, signed=False)
    with pytest.raises(BitstreamError):
        codec.decode(data[:-5], bits=8, signed=False)
    with pytest.raises(BitstreamError):
        codec.decode(b"\xff" * 3, bits=8, signed=False)
    codec.weights = tmp_path / "absent.pt"
    with pytest.raises(InitError, match="absent.pt"):
        codec.decode(data, bits=8, signed=False)


def test_benchmark_codec() -> None:
    assert isinstance(get_codec("autoencoder", BenchConfig()), AutoEncoderCodec)
