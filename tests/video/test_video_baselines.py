"""Video anchors (x264, x265, per-frame JPEG 2000) on a small real cine clip: real bytes that decode to the
source's shape and dtype, bit depth chosen from the data, damaged files refused; video-unit rates."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from medinr.errors import BitstreamError
from medinr.io import read
from medinr.metrics import psnr
from medinr.video.baselines import VIDEO_BASELINES, get_video_baseline, sample_range
from medinr.video.metrics import mbps, video_report

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is not installed")


@pytest.fixture(scope="module")
def clip(shared_data: Path) -> np.ndarray:
    image = read(shared_data / "cine/train/SCD0000101_mid")
    return np.ascontiguousarray(image.pixels[:4, 96:160, 96:160])


def test_sample_range_codes_the_span_of_the_data(clip: np.ndarray) -> None:
    offset, bits, shift = sample_range(clip, max_bits=12)  # an int16 container holding 9-bit values
    assert (offset, bits, shift) == (int(clip.min()), 9, 0) and 256 <= np.ptp(clip) < 512
    assert sample_range(clip.astype(np.int32) * 64, max_bits=12)[1:] == (12, 3)


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_ffmpeg) if n.startswith("x26") else n
                                  for n in VIDEO_BASELINES if n != "nerv"])  # nerv: its own, shorter test
def test_round_trip_real_bytes(clip: np.ndarray, name: str) -> None:
    codec = get_video_baseline(name)
    fine, coarse = codec.run(clip, codec.sweep()[0]), codec.run(clip, codec.sweep()[-2])
    for coded in (fine, coarse):
        assert coded.decoded.shape == clip.shape and coded.decoded.dtype == clip.dtype
        np.testing.assert_array_equal(codec.decode(coded.data, clip.shape, clip.dtype), coded.decoded)
    assert len(fine.data) > len(coarse.data)
    assert psnr(clip, fine.decoded) > 38 and 15 < psnr(clip, coarse.decoded) < psnr(clip, fine.decoded) - 5


@needs_ffmpeg
def test_damaged_x265_file_is_a_bitstream_error(clip: np.ndarray) -> None:
    codec = get_video_baseline("x265-veryslow")
    data = codec.encode(clip, 22.0)
    with pytest.raises(BitstreamError):
        codec.decode(data[:3], clip.shape, clip.dtype)
    with pytest.raises(BitstreamError):
        codec.decode(data[:len(data) // 3], clip.shape, clip.dtype)


def test_damaged_jpeg2000_frames_file_is_a_bitstream_error(clip: np.ndarray) -> None:
    codec = get_video_baseline("jpeg2000-frames")
    data = codec.encode(clip, 16.0)
    with pytest.raises(BitstreamError):
        codec.decode(data[:-30], clip.shape, clip.dtype)


def test_video_report_rates_in_video_units(clip: np.ndarray) -> None:
    test = clip + np.int16(3)
    report = video_report(clip, test, num_bytes=1000, fps=25.0, fps_known=False, decode_seconds=0.4)
    assert report["bpp"] == pytest.approx(8000 / clip.size)
    assert report["mbps"] == pytest.approx(mbps(1000, 4, 25.0)) == pytest.approx(8000 * 25 / 4 / 1e6)
    assert report["fps_assumed"] and report["decode_ms_per_frame"] == pytest.approx(100.0)
    assert report["temporal_flicker"] == 0  # a constant error does not flicker
    assert len(report["psnr_per_frame"]) == 4 and report["psnr"] == pytest.approx(report["psnr_mean_frames"])


def test_nerv_round_trip_and_damage(clip: np.ndarray) -> None:
    from medinr.video.nerv import Nerv

    codec = Nerv()
    codec.steps = 30
    small = clip[:, :32, :32]
    coded = codec.run(small, 4.0)
    assert coded.decoded.shape == small.shape and coded.decoded.dtype == small.dtype
    assert psnr(small, coded.decoded) > 12  # 30 steps: fitted, far from converged
    assert len(codec.encode(small, 8.0)) > len(coded.data)  # more channels, more weights
    with pytest.raises(BitstreamError):
        codec.decode(coded.data[:12], small.shape, small.dtype)
    with pytest.raises(BitstreamError):
        codec.decode(coded.data[:-20], small.shape, small.dtype)
