"""Spatio-temporal pieces of the INRs (part 6 of the method): a whole (T, H, W) sequence is one ``seed``
network on (t, y, x) coordinates (``SeedConfig(coord_dims=3)``: the separable first layer encodes each axis
with the same octave bands), fitted coarse to fine against a space-time Gaussian pyramid."""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

from medinr.models.encoding import grid_indices

#: blurs narrower than this many samples leave a target axis as it is
MIN_SIGMA = 0.3


def sequence_pyramid_targets(stack: np.ndarray, scales: int) -> torch.Tensor:
    """Space-time Gaussian-pyramid targets, shape (S, T*H*W): target s keeps what bands 1..s represent.

    Every axis spans 2 coordinate units, so band s reaches 2^s cycles per sequence in time as in space;
    each axis is blurred by half that period in its own samples. The last target is the sequence itself.
    """
    sizes = np.asarray(stack.shape, dtype=np.float64)
    targets = []
    for s in range(1, scales + 1):
        sigma = 0.5 * sizes / 2**s if s < scales else np.zeros_like(sizes)
        sigma = np.where(sigma >= MIN_SIGMA, sigma, 0.0)
        targets.append(gaussian_filter(stack, tuple(sigma), mode="reflect") if sigma.any() else stack)
    return torch.from_numpy(np.stack(targets).reshape(scales, -1).astype(np.float32))


@torch.no_grad()
def predict_grid(model: nn.Module, sizes: tuple[int, ...], chunk: int = 65536) -> np.ndarray:
    """Full prediction (sum over scales) on the grid of ``sizes`` in normalised units, shape ``sizes``."""
    index = grid_indices(sizes)
    n = int(np.prod(sizes))
    out = torch.cat([model(tuple(axis[i:i + chunk] for axis in index), sizes).sum(dim=1) for i in range(0, n, chunk)])
    return out.reshape(sizes).numpy()
