"""Sparsity-aware gradient penalty and edge-weighted MSE."""

from __future__ import annotations

import pytest
import torch

from medinr.errors import InputError
from medinr.features.losses import edge_weighted_mse, sparsity_loss


def test_sparsity_zero_on_constant_image() -> None:
    pred = torch.full((2, 1, 8, 9), 3.5)
    assert sparsity_loss(pred, torch.ones(8, 9)).item() == 0.0


def test_sparsity_on_ramp_matches_hand_value() -> None:
    h, w = 4, 5
    ramp = torch.arange(w, dtype=torch.float32).repeat(h, 1) * 0.5  # slope 0.5 along x
    # forward differences: 0.5 in the first w-1 columns, 0 in the last; none along y
    expected = 0.5 * (w - 1) / w
    assert sparsity_loss(ramp, torch.ones(h, w)).item() == pytest.approx(expected)
    weight = torch.zeros(h, w)
    weight[:, 0] = 2.0
    assert sparsity_loss(ramp[None, None], weight).item() == pytest.approx(2.0 * 0.5 / w)


def test_sparsity_gradient_flows_and_weights_select_pixels() -> None:
    pred = torch.randn(1, 1, 6, 6, requires_grad=True)
    weight = torch.zeros(6, 6)
    weight[:3] = 1.0
    sparsity_loss(pred, weight).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    # pixels whose differences all carry zero weight get no gradient
    assert pred.grad[0, 0, 5].abs().sum() == 0


def test_edge_weighted_mse() -> None:
    pred, target = torch.zeros(1, 1, 2, 2, requires_grad=True), torch.ones(1, 1, 2, 2)
    edge = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    loss = edge_weighted_mse(pred, target, edge, strength=3.0)
    assert loss.item() == pytest.approx((4.0 + 1 + 1 + 1) / 4)
    loss.backward()
    assert pred.grad[0, 0, 0, 0] == pytest.approx(4 * pred.grad[0, 0, 1, 1])
    assert edge_weighted_mse(pred, target, edge, strength=0.0).item() == pytest.approx(1.0)


def test_shape_errors() -> None:
    with pytest.raises(InputError):
        sparsity_loss(torch.zeros(5), torch.ones(5))
    with pytest.raises(InputError):
        sparsity_loss(torch.zeros(4, 4), torch.ones(3, 4))
    with pytest.raises(InputError):
        sparsity_loss(torch.zeros(4, 4), torch.ones(2, 4, 4))
    with pytest.raises(InputError):
        edge_weighted_mse(torch.zeros(2, 2), torch.zeros(2, 3), torch.zeros(2, 2), 1.0)
    with pytest.raises(InputError):
        edge_weighted_mse(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2, 2), -1.0)
