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
    rate_weight: float = 1e-3
    seed: int = 0


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

    def _batch(self) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        n = self.targets.shape[1]
        if n <= self.config.batch_pixels:
            return self.index, self.targets
        idx = torch.randint(0, n, (self.config.batch_pixels,), generator=self.generator)
        return tuple(axis[idx] for axis in self.index), self.targets[:, idx]

    def _loss(self, params: dict[str, torch.Tensor] | None, coarse_weight: float) -> torch.Tensor:
        index, targets = self._batch()
        sizes = (self.height, self.width)
        out = self.model(index, sizes) if params is None else functional_call(self.model, params, (index, sizes))
        partial = torch.cumsum(out, dim=1).T  # (S, B): reconstruction using bands 1..s
        errors = (partial - targets).pow(2).mean(dim=1)
        loss = errors[-1]
        if coarse_weight > 0 and errors.shape[0] > 1:
            loss = loss + coarse_weight * errors[:-1].mean()
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
        return self._loss(None, 0.0)

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
