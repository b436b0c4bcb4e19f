"""Local binary patterns: hand-computed codes, the uniform mapping, agreement with scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.feature import local_binary_pattern

from medinr.errors import InputError
from medinr.features import lbp_map


def test_lbp_constant_image_is_all_ones() -> None:
    flat = np.full((5, 6), 300, np.uint16)
    assert (lbp_map(flat, P=8, R=1, uniform=False) == 255).all()
    assert (lbp_map(flat, P=8, R=1, uniform=True) == 8).all()
    assert (lbp_map(flat, P=12, R=1.5, uniform=True) == 12).all()


def test_lbp_matches_hand_computed_3x3() -> None:
    img = np.array([[9, 1, 2],
                    [3, 5, 7],
                    [4, 6, 8]], np.float64)
    # neighbour p at (row, col) offset (-sin, cos) of 2*pi*p/8; diagonals are bilinear mixes of the centre,
    # the two edge neighbours and the corner with weights (1-s)^2, s(1-s), s(1-s), s^2, s = sqrt(2)/2
    s = math.sqrt(2) / 2
    c = 5.0

    def diag(a: float, b: float, corner: float) -> float:
        return (1 - s) ** 2 * c + s * (1 - s) * (a + b) + s * s * corner

    # p:          0 right, 1 up-right,      2 up, 3 up-left,        4 left, 5 down-left,    6 down, 7 down-right
    neighbours = [7, diag(1, 7, 2), 1, diag(1, 3, 9), 3, diag(3, 6, 4), 6, diag(6, 7, 8)]
    np.testing.assert_allclose(neighbours[1::2], [3.086, 5.757, 4.293, 7.121], atol=1e-3)
    bits = [1, 0, 0, 1, 0, 0, 1, 1]  # neighbour >= 5
    assert lbp_map(img, P=8, R=1, uniform=False)[1, 1] == sum(b << p for p, b in enumerate(bits)) == 201
    # four 0/1 transitions around the circle: non-uniform, label P + 1
    assert lbp_map(img, P=8, R=1, uniform=True)[1, 1] == 9


def test_lbp_uniform_edge_pattern_counts_ones(vertical_step) -> None:
    code = lbp_map(vertical_step, P=8, R=1, uniform=True)
    assert code[8, 7] == 8  # dark side of the edge: every neighbour is >= the centre
    # bright side: up, down (ties) and the three right-hand neighbours are >= it, the left three are darker
    assert code[8, 8] == 5
    assert code[8, 2] == 8 and code[8, 13] == 8  # flat interiors


def test_lbp_matches_scikit_image_on_real_crop(cxr_crop) -> None:
    img = cxr_crop  # integer input: scikit-image warns on floats
    for uniform, method in [(False, "default"), (True, "uniform")]:
        ours = lbp_map(img, P=8, R=1, uniform=uniform)[2:-2, 2:-2]
        theirs = local_binary_pattern(img, 8, 1, method)[2:-2, 2:-2]
        np.testing.assert_array_equal(ours, theirs)


def test_lbp_inputs_are_validated() -> None:
    with pytest.raises(InputError):
        lbp_map(np.zeros((2, 3, 3)))
    with pytest.raises(InputError):
        lbp_map(np.array([[np.nan, 1.0], [2.0, 3.0]]))
    with pytest.raises(InputError):
        lbp_map(np.zeros((4, 4)), R=0)
