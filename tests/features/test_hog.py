"""HOG cell histograms and the dense gradient helper."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medinr.errors import InputError
from medinr.features import gradients, hog_map


def test_hog_vertical_edge_votes_horizontal_gradient_bin(vertical_step) -> None:
    hist = hog_map(vertical_step, orientations=9, cell=8)
    assert hist.shape == (9, 2, 2)
    per_bin = hist.sum(axis=(1, 2))
    assert per_bin[0] > 0
    np.testing.assert_allclose(per_bin[1:], 0.0, atol=1e-6)


def test_hog_horizontal_edge_votes_vertical_gradient_bin(horizontal_step) -> None:
    per_bin = hog_map(horizontal_step, orientations=9, cell=8).sum(axis=(1, 2))
    # theta = pi/2 lies between the centres of bins 4 (80 deg) and 5 (100 deg): split evenly
    np.testing.assert_allclose(per_bin[4], per_bin[5], rtol=1e-5)
    assert per_bin[4] > 0 and per_bin[[0, 1, 2, 3, 6, 7, 8]].sum() == 0


def test_hog_total_equals_gradient_magnitude_in_full_cells() -> None:
    img = np.random.default_rng(0).random((20, 27))
    magnitude, theta = gradients(img)
    assert theta.min() >= 0 and theta.max() < math.pi
    hist = hog_map(img, orientations=6, cell=4)
    assert hist.shape == (6, 5, 6)
    np.testing.assert_allclose(hist.sum(axis=0), magnitude[:20, :24].reshape(5, 4, 6, 4).sum(axis=(1, 3)),
                               rtol=1e-4)


def test_hog_rejects_image_smaller_than_a_cell() -> None:
    with pytest.raises(InputError):
        hog_map(np.zeros((4, 4)), cell=8)
