"""Fitting one network to a whole normalised (T, H, W) sequence, with temporal-consistency regularisation.

:class:`SequenceFitter` is a :class:`medinr.fit.FrameFitter` whose samples are (t, y, x) points: it keeps
the float fit, the quantisation-aware fine-tuning and the sensitivity closure of the image fitter and
replaces only the loss. With ``temporal_weight > 0`` half of each batch are the next (or, in the last
frame, previous) frame's samples at the same (y, x), and the loss adds
``temporal_weight * temporal_consistency_loss`` on those pairs: the reconstruction's frame-to-frame
change should equal the source's, which is what keeps coding noise from flickering.
:func:`fit_sequence_psnr` is the quality-after-N-steps measure that meta-training of the video init uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from medinr.fit import FitConfig, FrameFitter, psnr_normalised
from medinr.models import with_params
from medinr.models.encoding import grid_indices
from medinr.models.seed import SeedConfig, SeedINR
from medinr.models.video import predict_grid, sequence_pyramid_targets

#: weight of the temporal-consistency term the ``seed-video`` codec fits with
TEMPORAL_WEIGHT = 1.0


def temporal_consistency_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the frame-to-frame changes (along dim 0) of ``pred`` and ``target``.

    Zero whenever the reconstruction's error is the same in consecutive frames (e.g. a static source
    reconstructed by a static image), whatever its size; works on (T, H, W) stacks and on (2, B) pairs.
    """
    return (torch.diff(pred, dim=0) - torch.diff(target, dim=0)).pow(2).mean()


class SequenceFitter(FrameFitter):
    """Fits one model to one normalised (T, H, W) sequence (space-time pyramid, temporal term)."""

    def __init__(self, model: nn.Module, stack: np.ndarray, config: FitConfig, temporal_weight: float = 0.0) -> None:
        if stack.ndim != 3:
            raise ValueError(f"SequenceFitter needs a (T, H, W) stack, got shape {stack.shape}")
        self.model = model
        self.config = config
        self.sizes = tuple(int(n) for n in stack.shape)
        self.index = grid_indices(self.sizes)
        self.targets = sequence_pyramid_targets(stack, model.config.scales)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.temporal_weight = float(temporal_weight)
        self.edge = self.homogeneity = None  # the image-feature terms are 2D; not used for sequences

    def _points(self, regularise: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Flat indices of the batch (None: every point) and, with the temporal term, of their neighbours."""
        n = self.targets.shape[1]
        frame = self.sizes[1] * self.sizes[2]
        pairs = regularise and self.temporal_weight > 0
        count = self.config.batch_pixels // 2 if pairs else self.config.batch_pixels
        idx = None if n <= count else torch.randint(0, n, (count,), generator=self.generator)
        if not pairs:
            return idx, None
        flat = torch.arange(n) if idx is None else idx
        last = flat >= n - frame
        return flat, torch.where(last, flat - frame, flat + frame)

    def _loss(self, params: dict[str, torch.Tensor] | None, coarse_weight: float,
              regularise: bool = True) -> torch.Tensor:
        """Final-scale MSE + fading coarse-scale MSEs (+ the temporal-consistency term on neighbour pairs)."""
        idx, neighbour = self._points(regularise)
        points = idx if neighbour is None else torch.cat([idx, neighbour])
        index = self.index if points is None else tuple(axis[points] for axis in self.index)
        targets = self.targets if points is None else self.targets[:, points]
        args = (index, self.sizes)
        out = self.model(*args) if params is None else functional_call(self.model, params, args)
        partial = torch.cumsum(out, dim=1).T  # (S, B): reconstruction from bands 1..s
        batch = partial.shape[1] if neighbour is None else len(idx)
        errors = (partial[:, :batch] - targets[:, :batch]).pow(2).mean(dim=1)
        loss = errors[-1]
        if coarse_weight > 0 and errors.shape[0] > 1:
            loss = loss + coarse_weight * errors[:-1].mean()
        if neighbour is not None:
            pred = partial[-1].reshape(2, batch)
            loss = loss + self.temporal_weight * temporal_consistency_loss(pred, targets[-1].reshape(2, batch))
        return loss


def fit_sequence_psnr(stack: np.ndarray, config: SeedConfig, params: Sequence[torch.Tensor], steps: int,
                      fit: FitConfig | None = None, temporal_weight: float = TEMPORAL_WEIGHT) -> float:
    """PSNR of a normalised (T, H, W) stack after ``steps`` float fitting steps from ``params`` (peak: its range)."""
    model = with_params(SeedINR(config), params)
    SequenceFitter(model, stack, replace(fit or FitConfig(), steps=steps, qat_steps=0), temporal_weight).fit()
    return psnr_normalised(predict_grid(model, stack.shape), stack, float(np.ptp(stack)) or 1.0)
