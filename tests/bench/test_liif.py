"""LIIF baseline on real crops: JPEG 2000 base layer plus header, the trained decoder beats plain bilinear
upsampling of the same base layer, 12-bit input, damaged files rejected, and the benchmark finds it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from medinr.bench.baselines import Jpeg2000
from medinr.bench.liif import LiifCodec, downscale
from medinr.bench.runner import BenchConfig, get_codec
from medinr.errors import BitstreamError
from medinr.io import read
from medinr.metrics import psnr


@pytest.fixture(scope="module")
def mri(shared_data) -> np.ndarray:
    """65 x 64 px of an 8-bit T1 slice: an odd side exercises padding and cropping."""
    return read(shared_data / "mri" / "train" / "colin27_ch2_1mm.nii.gz").pixels[90, 60:125, 70:134].copy()


def test_round_trip_beats_bilinear_base(mri) -> None:
    codec = LiifCodec()
    ratio = codec.sweep(8)[1]
    data = codec.encode(mri, ratio, bits=8, signed=False)
    base = Jpeg2000().encode(downscale(mri), ratio, bits=8, signed=False)
    assert data.endswith(base) and len(data) - len(base) <= 8  # the base layer plus a tiny header
    decoded = codec.decode(data, bits=8, signed=False)
    assert decoded.dtype == np.uint8 and decoded.shape == mri.shape
    np.testing.assert_array_equal(decoded, codec.decode(data, bits=8, signed=False))
    low = torch.from_numpy(Jpeg2000().decode(base, bits=8, signed=False).astype(np.float32))[None, None]
    bilinear = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)[0, 0, :65].numpy()
    assert psnr(mri, decoded) > psnr(mri, np.rint(bilinear)) + 1  # about +2.6 dB


def test_rate_and_twelve_bits(shared_data) -> None:
    image = read(shared_data / "mri" / "test" / "emri_small_head_12bit_10fr.dcm")
    frame = image.pixels[5]
    codec = LiifCodec()
    sizes = [len(codec.encode(frame, r, bits=12, signed=False)) for r in codec.sweep(12)[:3]]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    decoded = codec.decode(codec.encode(frame, codec.sweep(12)[0], bits=12, signed=False), bits=12, signed=False)
    assert decoded.dtype == np.uint16 and decoded.shape == frame.shape and decoded.max() < 4096
    assert psnr(frame, decoded) > 25


def test_damaged_file(mri) -> None:
    codec = LiifCodec()
    data = codec.encode(mri, 10.0, bits=8, signed=False)
    for bad in (data[:2], data[:-20], data[:3] + bytes(len(data) - 3)):
        with pytest.raises(BitstreamError):
            codec.decode(bad, bits=8, signed=False)


def test_benchmark_codec() -> None:
    assert isinstance(get_codec("liif", BenchConfig()), LiifCodec)
