"""Input checks and range normalisation shared by the feature extractors."""

from __future__ import annotations

import numpy as np

from medinr.errors import InputError


def as_float_image(img: np.ndarray, *, min_size: int = 2) -> np.ndarray:
    """Return ``img`` as a float32 (H, W) array, rejecting other shapes, tiny images and NaN/inf."""
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise InputError(f"features need a 2-D (H, W) image, got shape {arr.shape}")
    if arr.dtype.kind not in "buif":
        raise InputError(f"features need a numeric image, got dtype {arr.dtype}")
    if min(arr.shape) < min_size:
        raise InputError(f"image {arr.shape} is smaller than the {min_size}x{min_size} this feature needs")
    out = arr.astype(np.float32, copy=False)
    if arr.dtype.kind == "f" and not np.isfinite(out).all():
        raise InputError("image contains NaN or infinite values")
    return out


def normalise_range(img: np.ndarray, *, min_size: int = 2) -> np.ndarray:
    """Map an image of any bit depth to [0, 1] by its own min and max (a constant image maps to zeros)."""
    out = as_float_image(img, min_size=min_size)
    lo, hi = float(out.min()), float(out.max())
    if hi <= lo:
        return np.zeros(out.shape, np.float32)
    return (out - np.float32(lo)) * np.float32(1.0 / (hi - lo))


def robust_unit(x: np.ndarray, percentile: float) -> np.ndarray:
    """Scale a non-negative map so its ``percentile`` maps to 1, clipped to [0, 1]; an all-zero map stays zero.

    The percentile is taken on a strided subsample: it sets a scale, so ~1/16 of the pixels is plenty.
    """
    step = max(1, min(x.shape) // 256)
    ref = float(np.percentile(x[::step, ::step], percentile))
    if ref <= 0.0:
        ref = float(x.max())
        if ref <= 0.0:
            return np.zeros_like(x)
    return np.minimum(x * np.float32(1.0 / ref), np.float32(1.0))
