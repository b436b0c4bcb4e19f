"""Rate-control searches: integer and refined closest sizes, on step functions like real file sizes."""

from __future__ import annotations

import math

from medinr.ratecontrol import closest_size, closest_size_fine, largest_true


def _jumpy(x: float) -> int:
    """A decreasing size that falls by about 9 % from one integer to the next and smoothly in between."""
    return int(10_000 * math.exp(-0.09 * x))


def test_largest_true_and_closest_size_on_integers() -> None:
    assert largest_true(lambda k: k <= 7, 0, 20) == 7
    assert largest_true(lambda k: k < 0, 0, 20) is None
    k = closest_size(_jumpy, 6_100, -16, 28)
    assert abs(_jumpy(k) - 6_100) > 0.04 * 6_100  # the integer grid alone misses by several %


def test_closest_size_fine_lands_between_the_integers() -> None:
    x = closest_size_fine(_jumpy, 6_000, -16, 28)
    assert 5 < x < 6 and x != int(x)
    assert abs(_jumpy(x) - 6_000) <= 0.005 * 6_000


def test_closest_size_fine_clamps_to_the_range() -> None:
    assert closest_size_fine(_jumpy, 50_000, -16, 28) == -16  # even the largest size is below the budget
    assert closest_size_fine(_jumpy, 10, -16, 28) == 28  # even the smallest is above it


def test_closest_size_fine_resolves_a_crowd_at_a_rounding_boundary() -> None:
    """Trained latents can crowd within 1/1000 of a step of a boundary: the size falls steeply there."""
    def crowded(x: float) -> int:
        return int(10_000 - 8_000 * min(1.0, max(0.0, (x + 0.001) / 0.002)) - 10 * x)

    x = closest_size_fine(crowded, 5_000, -16, 28)
    assert abs(crowded(x) - 5_000) <= 0.005 * 5_000  # five fixed halvings stopped at 6,000 or 2,000
