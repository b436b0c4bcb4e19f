"""Histogram of oriented gradients (Dalal & Triggs 2005; paper Eqs. 3-5), vectorised with ``np.bincount``."""

from __future__ import annotations

import numpy as np

from medinr.errors import InputError
from medinr.features._common import as_float_image


def gradients(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel gradient magnitude and unsigned orientation in [0, pi), both (H, W) float32.

    Central differences inside (Eq. 3, halved so the magnitude is a per-pixel slope), one-sided at the
    border. Orientation 0 is a gradient along the columns (x), i.e. a vertical edge; angles grow towards
    increasing row index.
    """
    arr = as_float_image(img)
    gy, gx = np.gradient(arr)
    magnitude = np.sqrt(gx * gx + gy * gy)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.arctan(gy / gx)  # unsigned orientation only: cheaper than arctan2
    np.nan_to_num(theta, copy=False)  # 0/0 (no gradient): the vote has zero weight anyway
    theta += np.float32(np.pi) * (theta < 0)
    np.copyto(theta, np.float32(0.0), where=theta >= np.float32(np.pi))  # rounding up to pi is orientation 0
    return magnitude, theta


def orientation_histograms(magnitude: np.ndarray, theta: np.ndarray, *, orientations: int,
                           rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Magnitude-weighted orientation histograms over a grid of regions, (orientations, *shape).

    ``rows`` (H,) and ``cols`` (W,) give each pixel row/column its region index. Bin k is centred on
    k*pi/orientations and each vote is split linearly between the two nearest bins, so a horizontal
    gradient (theta = 0) lands wholly in bin 0.
    """
    if orientations < 1:
        raise InputError(f"orientations must be >= 1, got {orientations}")
    t = theta * np.float32(orientations / np.pi)
    lo = t.astype(np.int32)  # theta >= 0, so truncation is floor
    upper = magnitude * (t - lo)
    lo %= orientations
    n_regions = shape[0] * shape[1]
    region = (rows.astype(np.int32)[:, None] * shape[1] + cols.astype(np.int32)[None, :]).ravel()
    size = orientations * n_regions
    index = lo.ravel() * n_regions + region
    hist = np.bincount(index, weights=(magnitude - upper).ravel(), minlength=size)
    index += n_regions
    index[index >= size] -= size  # bin orientations-1 wraps to bin 0
    hist += np.bincount(index, weights=upper.ravel(), minlength=size)
    return hist.reshape(orientations, *shape).astype(np.float32)


def hog_from_gradients(magnitude: np.ndarray, theta: np.ndarray, *, orientations: int = 9,
                       cell: int = 8) -> np.ndarray:
    """Cell histograms from precomputed gradients; see :func:`hog_map`."""
    if cell < 1:
        raise InputError(f"HOG cell must be >= 1 pixel, got {cell}")
    h, w = magnitude.shape
    nh, nw = h // cell, w // cell
    if nh == 0 or nw == 0:
        raise InputError(f"image {magnitude.shape} is smaller than one {cell}x{cell} HOG cell")
    crop = (slice(0, nh * cell), slice(0, nw * cell))
    return orientation_histograms(magnitude[crop], theta[crop], orientations=orientations,
                                  rows=np.arange(nh * cell) // cell, cols=np.arange(nw * cell) // cell,
                                  shape=(nh, nw))


def hog_map(img: np.ndarray, *, orientations: int = 9, cell: int = 8) -> np.ndarray:
    """Unnormalised HOG cell histograms, (orientations, H // cell, W // cell) float32.

    Each cell sums the gradient magnitudes of its pixels into orientation bins (unsigned, [0, pi));
    trailing rows/columns that do not fill a cell are ignored. Block normalisation is left to the caller.
    """
    magnitude, theta = gradients(img)
    return hog_from_gradients(magnitude, theta, orientations=orientations, cell=cell)
