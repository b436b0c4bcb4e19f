"""Per-image fitting: the coarse-to-fine loop, and the feature-guided loss options (off by default)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from medinr.features import extract_features
from medinr.fit import FitConfig, FrameFitter, predict, psnr_normalised, pyramid_targets
from medinr.meta.inits import random_init
from medinr.models.seed import SeedConfig, SeedINR
from medinr.preprocess import Normalisation

CONFIG = SeedConfig(scales=4, hidden=8)
FIT = FitConfig(steps=30, batch_pixels=512, qat_steps=0)


@pytest.fixture(scope="module")
def crop(shared_data: Path) -> np.ndarray:
    """A z-scored 32x32 crop of a chest X-ray (lung field and a rib edge)."""
    import imagecodecs

    pixels = imagecodecs.imread(shared_data / "cxr" / "test" / "00000001_000.png")[400:432, 400:432]
    return Normalisation.of(pixels).forward(pixels)


def _model() -> SeedINR:
    model = SeedINR(CONFIG)
    with torch.no_grad():
        for p, v in zip(model.parameters(), random_init("seed", CONFIG).params):
            p.copy_(v)
    return model


def _fit_psnr(image: np.ndarray, fit: FitConfig) -> float:
    model = _model()
    FrameFitter(model, image, fit).fit()
    return psnr_normalised(predict(model, *image.shape), image, float(np.ptp(image)))


def test_pyramid_ends_with_the_image(crop: np.ndarray) -> None:
    targets = pyramid_targets(crop, 4)
    assert targets.shape == (4, 32 * 32) and torch.equal(targets[-1], torch.from_numpy(crop.reshape(-1)))
    assert float(targets[0].std()) < float(targets[-1].std())


def test_fitting_improves_on_the_init(crop: np.ndarray) -> None:
    before = psnr_normalised(predict(_model(), 32, 32), crop, float(np.ptp(crop)))
    assert _fit_psnr(crop, FIT) > before + 3


def test_edge_weighted_loss_matches_hand_computation(crop: np.ndarray) -> None:
    fitter = FrameFitter(_model(), crop, replace(FIT, batch_pixels=32 * 32, edge_strength=2.0))
    with torch.no_grad():
        pred = predict(fitter.model, 32, 32)
        edge = extract_features(crop).edge
        expected = np.mean((1 + 2.0 * edge) * (pred - crop) ** 2)
        assert float(fitter._loss(None, 0.0)) == pytest.approx(expected, rel=1e-4)


def test_sparsity_term_is_zero_for_a_constant_network_and_runs_in_fitting(crop: np.ndarray) -> None:
    model = _model()
    with torch.no_grad():
        model.weights[-1].zero_()
        model.biases[-1].fill_(0.5)
    fitter = FrameFitter(model, crop, replace(FIT, sparsity_weight=0.1))
    with torch.no_grad():
        assert float(fitter._sparsity(None)) == 0.0
    plain, sparse = _fit_psnr(crop, FIT), _fit_psnr(crop, replace(FIT, sparsity_weight=0.1))
    assert np.isfinite(sparse) and sparse != plain
