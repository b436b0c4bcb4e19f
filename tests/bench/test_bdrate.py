"""Bjontegaard deltas: known shifts, curve cleaning, refusals, and real codec curves."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest

from medinr.bench.baselines import get_baseline
from medinr.bench.bdrate import bd_psnr, bd_rate, clean_curve
from medinr.metrics import psnr

ANCHOR = [(0.1, 30.0), (0.2, 33.5), (0.4, 36.2), (0.8, 39.9), (1.6, 42.3), (3.2, 46.0)]


def test_curve_against_itself_is_zero() -> None:
    assert bd_rate(ANCHOR, ANCHOR).value == pytest.approx(0.0, abs=1e-9)
    assert bd_psnr(ANCHOR, ANCHOR).value == pytest.approx(0.0, abs=1e-9)


def test_half_the_rate_is_minus_fifty_percent() -> None:
    half = [(r / 2, d) for r, d in ANCHOR]
    result = bd_rate(ANCHOR, half)
    assert result.value == pytest.approx(-50.0, abs=1e-6)
    assert result.unit == "%" and result.overlap == (30.0, 46.0) and result.points == (6, 6)
    assert bd_rate(half, ANCHOR).value == pytest.approx(100.0, abs=1e-6)


def test_one_db_better_is_plus_one_db() -> None:
    better = [(r, d + 1.0) for r, d in ANCHOR]
    result = bd_psnr(ANCHOR, better)
    assert result.value == pytest.approx(1.0, abs=1e-9)
    assert result.unit == "dB" and result.overlap == (0.1, 3.2)


def test_cleaning_drops_lossless_and_non_monotonic_points_and_says_so() -> None:
    test = [(0.15, 31.0), (0.3, 30.5), (0.5, 36.0), (0.9, 40.0), (5.0, math.inf), (0.1, 29.0)]
    rates, psnrs, notes = clean_curve(test, "test")
    assert list(rates) == [0.1, 0.15, 0.5, 0.9]
    assert np.all(np.diff(psnrs) > 0)
    assert any("non-finite" in n for n in notes) and any("0.3 bpp" in n for n in notes)
    result = bd_rate(ANCHOR, test)
    assert result.value is not None and result.notes == tuple(notes)


def test_no_overlap_gives_none_with_reason() -> None:
    high = [(4.0, 50.0), (8.0, 55.0)]
    result = bd_rate(ANCHOR, high)
    assert result.value is None and "do not overlap" in result.reason


def test_too_few_points_give_none_with_reason() -> None:
    assert "fewer than 2 usable points" in bd_rate(ANCHOR, [(0.5, 37.0)]).reason
    barely = [(1.0, 45.0), (5.0, 52.0)]  # overlaps the anchor only between 45 and 46 dB
    result = bd_rate(ANCHOR, barely)
    assert result.value is None and result.overlap == (45.0, 46.0) and "fewer than 2 points" in result.reason


def test_real_codec_curves(shared_data) -> None:
    frame = pydicom.dcmread(shared_data / "mri" / "test" / "emri_small_head_12bit_10fr.dcm").pixel_array[5]

    def curve(name: str) -> list[tuple[float, float]]:
        codec = get_baseline(name)
        points = []
        for rate in codec.sweep(12):
            data = codec.encode(frame, rate, bits=12, signed=False)
            points.append((8 * len(data) / frame.size, psnr(frame, codec.decode(data, bits=12, signed=False))))
        return points

    j2k, jpeg = curve("jpeg2000"), curve("jpeg")
    forward, backward = bd_rate(j2k, jpeg), bd_rate(jpeg, j2k)
    assert forward.value is not None and math.isfinite(forward.value)
    # swapping anchor and test inverts the average log-rate ratio over the same PSNR interval
    assert (1 + forward.value / 100) * (1 + backward.value / 100) == pytest.approx(1.0, rel=1e-9)
    assert bd_psnr(j2k, jpeg).value == pytest.approx(-bd_psnr(jpeg, j2k).value, abs=1e-9)


def test_windowed_bd_rate_integrates_only_inside_the_window() -> None:
    """A test curve 10 % above the anchor below 40 dB and 40 % above it from 40 dB: the whole overlap averages the
    two, a window below 40 dB sees 10 % only, one above sees 40 % only; a window off the curves gives a reason."""
    anchor = [(0.25, 30.0), (0.5, 34.0), (1.0, 38.0), (1.5, 40.0), (2.0, 42.0), (4.0, 48.0), (8.0, 54.0)]
    test = [(r * (1.1 if d < 40 else 1.4), d) for r, d in anchor]
    whole, low, high = bd_rate(anchor, test), bd_rate(anchor, test, (30.0, 38.0)), bd_rate(anchor, test, (42.0, 54.0))
    assert low.value == pytest.approx(10.0, abs=0.5) and high.value == pytest.approx(40.0, abs=0.5)
    assert low.value < whole.value < high.value
    assert low.overlap == (30.0, 38.0) and high.overlap == (42.0, 54.0)
    off = bd_rate(anchor, test, (55.0, 60.0))
    assert off.value is None and "inside 55-60 dB" in off.reason
