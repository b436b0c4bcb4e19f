"""Z-score normalisation inverts exactly to the source's stored values."""

from __future__ import annotations

import numpy as np
import pytest

from medinr.preprocess import Normalisation


@pytest.mark.parametrize("dtype,lo,hi", [("uint8", 0, 255), ("uint16", 0, 4095), ("int16", -2048, 2047),
                                         ("uint16", 0, 65535)])
def test_inverse_of_forward_is_identity_on_integers(dtype, lo, hi) -> None:
    pixels = np.random.default_rng(0).integers(lo, hi + 1, (40, 30)).astype(dtype)
    norm = Normalisation.of(pixels)
    assert norm.inverse(norm.forward(pixels), dtype).tolist() == pixels.tolist()


def test_inverse_clips_to_the_source_range() -> None:
    pixels = np.array([[10, 20], [30, 40]], np.uint16)
    norm = Normalisation.of(pixels)
    out = norm.inverse(np.array([[-100.0, 100.0], [0.0, 0.0]]), "uint16")
    assert out.min() == 10 and out.max() == 40


def test_constant_image_has_unit_std() -> None:
    norm = Normalisation.of(np.full((4, 4), 7, np.uint8))
    assert norm.std == 1.0 and np.all(norm.forward(np.full((4, 4), 7, np.uint8)) == 0)
