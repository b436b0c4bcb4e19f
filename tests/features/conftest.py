"""Fixtures of the feature tests: a real chest X-ray crop and 12-bit step edges."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest


@pytest.fixture(scope="module")
def cxr_crop(shared_data) -> np.ndarray:
    """64x64 uint8 crop of an NIH chest X-ray (lung field with vessels and a rib)."""
    return imagecodecs.imread(shared_data / "cxr" / "test" / "00000001_000.png")[400:464, 400:464]


def _step(vertical: bool) -> np.ndarray:
    img = np.zeros((16, 16), np.uint16)
    if vertical:
        img[:, 8:] = 4095
    else:
        img[8:, :] = 4095
    return img


@pytest.fixture
def vertical_step() -> np.ndarray:
    """16x16 12-bit image, dark left half, bright right half."""
    return _step(vertical=True)


@pytest.fixture
def horizontal_step() -> np.ndarray:
    """16x16 12-bit image, dark top half, bright bottom half."""
    return _step(vertical=False)
