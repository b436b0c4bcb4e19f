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


#: taps of the spatio-temporal refinement filter (3 x 3 x 3) plus its bias
REFINE_TAPS = 27
#: quantisation step of the refinement coefficients (stored as int16)
REFINE_STEP = 2.0**-12
#: samples the least-squares fit of the filter looks at, at most
REFINE_FIT_POINTS = 1 << 18


def _shifted(stack: np.ndarray) -> list[np.ndarray]:
    """The 27 neighbours (dt, dy, dx in -1..1, edges replicated) of every sample, each shaped like ``stack``."""
    t, h, w = stack.shape
    padded = np.pad(stack, 1, mode="edge")
    return [padded[a:a + t, b:b + h, c:c + w] for a in range(3) for b in range(3) for c in range(3)]


def refine(pred: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """The 3x3x3 refinement of a (T, H, W) prediction: ``pred + Σ_k w_k · neighbour_k(pred) + bias``.

    ``coeffs`` holds the 27 weights (dt, dy, dx row-major) then the bias, in normalised units.
    """
    out = pred.astype(np.float32) + np.float32(coeffs[-1])
    for weight, neighbour in zip(coeffs[:REFINE_TAPS], _shifted(pred)):
        out += np.float32(weight) * neighbour
    return out


def fit_refinement(pred: np.ndarray, target: np.ndarray, seed: int = 0) -> np.ndarray:
    """Least-squares 3x3x3 filter (27 weights + bias) taking ``pred`` towards ``target``, quantised to
    :data:`REFINE_STEP` (int16 symbols); a Wiener filter fitted per sequence in closed form."""
    n = pred.size
    rng = np.random.default_rng(seed)
    pick = rng.choice(n, REFINE_FIT_POINTS, replace=False) if n > REFINE_FIT_POINTS else slice(None)
    columns = [s.reshape(-1)[pick].astype(np.float64) for s in _shifted(pred)]
    design = np.stack([*columns, np.ones_like(columns[0])], axis=1)
    residual = (target - pred).reshape(-1)[pick].astype(np.float64)
    gram = design.T @ design + 1e-6 * len(residual) * np.eye(design.shape[1])
    coeffs = np.linalg.solve(gram, design.T @ residual)
    return np.clip(np.rint(coeffs / REFINE_STEP), -32768, 32767).astype("<i2")
