"""Hierarchical positional encodings γ_s(x) = [sin(2^(s-1)πx·m), cos(2^(s-1)πx·m)] per octave band s."""

from __future__ import annotations

import math

import torch


def band_frequencies(scales: int, freqs_per_band: int) -> torch.Tensor:
    """Angular frequencies, shape (scales, freqs_per_band): band s spans [2^(s-1)π, 2^s π) log-uniformly."""
    s = torch.arange(scales, dtype=torch.float32)[:, None]
    k = torch.arange(freqs_per_band, dtype=torch.float32)[None, :]
    return math.pi * 2.0 ** (s + k / freqs_per_band)


def axis_coordinates(n: int) -> torch.Tensor:
    """Sample-centre coordinates of an axis of ``n`` samples in [-1, 1], shape (n,)."""
    return (torch.arange(n, dtype=torch.float32) + 0.5) / n * 2 - 1


def grid_indices(sizes: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """Per-axis integer indices of every point of a grid, row-major, each of shape (prod(sizes),)."""
    mesh = torch.meshgrid(*[torch.arange(n) for n in sizes], indexing="ij")
    return tuple(m.reshape(-1) for m in mesh)


def banded_fourier_features(coords: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Encode (P, D) coordinates per band: output (S, P, 2*D*K) with sin and cos of each axis."""
    angles = coords[None, :, :, None] * freqs[:, None, None, :]  # (S, P, D, K)
    feats = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)  # (S, P, D, 2K)
    return feats.flatten(2)
