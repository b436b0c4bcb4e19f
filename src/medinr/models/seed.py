"""The ``seed`` INR (part 3 of the method): per-octave MLPs on banded Fourier features, summed.

Î(x) = Σ_s MLP_s(γ_s(x)). All scale MLPs run as one batched matmul (leading scale dimension), so the
whole network is a handful of ``baddbmm`` calls regardless of the number of scales.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from medinr.models.encoding import axis_coordinates, band_frequencies, banded_fourier_features

ACTIVATIONS = ("gelu", "relu", "sine")


@dataclass(frozen=True)
class SeedConfig:
    """Shape of a seed network; serialised into the bitstream header (7 bytes)."""

    scales: int = 8
    freqs_per_band: int = 4
    hidden: int = 16
    layers: int = 2
    activation: str = "sine"
    omega0: float = 3.0
    coord_dims: int = 2

    def to_bytes(self) -> bytes:
        return struct.pack("<BBHBBeB", self.scales, self.freqs_per_band, self.hidden, self.layers,
                           ACTIVATIONS.index(self.activation), self.omega0, self.coord_dims)

    @classmethod
    def from_bytes(cls, data: bytes) -> SeedConfig:
        scales, k, hidden, layers, act, omega0, dims = struct.unpack("<BBHBBeB", data)
        if not (1 <= scales <= 16 and 1 <= k <= 32 and 1 <= hidden <= 1024 and 1 <= layers <= 8
                and act < len(ACTIVATIONS) and 1 <= dims <= 3):
            raise ValueError("invalid seed configuration")
        return cls(scales, k, hidden, layers, ACTIVATIONS[act], float(omega0), dims)

    @staticmethod
    def scales_for(height: int, width: int) -> int:
        """Octaves needed to reach the Nyquist band of the larger side (x spans 2 units)."""
        return max(1, math.ceil(math.log2(max(height, width))) - 1)


class SeedINR(nn.Module):
    """Multi-scale MLP INR; ``forward`` returns each scale's contribution, shape (P, S)."""

    def __init__(self, config: SeedConfig) -> None:
        super().__init__()
        self.config = config
        s, h = config.scales, config.hidden
        in_dim = 2 * config.coord_dims * config.freqs_per_band
        self.register_buffer("freqs", band_frequencies(s, config.freqs_per_band), persistent=False)
        dims = [in_dim] + [h] * config.layers + [1]
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(s, a, b)) for a, b in zip(dims[:-1], dims[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(s, 1, b)) for b in dims[1:])
        self.reset_parameters()

    def reset_parameters(self, uniform: Callable[[torch.Size], torch.Tensor] = torch.rand) -> None:
        """SIREN-style uniform init (bound sqrt(6/fan_in)/omega0) for sine, Kaiming-uniform otherwise;
        the output layer starts small so the untrained network predicts about the mean.

        ``uniform(shape)`` supplies U(0, 1) samples, so a caller can make the init reproducible
        across machines and library versions (see :func:`medinr.meta.inits.random_init`)."""
        sine = self.config.activation == "sine"
        for i, w in enumerate(self.weights):
            fan_in = w.shape[1]
            if i == len(self.weights) - 1:
                bound = 0.1 / math.sqrt(fan_in)
            else:
                bound = math.sqrt(6 / fan_in) / self.config.omega0 if sine else math.sqrt(3 / fan_in)
            with torch.no_grad():
                w.copy_((2 * uniform(w.shape) - 1) * bound)
        for b in self.biases:
            nn.init.zeros_(b)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.activation == "sine":
            return torch.sin(self.config.omega0 * x)
        if self.config.activation == "relu":
            return torch.relu(x)
        return nn.functional.gelu(x)

    def forward(self, index: tuple[torch.Tensor, ...], sizes: tuple[int, ...]) -> torch.Tensor:
        """Evaluate at grid points given per-axis integer indices (each (P,)) into a grid of ``sizes``.

        The encoding is separable per axis, so the first layer is computed once per row and once
        per column (O(H + W)) and gathered, instead of once per pixel.
        """
        first_w, first_b = self.weights[0], self.biases[0]
        per_axis = 2 * self.config.freqs_per_band
        x = first_b
        for axis, (idx, n) in enumerate(zip(index, sizes)):
            axis_feats = banded_fourier_features(axis_coordinates(n)[:, None], self.freqs)  # (S, n, 2K)
            w_axis = first_w[:, axis * per_axis:(axis + 1) * per_axis]
            x = x + torch.bmm(axis_feats, w_axis).index_select(1, idx)  # (S, P, h)
        for w, b in zip(list(self.weights)[1:], list(self.biases)[1:]):
            x = torch.baddbmm(b, self._act(x), w)
        return x[..., 0].transpose(0, 1)  # (P, S)

    def multiply_adds_per_pixel(self) -> int:
        return sum(w.shape[0] * w.shape[1] * w.shape[2] for w in self.weights)
