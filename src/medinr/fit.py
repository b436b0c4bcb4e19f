"""Per-image optimisation of an INR from its initialisation: coarse-to-fine fitting on pixel mini-batches,
then quantisation-aware fine-tuning with a rate term."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn
from torch.func import functional_call

from medinr.features import extract_features
from medinr.features.losses import edge_weighted_mse, sparsity_loss
from medinr.models.encoding import grid_indices
from medinr.quant import fake_quantize, step_values

Progress = Callable[[int, int], None]


@dataclass
class FitConfig:
    """Optimisation settings; presets in :mod:`medinr.config` pick the values."""

    steps: int = 1500
    lr: float = 1e-2
    batch_pixels: int = 16384
    coarse_weight: float = 0.25
    coarse_fraction: float = 0.5
    qat_steps: int = 200
    qat_lr: float = 1e-3
    #: weight of the L1 rate proxy (mean |symbol|) during quantisation-aware fine-tuning. Off: at fine
    #: steps symbols are large and the proxy outweighs the MSE (measured on seed-video: -0.8 dB at 1 bpp);
    #: rate control picks the steps after fine-tuning anyway.
    rate_weight: float = 0.0
    seed: int = 0
    #: λ of the sparsity-aware term λ·mean(w(x)|∇f(x)|₁), w = the homogeneity map; 0 = off
    sparsity_weight: float = 0.0
    #: side of the square pixel patches the sparsity term's finite differences are taken on
    sparsity_patch: int = 8
    #: edge-weighted reconstruction: squared errors weigh 1 + strength * edge map; 0 = plain MSE
    edge_strength: float = 0.0


def pyramid_targets(image: np.ndarray, scales: int) -> torch.Tensor:
    """Gaussian-pyramid targets, shape (S, H*W): target s keeps the frequencies bands 1..s can represent.

    Band s reaches 2^s cycles per image; the blur's sigma is half that period in pixels. The last
    target is the image itself.
    """
    h, w = image.shape
    targets = []
    for s in range(1, scales + 1):
        sigma = 0.5 * max(h, w) / 2**s if s < scales else 0.0
        targets.append(gaussian_filter(image, sigma, mode="reflect") if sigma >= 0.3 else image)
    return torch.from_numpy(np.stack(targets).reshape(scales, -1).astype(np.float32))


class FrameFitter:
    """Fits one model to one normalised 2D frame; holds the coordinates and targets for the phases."""

    def __init__(self, model: nn.Module, image: np.ndarray, config: FitConfig) -> None:
        self.model = model
        self.config = config
        self.height, self.width = image.shape
        self.index = grid_indices((self.height, self.width))
        self.targets = pyramid_targets(image, model.config.scales)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.edge = self.homogeneity = None
        if config.edge_strength > 0 or config.sparsity_weight > 0:
            features = extract_features(image)
            self.edge = torch.from_numpy(features.edge.reshape(-1))
            self.homogeneity = torch.from_numpy(features.homogeneity)

    def _batch(self) -> torch.Tensor | None:
        """Flat indices of a random pixel mini-batch, or None for all pixels."""
        n = self.targets.shape[1]
        if n <= self.config.batch_pixels:
            return None
        return torch.randint(0, n, (self.config.batch_pixels,), generator=self.generator)

    def _forward(self, params: dict[str, torch.Tensor] | None, index: tuple[torch.Tensor, ...]) -> torch.Tensor:
        sizes = (self.height, self.width)
        return self.model(index, sizes) if params is None else functional_call(self.model, params, (index, sizes))

    def _sparsity(self, params: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """features.losses.sparsity_loss on random p x p patches (about a quarter of the batch's pixels)."""
        p = min(self.config.sparsity_patch, self.height, self.width)
        count = max(1, self.config.batch_pixels // (4 * p * p))
        top = torch.randint(0, self.height - p + 1, (count, 1, 1), generator=self.generator)
        left = torch.randint(0, self.width - p + 1, (count, 1, 1), generator=self.generator)
        rows = (top + torch.arange(p)[:, None]).expand(count, p, p)
        cols = (left + torch.arange(p)[None, :]).expand(count, p, p)
        pred = self._forward(params, (rows.reshape(-1), cols.reshape(-1))).sum(dim=1).reshape(count, p, p)
        return sparsity_loss(pred, self.homogeneity[rows, cols])

    def _loss(self, params: dict[str, torch.Tensor] | None, coarse_weight: float,
              regularise: bool = True) -> torch.Tensor:
        """Final-scale (optionally edge-weighted) MSE + fading coarse-scale MSEs + the sparsity term."""
        idx = self._batch()
        index = self.index if idx is None else tuple(axis[idx] for axis in self.index)
        targets = self.targets if idx is None else self.targets[:, idx]
        partial = torch.cumsum(self._forward(params, index), dim=1).T  # (S, B): reconstruction from bands 1..s
        if self.edge is not None and self.config.edge_strength > 0:
            edge = self.edge if idx is None else self.edge[idx]
            loss = edge_weighted_mse(partial[-1], targets[-1], edge, self.config.edge_strength)
        else:
            loss = (partial[-1] - targets[-1]).pow(2).mean()
        if coarse_weight > 0 and partial.shape[0] > 1:
            loss = loss + coarse_weight * (partial[:-1] - targets[:-1]).pow(2).mean()
        if regularise and self.config.sparsity_weight > 0:
            loss = loss + self.config.sparsity_weight * self._sparsity(params)
        return loss

    def fit(self, progress: Progress | None = None) -> float:
        """Float training with Adam and a cosine schedule; the coarse-scale weights fade out."""
        cfg = self.config
        if cfg.steps <= 0:
            return float("nan")
        opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=cfg.lr * 0.02)
        fade = max(1, int(cfg.steps * cfg.coarse_fraction))
        loss = torch.tensor(float("nan"))
        for step in range(cfg.steps):
            weight = cfg.coarse_weight * max(0.0, 1 - step / fade)
            opt.zero_grad(set_to_none=True)
            loss = self._loss(None, weight)
            loss.backward()
            opt.step()
            sched.step()
            if progress:
                progress(step + 1, cfg.steps)
        return float(loss.detach())

    def loss_closure(self) -> torch.Tensor:
        """Final-scale loss on a fresh mini-batch (for sensitivity estimates)."""
        return self._loss(None, 0.0, regularise=False)

    def quantisation_aware_finetune(self, init: list[torch.Tensor], indices: list[np.ndarray],
                                    progress: Progress | None = None) -> None:
        """Fine-tune through straight-through quantisation at fixed steps, with an L1 rate proxy on the symbols."""
        cfg = self.config
        names = [name for name, _ in self.model.named_parameters()]
        params = list(self.model.parameters())
        steps = [torch.as_tensor(step_values(idx), dtype=torch.float32).reshape(-1, *([1] * (p.dim() - 1)))
                 for p, idx in zip(params, indices)]
        opt = torch.optim.Adam(params, lr=cfg.qat_lr)
        count = sum(p.numel() for p in params)
        for step in range(cfg.qat_steps):
            opt.zero_grad(set_to_none=True)
            quantised = {n: fake_quantize(p, p0, s) for n, p, p0, s in zip(names, params, init, steps)}
            rate = sum(((p - p0) / s).abs().sum() for p, p0, s in zip(params, init, steps)) / count
            loss = self._loss(quantised, 0.0) + cfg.rate_weight * rate
            loss.backward()
            opt.step()
            if progress:
                progress(step + 1, cfg.qat_steps)


@torch.no_grad()
def predict(model: nn.Module, height: int, width: int, chunk: int = 65536) -> np.ndarray:
    """Full-resolution prediction (sum over scales) in normalised units, shape (H, W)."""
    index = grid_indices((height, width))
    n = height * width
    out = torch.cat([model(tuple(axis[i:i + chunk] for axis in index), (height, width)).sum(dim=1)
                     for i in range(0, n, chunk)])
    return out.reshape(height, width).numpy()


def psnr_normalised(pred: np.ndarray, target: np.ndarray, peak: float) -> float:
    """PSNR of normalised-unit arrays with a given peak (also in normalised units)."""
    mse = float(np.mean((pred.astype(np.float64) - target) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)
