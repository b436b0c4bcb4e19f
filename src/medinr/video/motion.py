"""Motion fields for motion-compensated prediction: estimation, compact coding and bilinear warping.

A motion field is coarse: one (dy, dx) vector per ``block`` x ``block`` cell of the frame, bilinearly
upsampled to every pixel (cell centres as sample points, like ``F.interpolate(align_corners=False)``), in
quarter pixels. The prediction of a pixel (y, x) is the reference at (y + dy, x + dx), bilinear, clamped
at the border (a backward warp, so every pixel gets exactly one prediction).

Estimation (encoder only): a dense Lucas-Kanade flow (``skimage.registration.optical_flow_ilk``), averaged
per cell, then refined on the coarse field itself by gradient descent on the warped prediction's squared
error (the field that is coded is the one optimised), then rounded to quarter pixels.

Coding: the two integer component grids through :func:`medinr.entropy.encode_tensors` (a fitted
Laplace/Gaussian each), after a left-neighbour (first column: upper-neighbour) difference, since neighbouring
cells of a moving organ move alike.

Warping and upsampling run in float32 with elementwise operations only (no reductions), so the decoder's
prediction does not depend on the thread count.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from medinr.entropy import decode_tensors, encode_tensors

#: sub-pixel precision of coded vectors: 1/SUBPEL px
SUBPEL = 4
#: refinement of the coarse field: Adam steps and rate (px per step)
REFINE_STEPS, REFINE_LR = 60, 0.05
#: radius (px) of the Lucas-Kanade window of the dense initial estimate
ILK_RADIUS = 5


def field_shape(shape: tuple[int, int], block: int) -> tuple[int, int]:
    """Cells of a ``block``-pixel field over a frame of ``shape``."""
    return -(-shape[0] // block), -(-shape[1] // block)


def upsample_field(field: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A (2, h, w) coarse field as a (2, H, W) per-pixel flow, bilinear between cell centres."""
    return F.interpolate(field[None], size=shape, mode="bilinear", align_corners=False)[0]


def warp(reference: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Bilinear backward warp: out[y, x] = reference[y + flow[0, y, x], x + flow[1, y, x]], clamped at the border;
    differentiable in ``flow``. ``reference`` is (H, W) with H, W >= 2."""
    h, w = reference.shape
    ys = (torch.arange(h, dtype=flow.dtype)[:, None] + flow[0]).clamp(0, h - 1)
    xs = (torch.arange(w, dtype=flow.dtype)[None, :] + flow[1]).clamp(0, w - 1)
    y0, x0 = ys.detach().floor().clamp(max=h - 2), xs.detach().floor().clamp(max=w - 2)
    fy, fx = ys - y0, xs - x0
    i, j = y0.long(), x0.long()
    top = reference[i, j] + fx * (reference[i, j + 1] - reference[i, j])
    bottom = reference[i + 1, j] + fx * (reference[i + 1, j + 1] - reference[i + 1, j])
    return top + fy * (bottom - top)


def predict(reference: np.ndarray, field: np.ndarray) -> np.ndarray:
    """The float32 prediction of a frame from the ``reference`` (H, W) and an integer quarter-pixel field (2, h, w)."""
    with torch.no_grad():
        flow = upsample_field(torch.from_numpy(field.astype(np.float32) / SUBPEL), reference.shape)
        return warp(torch.from_numpy(reference.astype(np.float32)), flow).numpy()


def estimate_field(reference: np.ndarray, current: np.ndarray, block: int) -> np.ndarray:
    """The integer quarter-pixel field (2, h, w) of ``block``-pixel cells that best predicts ``current`` from
    ``reference`` (both float, same shape): Lucas-Kanade, averaged per cell, refined on the warp error."""
    from skimage.registration import optical_flow_ilk

    dense = optical_flow_ilk(current.astype(np.float32), reference.astype(np.float32), radius=ILK_RADIUS)
    cells = field_shape(current.shape, block)
    field = F.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32)), cells)
    field = field.clone().requires_grad_(True)
    ref, cur = torch.from_numpy(reference.astype(np.float32)), torch.from_numpy(current.astype(np.float32))
    moments = [torch.zeros_like(field), torch.zeros_like(field)]
    for step in range(1, REFINE_STEPS + 1):  # Adam on the coarse field
        loss = (warp(ref, upsample_field(field, current.shape)) - cur).pow(2).mean()
        (grad,) = torch.autograd.grad(loss, field)
        with torch.no_grad():
            moments[0].mul_(0.9).add_(grad, alpha=0.1)
            moments[1].mul_(0.999).addcmul_(grad, grad, value=0.001)
            size = REFINE_LR * math.sqrt(1 - 0.999**step) / (1 - 0.9**step)
            field.addcdiv_(moments[0], moments[1].sqrt().add_(1e-8), value=-size)
    limit = SUBPEL * max(current.shape)
    return np.clip(np.rint(field.detach().numpy() * SUBPEL), -limit, limit).astype(np.int64)


def _differences(field: np.ndarray) -> np.ndarray:
    """Left-neighbour differences of each component (the first column: differences down the rows)."""
    out = np.diff(field, axis=2, prepend=0)
    out[:, :, 0] = np.diff(field[:, :, 0], axis=1, prepend=0)
    return out


def _undo_differences(diffs: np.ndarray) -> np.ndarray:
    first = np.cumsum(diffs[:, :, :1], axis=1)
    return np.cumsum(np.concatenate([first, diffs[:, :, 1:]], axis=2), axis=2)


def encode_field(field: np.ndarray) -> bytes:
    """Entropy-coded integer field (2, h, w); its shape is not stored (the block size and frame give it)."""
    return encode_tensors(list(_differences(field)))


def decode_field(data: bytes, cells: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`encode_field` (raises BitstreamError on a corrupted section)."""
    diffs = decode_tensors(data, [cells[0] * cells[1]] * 2)
    return _undo_differences(np.stack(diffs).reshape(2, *cells).astype(np.int64))
