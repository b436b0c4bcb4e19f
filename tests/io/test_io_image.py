"""bits_for_range: the smallest BitsStored that holds a value range (at least 8)."""

from __future__ import annotations

import pytest

from medinr.io.image import bits_for_range


@pytest.mark.parametrize(("lo", "hi", "signed", "bits"), [
    (0, 255, False, 8), (0, 256, False, 9), (0, 4095, False, 12), (0, 65535, False, 16), (0, 1, False, 8),
    (-128, 127, True, 8), (-129, 127, True, 9), (-128, 128, True, 9), (-2048, 2047, True, 12),
    (-32768, 32767, True, 16), (0, 694, True, 11), (-5, -1, True, 8),
])
def test_bits_for_range(lo: int, hi: int, signed: bool, bits: int) -> None:
    assert bits_for_range(lo, hi, signed) == bits
