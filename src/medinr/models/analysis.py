"""Analysis network of the ``grid`` architecture: predicts the starting latents from the image.

Encoder only: the decoder never runs it and the bitstream does not name it, so it can change without a format
change. The grid fit starts from a closed-loop quantised Laplacian pyramid (:func:`medinr.archs.grid.pyramid_latents`):
coarse to fine, each level takes the average-pooled residual left by the coarser ones, in units of its
quantisation step, ``y``, and rounds it. The analysis network replaces ``y`` by ``y + g(y)``: ``g`` is a small
3x3 CNN shared by all levels (inputs: ``y`` and the level's depth), meta-learned on training images to lower the
start's D + λR under the start's own entropy model (:mod:`medinr.meta.analysis`). Its last layer starts at zero,
so an untrained network is the plain pyramid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from medinr.errors import InitError
from medinr.io.common import atomic_write

#: the shipped network (``python -m medinr.meta.analysis``), and its format tag
WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "analysis" / "grid-analysis.pt"
FORMAT = "medinr-grid-analysis/1"


class AnalysisNet(nn.Module):
    """``y -> y + g(y, level)``, per level of the pyramid, in quantisation-step units."""

    def __init__(self, channels: int = 8, depth_scale: float = 1 / 8) -> None:
        super().__init__()
        self.channels, self.depth_scale = channels, depth_scale
        self.convs = nn.ModuleList([nn.Conv2d(2, channels, 3, padding=1), nn.Conv2d(channels, channels, 3, padding=1),
                                    nn.Conv2d(channels, 1, 3, padding=1)])
        with torch.no_grad():
            self.convs[-1].weight.zero_()
            self.convs[-1].bias.zero_()

    def forward(self, y: torch.Tensor, level: int) -> torch.Tensor:
        """Refined pre-rounding latents of one level, (h, w) -> (h, w)."""
        x = torch.stack([y, torch.full_like(y, level * self.depth_scale)])[None]
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                x = F.leaky_relu(x, 0.1)
        return y + x[0, 0]

    def save(self, path: Path, record: dict[str, Any]) -> None:
        """Weights, shape and how they were trained (``record``), atomically."""
        saved = {"format": FORMAT, "channels": self.channels, "depth_scale": self.depth_scale,
                 "state": self.state_dict(), "record": record}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, ".pt", lambda tmp: torch.save(saved, tmp))

    @classmethod
    def load(cls, path: Path) -> AnalysisNet:
        """A saved network; InitError naming the file when it is missing, corrupt or of another format."""
        try:
            saved = torch.load(path, weights_only=True)
            if saved.get("format") != FORMAT:
                raise ValueError(f"format {saved.get('format')!r}, expected {FORMAT!r}")
            net = cls(saved["channels"], saved["depth_scale"])
            net.load_state_dict(saved["state"])
        except FileNotFoundError:
            raise InitError(f"analysis network {path} not found") from None
        except Exception as exc:  # torch.load raises many kinds on a damaged file
            raise InitError(f"analysis network {path} is unreadable: {exc}") from None
        return net.requires_grad_(False)


def shipped() -> AnalysisNet | None:
    """The installed analysis network, or None when the package has none."""
    return AnalysisNet.load(WEIGHTS) if WEIGHTS.is_file() else None
