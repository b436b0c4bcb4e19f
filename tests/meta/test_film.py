"""FiLM conditioning of the seed init: identity at start, 8-bit codes, per-scale modulation, and one outer step
that moves both the init and the map."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from medinr.meta.evaluate import default_seed_config
from medinr.meta.film import FilmMap, dequantise_code, film_train, quantise_code
from medinr.meta.inits import InitFile, random_init
from medinr.models.seed import SeedConfig

CONFIG = replace(default_seed_config(), scales=3, hidden=8)


@pytest.fixture(scope="module")
def film(mri_crop: torch.Tensor) -> FilmMap:
    features = np.random.default_rng(0).normal(size=(16, 58))
    return FilmMap.identity(features, CONFIG, dims=4)


def test_identity_map_leaves_the_init_unchanged(film: FilmMap, mri_crop: torch.Tensor) -> None:
    params = random_init("seed", CONFIG).params
    assert all(torch.equal(a, b) for a, b in zip(film.condition(params, mri_crop.numpy()), params))


def test_codes_are_8_bit(film: FilmMap, mri_crop: torch.Tensor) -> None:
    symbols = np.arange(256, dtype=np.uint8)
    assert np.array_equal(quantise_code(dequantise_code(symbols)), symbols)
    code = film.code(mri_crop.numpy())
    assert code.shape == (4,) and torch.equal(dequantise_code(quantise_code(code)), code.detach())


def test_modulation_scales_and_shifts_hidden_layers_of_the_mapped_scales_only(film: FilmMap) -> None:
    moved = FilmMap(film.mean, film.std, film.proj, film.scale + 0.1, film.shift + 0.2)
    wide = random_init("seed", replace(CONFIG, scales=5)).params
    code = torch.full((4,), 0.5)
    out = moved.modulate(wide, code)
    n = len(wide) // 2
    gamma, beta = 1 + 0.5 * 4 * 0.1, 0.5 * 4 * 0.2
    assert torch.allclose(out[0][:3], wide[0][:3] * gamma) and torch.allclose(out[n][:3], wide[n][:3] * gamma + beta)
    assert torch.equal(out[0][3:], wide[0][3:]) and torch.equal(out[n][3:], wide[n][3:])
    assert torch.equal(out[n - 1], wide[n - 1]) and torch.equal(out[-1], wide[-1])  # the output layer is not modulated


def test_one_outer_step_moves_the_init_and_the_map(cine_folder: Path) -> None:
    config = replace(CONFIG, scales=SeedConfig.scales_for(16, 16))
    base = InitFile.from_training("seed-mri", "seed", "mri", config, {8: list(random_init("seed", config).params)}, {})
    trained, film = film_train(base, [cine_folder], dims=4, steps=1, inner_steps=2, tasks_per_batch=2, task_size=16,
                               support_pixels=64, query_pixels=64, width=8)
    assert film is not None and film.scale.abs().sum() > 0 and film.shift.abs().sum() > 0
    assert any(not torch.equal(a, b) for a, b in zip(trained.params[8], base.params[8]))
