"""Local binary patterns (Ojala et al. 2002; paper Eq. 7) with bilinear sampling on the circle, vectorised."""

from __future__ import annotations

import math

import numpy as np

from medinr.errors import InputError
from medinr.features._common import as_float_image


def _circle_samples(padded: np.ndarray, pad: int, shape: tuple[int, int], dy: float, dx: float) -> np.ndarray:
    """Bilinear samples of ``padded`` at every pixel offset by (dy, dx), in lerp form so a flat patch is exact."""
    h, w = shape
    y0, x0 = math.floor(dy), math.floor(dx)
    fy, fx = dy - y0, dx - x0

    def view(oy: int, ox: int) -> np.ndarray:
        return padded[pad + oy: pad + oy + h, pad + ox: pad + ox + w]

    top = view(y0, x0)
    if fx:
        top = top + np.float32(fx) * (view(y0, x0 + 1) - top)
    if not fy:
        return top
    bottom = view(y0 + 1, x0)
    if fx:
        bottom = bottom + np.float32(fx) * (view(y0 + 1, x0 + 1) - bottom)
    return top + np.float32(fy) * (bottom - top)


def lbp_map(img: np.ndarray, *, P: int = 8, R: float = 1.0, uniform: bool = True) -> np.ndarray:
    """LBP code of every pixel, (H, W).

    Neighbour p sits at (row, col) offset (-R sin(2 pi p / P), R cos(2 pi p / P)) (scikit-image's layout),
    sampled bilinearly with edge replication; bit p is set when neighbour >= centre. With ``uniform`` the
    codes map to P + 2 labels: a pattern with at most two 0/1 transitions around the circle gets its number
    of ones (0..P; a flat patch gives P), every other pattern gets P + 1. Without it the raw code in
    [0, 2^P) is returned.
    """
    if P < 1 or (not uniform and P > 31):
        raise InputError(f"LBP needs 1 <= P (<= 31 without the uniform mapping), got P={P}")
    if not R > 0:
        raise InputError(f"LBP radius must be > 0, got R={R}")
    centre = as_float_image(img, min_size=1)
    pad = math.ceil(R) + 1
    padded = np.pad(centre, pad, mode="edge")
    label_dtype = np.uint8 if P < 255 else np.int32
    code = np.zeros(centre.shape, np.int64 if not uniform else label_dtype)  # raw code, or count of ones
    transitions = np.zeros(centre.shape, label_dtype)
    first = prev = None
    for p in range(P):
        angle = 2.0 * math.pi * p / P
        # round so that neighbours on the pixel grid (e.g. R=1, p even) are read exactly, not interpolated
        dy, dx = round(-R * math.sin(angle), 9), round(R * math.cos(angle), 9)
        bit = _circle_samples(padded, pad, centre.shape, dy, dx) >= centre
        if not uniform:
            code[bit] |= 1 << p
            continue
        code += bit
        if prev is None:
            first = bit
        else:
            transitions += bit != prev
        prev = bit
    if not uniform:
        return code
    transitions += prev != first
    return np.where(transitions <= 2, code, label_dtype(P + 1))
