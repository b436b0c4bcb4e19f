"""Baseline codecs on real crops: lossless exactness, lossy round trips, rate direction, rejections."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image

from medinr.bench import baselines
from medinr.bench.baselines import (
    BASELINES,
    UnsupportedInput,
    encode_to_bpp,
    from_unsigned,
    get_baseline,
    storage_dtype,
    to_unsigned,
)
from medinr.errors import MedinrError, RateControlError
from medinr.metrics import psnr_bits

LOSSLESS = [name for name, cls in BASELINES.items() if cls.lossless_rate is not None]


@pytest.fixture(scope="module")
def cxr8(shared_data) -> np.ndarray:
    """64x64 8-bit crop across the lung edge of a real NIH chest X-ray (values 45-193)."""
    return np.asarray(Image.open(shared_data / "cxr" / "test" / "00000001_000.png"))[400:464, 150:214].copy()


@pytest.fixture(scope="module")
def mr12(shared_data) -> np.ndarray:
    """One 64x64 frame of a real 12-bit (BitsStored) multi-frame head MR."""
    ds = pydicom.dcmread(shared_data / "mri" / "test" / "emri_small_head_12bit_10fr.dcm")
    assert ds.BitsStored == 12
    return ds.pixel_array[5].copy()


@pytest.fixture(scope="module")
def images(cxr8, mr12) -> dict[str, tuple[np.ndarray, int, bool]]:
    """(pixels, bits, signed): 8-bit CXR, 12-bit MR, and the MR as signed 12-bit values (shifted to go negative)."""
    return {
        "cxr8": (cxr8, 8, False),
        "mr12": (mr12, 12, False),
        "mr12-signed": (mr12.astype(np.int16) - 256, 12, True),
        "cxr8-signed": ((cxr8.astype(np.int16) - 128).astype(np.int8), 8, True),
    }


IMAGE_KEYS = ["cxr8", "mr12", "mr12-signed", "cxr8-signed"]


def test_all_codecs_are_available_here() -> None:
    for name in BASELINES:
        assert get_baseline(name).available() is None, name


@pytest.mark.parametrize("key", IMAGE_KEYS)
@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_is_exact(name: str, key: str, images) -> None:
    pixels, bits, signed = images[key]
    codec = get_baseline(name)
    data = codec.encode_lossless(pixels, bits=bits, signed=signed)
    out = codec.decode(data, bits=bits, signed=signed)
    assert out.dtype == storage_dtype(bits, signed) and out.shape == pixels.shape
    np.testing.assert_array_equal(out, pixels)
    assert 8 * len(data) / pixels.size < 2 * bits  # a real compressed file, not a raw dump


@pytest.mark.parametrize("key", IMAGE_KEYS)
@pytest.mark.parametrize("name", list(BASELINES))
def test_sweep_round_trips_and_rate_direction(name: str, key: str, images) -> None:
    pixels, bits, signed = images[key]
    codec = get_baseline(name)
    rates = codec.sweep(bits)
    assert rates == sorted(rates) and len(rates) >= 8
    sizes, quality = [], []
    for rate in rates:
        data = codec.encode(pixels, rate, bits=bits, signed=signed)
        out = codec.decode(data, bits=bits, signed=signed)
        assert out.dtype == storage_dtype(bits, signed) and out.shape == pixels.shape
        sizes.append(len(data))
        quality.append(psnr_bits(pixels, out, bits))
    more_bits = sizes if codec.rate_increases_bpp else sizes[::-1]
    assert all(np.diff(more_bits) >= 0), f"{name}: file sizes {sizes} against {codec.rate_param} {rates}"
    assert max(sizes) > 3 * min(sizes)  # the sweep spans a real range of rates
    assert max(quality) > 45.0  # the high-rate end is a faithful reconstruction (2^bits-1 peak)


def test_near_lossless_error_bound(images) -> None:
    pixels, bits, signed = images["mr12-signed"]
    codec = get_baseline("jpegls")
    for near in (1, 3, 10):
        out = codec.decode(codec.encode(pixels, near, bits=bits, signed=signed), bits=bits, signed=signed)
        assert np.abs(out.astype(np.int32) - pixels).max() <= near


def test_signed_offset_helpers_are_inverse() -> None:
    values = np.arange(-2048, 2048, dtype=np.int16).reshape(64, 64)
    shifted = to_unsigned(values, 12)
    assert shifted.dtype == np.uint16 and shifted.min() == 0 and shifted.max() == 4095
    np.testing.assert_array_equal(from_unsigned(shifted, 12), values)


def test_jpeg_rejects_16_bit(images) -> None:
    pixels = images["mr12"][0]
    codec = get_baseline("jpeg")
    reason = codec.supports(pixels, 16, False)
    assert reason and "12-bit" in reason
    with pytest.raises(UnsupportedInput, match="8- or 12-bit only"):
        codec.encode(pixels, 90, bits=16, signed=False)
    assert get_baseline("avif").supports(pixels, 16, False) is not None
    assert get_baseline("jpeg2000").supports(pixels, 16, False) is None


def test_jpeg_has_no_lossless_mode(cxr8) -> None:
    with pytest.raises(UnsupportedInput, match="no lossless"):
        get_baseline("jpeg").encode_lossless(cxr8, bits=8, signed=False)


@pytest.mark.parametrize(("pixels_of", "bits", "signed", "words"), [
    (lambda x: x[:16, :16].copy(), 8, False, "32 px"),
    (lambda x: x.astype(np.uint16) + 256, 8, False, "do not fit"),
    (lambda x: x.astype(np.float32), 8, False, "integer"),
    (lambda x: np.stack([x, x]), 8, False, "2D"),
    (lambda x: x, 17, False, "bits"),
])
def test_unsupported_inputs_say_why(cxr8, pixels_of, bits, signed, words) -> None:
    codec = get_baseline("jpeg2000")
    pixels = pixels_of(cxr8)
    assert words in (codec.supports(pixels, bits, signed) or "")
    with pytest.raises(UnsupportedInput, match=words):
        codec.encode(pixels, 10, bits=bits, signed=signed)


def test_missing_backend_is_reported_by_name(cxr8, monkeypatch) -> None:
    import imagecodecs

    monkeypatch.setattr(imagecodecs.AVIF, "available", False)
    codec = get_baseline("avif")
    assert "AVIF" in codec.available()
    with pytest.raises(UnsupportedInput, match="built without AVIF"):
        codec.encode(cxr8, 50, bits=8, signed=False)


def test_rate_out_of_range(cxr8) -> None:
    with pytest.raises(RateControlError, match="compression ratio"):
        get_baseline("jpeg2000").encode(cxr8, 0.5, bits=8, signed=False)


def test_unknown_baseline() -> None:
    with pytest.raises(MedinrError, match="unknown baseline"):
        get_baseline("webp2")


@pytest.mark.parametrize("name", ["jpeg2000", "jpegxl", "htj2k"])
def test_encode_to_bpp_hits_the_target(name: str, images) -> None:
    pixels, bits, signed = images["mr12"]
    codec = get_baseline(name)
    data, rate = encode_to_bpp(codec, pixels, 1.5, bits=bits, signed=signed)
    assert 8 * len(data) / pixels.size == pytest.approx(1.5, rel=0.05)
    assert data == codec.encode(pixels, rate, bits=bits, signed=signed)


def test_encode_to_bpp_with_integer_quality(cxr8) -> None:
    codec = get_baseline("jpeg")
    target = 8 * len(codec.encode(cxr8, 75, bits=8, signed=False)) / cxr8.size
    data, rate = encode_to_bpp(codec, cxr8, target, bits=8, signed=False)
    assert rate == int(rate) and 8 * len(data) / cxr8.size == pytest.approx(target, rel=0.05)


def test_encode_to_bpp_out_of_reach(cxr8) -> None:
    with pytest.raises(RateControlError, match="closest"):
        encode_to_bpp(get_baseline("jpeg"), cxr8, 0.001, bits=8, signed=False)


def test_registry_is_complete() -> None:
    assert set(BASELINES) == {"jpeg", "jpeg2000", "htj2k", "jpegls", "jpegxl", "avif"}
    assert all(issubclass(cls, baselines.BaselineCodec) for cls in BASELINES.values())
