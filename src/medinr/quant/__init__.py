"""Quantisation of network parameters (as deltas from the initialisation) with per-slice steps.

Every parameter tensor has a leading group dimension (the INR's scales); each slice gets its own
step ``2 ** ((index - STEP_OFFSET) / STEPS_PER_OCTAVE)``, an index of one byte in the bitstream.
Steps are set by rate-distortion: a slice's step is proportional to ``1/sqrt(F)``, F its mean
squared loss gradient (the high-rate optimum, equal marginal distortion per bit), times one global
factor that rate control searches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

STEP_OFFSET = 160
STEPS_PER_OCTAVE = 8


def step_values(indices: np.ndarray) -> np.ndarray:
    return 2.0 ** ((np.asarray(indices, dtype=np.float64) - STEP_OFFSET) / STEPS_PER_OCTAVE)


def _broadcast(steps: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """Per-slice steps shaped to broadcast over a (G, ...) parameter tensor."""
    return torch.as_tensor(steps, dtype=like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def fisher_information(params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], batches: int = 4) -> list[np.ndarray]:
    """Mean squared gradient of each parameter slice, averaged over a few loss evaluations."""
    acc = [torch.zeros(p.shape[0]) for p in params]
    for _ in range(batches):
        grads = torch.autograd.grad(loss_fn(), params)
        for a, g in zip(acc, grads):
            a += g.pow(2).flatten(1).mean(1)
    return [np.maximum((a / batches).numpy().astype(np.float64), 1e-20) for a in acc]


def step_indices(fisher: list[np.ndarray], log2_factor: float) -> list[np.ndarray]:
    """One step index per slice: ``log2 step = log2_factor - log2(F)/2``, clipped to a byte."""
    out = []
    for f in fisher:
        idx = np.rint((log2_factor - 0.5 * np.log2(f)) * STEPS_PER_OCTAVE + STEP_OFFSET)
        out.append(np.clip(idx, 0, 255).astype(np.uint8))
    return out


def fitting_indices(indices: list[np.ndarray], params: Iterable[torch.Tensor], init: Iterable[torch.Tensor],
                    max_abs: int) -> list[np.ndarray]:
    """``indices`` raised where a slice's largest delta from the init would need more than ``max_abs`` steps, so
    every symbol fits the entropy coder (a huge curvature, e.g. after λ ran away at an unreachable rate target, asks
    for steps far finer than the parameters' range); other slices keep theirs."""
    out = []
    for idx, p, p0 in zip(indices, params, init):
        largest = (p.detach() - p0).abs().flatten(1).amax(1).double().numpy()
        floor = np.ceil((np.log2(np.maximum(largest, 1e-300) / max_abs)) * STEPS_PER_OCTAVE + STEP_OFFSET)
        out.append(np.clip(np.maximum(idx.astype(np.float64), floor), 0, 255).astype(np.uint8))
    return out


def quantize(params: Iterable[torch.Tensor], init: Iterable[torch.Tensor], indices: list[np.ndarray]) -> list[np.ndarray]:
    """Integer symbols ``round((param - init) / step)`` per tensor."""
    out = []
    for p, p0, idx in zip(params, init, indices):
        delta = (p.detach() - p0) / _broadcast(step_values(idx), p)
        out.append(torch.round(delta).to(torch.int64).numpy())
    return out


def dequantize(symbols: list[np.ndarray], init: Iterable[torch.Tensor], indices: list[np.ndarray]) -> list[torch.Tensor]:
    """Parameters ``init + symbols * step`` (the decoder's reconstruction)."""
    out = []
    for q, p0, idx in zip(symbols, init, indices):
        sym = torch.as_tensor(np.asarray(q).reshape(p0.shape), dtype=p0.dtype)
        out.append(p0 + sym * _broadcast(step_values(idx), p0))
    return out


def fake_quantize(param: torch.Tensor, init: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Straight-through quantisation for quantisation-aware fine-tuning: forward quantised, backward identity."""
    quantised = init + torch.round((param - init) / steps) * steps
    return param + (quantised - param).detach()
