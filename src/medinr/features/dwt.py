"""Discrete wavelet sub-bands (Mallat 1989; paper Eq. 6) via ``pywt.wavedec2``."""

from __future__ import annotations

import numpy as np
import pywt

from medinr.errors import InputError
from medinr.features._common import as_float_image


def dwt_bands(img: np.ndarray, *, wavelet: str = "haar", levels: int = 2,
              mode: str = "periodization") -> dict[str, np.ndarray]:
    """2-D DWT sub-bands as ``{"A<J>": ..., "H<j>": ..., "V<j>": ..., "D<j>": ...}`` for j = J..1.

    Level 1 is the finest (pywt's order); A is the approximation at the coarsest level J = ``levels``;
    H, V, D are pywt's horizontal, vertical and diagonal details. The default periodization mode keeps
    an orthogonal wavelet energy-preserving (sum of squared coefficients = sum of squared pixels).
    """
    if levels < 1:
        raise InputError(f"DWT levels must be >= 1, got {levels}")
    try:
        wav = pywt.Wavelet(wavelet)
    except ValueError as exc:
        raise InputError(f"unknown wavelet '{wavelet}'") from exc
    arr = as_float_image(img, min_size=2 ** levels)
    coeffs = pywt.wavedec2(arr, wav, mode=mode, level=levels)
    bands = {f"A{levels}": coeffs[0]}
    for j, (ch, cv, cd) in zip(range(levels, 0, -1), coeffs[1:]):
        bands.update({f"H{j}": ch, f"V{j}": cv, f"D{j}": cd})
    return bands


def band_energies(bands: dict[str, np.ndarray]) -> np.ndarray:
    """AC energy per sub-band, in :func:`dwt_bands` order: squared-coefficient sums, approximation mean removed.

    With an orthogonal wavelet in periodization mode these add up to the image's total variance times its
    pixel count, so their fractions describe how the image's contrast splits over scales and directions.
    """
    out = []
    for name, band in bands.items():
        b = band.astype(np.float64, copy=False)
        out.append(float(np.sum((b - b.mean()) ** 2)) if name.startswith("A") else float(np.sum(b * b)))
    return np.asarray(out)


def detail_magnitude_map(img: np.ndarray, *, levels: int = 2) -> np.ndarray:
    """Per-pixel Haar detail magnitude from the undecimated (a trous) transform, summed over ``levels``.

    Level j compares the means of 2^(j-1)-pixel blocks: sqrt(H^2 + V^2 + D^2) divided by the block size,
    i.e. in slope units like a gradient. Unlike decimated sub-bands it is shift-invariant, so an edge on a
    block boundary is seen as well as one inside a block. Edges are replicated past the border.
    """
    if levels < 1:
        raise InputError(f"DWT levels must be >= 1, got {levels}")
    approx = as_float_image(img)
    out = np.zeros(approx.shape, np.float32)
    for j in range(1, levels + 1):
        h = 2 ** (j - 1)
        padded = np.pad(approx, ((0, h), (0, h)), mode="edge")
        tl, tr, bl, br = padded[:-h, :-h], padded[:-h, h:], padded[h:, :-h], padded[h:, h:]
        top, bottom, top_diff, bottom_diff = tl + tr, bl + br, tl - tr, bl - br
        rows, cols, diag = top - bottom, top_diff + bottom_diff, top_diff - bottom_diff
        out += np.sqrt(rows * rows + cols * cols + diag * diag) * np.float32(0.5 / h)
        if j < levels:
            approx = (top + bottom) * np.float32(0.25)
    return out
