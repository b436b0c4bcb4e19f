"""Feature-guided losses (paper Eqs. 15-17): the sparsity-aware gradient penalty and an edge-weighted MSE."""

from __future__ import annotations

import torch

from medinr.errors import InputError


def _check_broadcast(name: str, weight: torch.Tensor, pred: torch.Tensor) -> None:
    try:
        shape = torch.broadcast_shapes(weight.shape, pred.shape)
    except RuntimeError as exc:
        raise InputError(f"{name} of shape {tuple(weight.shape)} does not broadcast to {tuple(pred.shape)}") from exc
    if shape != pred.shape:
        raise InputError(f"{name} of shape {tuple(weight.shape)} would enlarge {tuple(pred.shape)}")


def sparsity_loss(pred: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L_sparse = mean over pixels of w(x) * |grad f(x)|_1 on an image-shaped prediction.

    ``pred`` is (H, W) or (..., H, W) (e.g. (B, 1, H, W)); the gradient is forward differences along the
    last two axes, zero past the last row/column, so a constant image costs exactly 0. ``weight`` (the
    homogeneity map) must broadcast to ``pred``.
    """
    if pred.ndim < 2:
        raise InputError(f"sparsity_loss needs an image-shaped prediction (..., H, W), got {tuple(pred.shape)}")
    _check_broadcast("sparsity weight", weight, pred)
    dx = torch.diff(pred, dim=-1, append=pred[..., -1:])
    dy = torch.diff(pred, dim=-2, append=pred[..., -1:, :])
    return (weight * (dx.abs() + dy.abs())).mean()


def edge_weighted_mse(pred: torch.Tensor, target: torch.Tensor, edge: torch.Tensor, strength: float) -> torch.Tensor:
    """mean((1 + strength * edge) * (pred - target)^2): errors on edges cost up to 1 + strength times more."""
    if pred.shape != target.shape:
        raise InputError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if not strength >= 0:
        raise InputError(f"edge weighting strength must be >= 0, got {strength}")
    _check_broadcast("edge map", edge, pred)
    return ((1.0 + strength * edge) * (pred - target) ** 2).mean()
