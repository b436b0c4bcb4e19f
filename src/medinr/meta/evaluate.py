"""How fast a seed network fits from an init: PSNR after N codec fitting steps, steps to a reference PSNR,
and the init/loss ablation (issue 3, item 6) built from them.

Every measurement runs the codec's own float fitting (:class:`medinr.fit.FrameFitter`, Adam with a
cosine schedule over exactly N steps, no quantisation) on a z-scored image, so "PSNR at N steps" is
what an encode with ``fit_steps=N`` reaches before quantisation. PSNR uses the fastMRI peak (the
image's max - min), as :mod:`medinr.metrics` does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from medinr.config import EncoderConfig
from medinr.fit import FitConfig, FrameFitter, predict, psnr_normalised
from medinr.meta.inits import InitFile, random_init
from medinr.models import with_params
from medinr.models.seed import SeedConfig, SeedINR

STEP_GRID = (25, 50, 100, 200, 500, 1000)


def default_seed_config() -> SeedConfig:
    """The seed config the codec's defaults give (``EncoderConfig``); ``scales`` is set per image size."""
    enc = EncoderConfig()
    return SeedConfig(freqs_per_band=enc.freqs_per_band, hidden=enc.default_width, layers=enc.layers,
                      activation=enc.activation, omega0=enc.omega0)


def model_with(config: SeedConfig, params: Sequence[torch.Tensor]) -> SeedINR:
    """A seed network of ``config`` holding copies of ``params`` (``parameters()`` order)."""
    return with_params(SeedINR(config), params)


def fit_psnr(image: np.ndarray, config: SeedConfig, params: Sequence[torch.Tensor], steps: int,
             fit: FitConfig | None = None) -> float:
    """PSNR of a normalised (H, W) image after ``steps`` float fitting steps from ``params``."""
    model = model_with(config, params)
    FrameFitter(model, image, replace(fit or FitConfig(), steps=steps, qat_steps=0)).fit()
    return psnr_normalised(predict(model, *image.shape), image, float(np.ptp(image)) or 1.0)


def fit_curve(image: np.ndarray, config: SeedConfig, params: Sequence[torch.Tensor], steps: Sequence[int],
              fit: FitConfig | None = None) -> dict[int, float]:
    """PSNR after each budget in ``steps`` (one fit per budget: the schedule depends on it)."""
    return {n: fit_psnr(image, config, params, n, fit) for n in steps}


def steps_to_reach(curve: dict[int, float], goal: float) -> int | None:
    """Smallest measured budget whose PSNR reaches ``goal`` (None: none does)."""
    return next((n for n in sorted(curve) if curve[n] >= goal), None)


@dataclass(frozen=True)
class Variant:
    """One ablation arm: an init (None: the random init), the fitting options, and optionally a FiLM map
    (:class:`medinr.meta.film.FilmMap`) that conditions the init on each image."""

    init: InitFile | None = None
    fit: FitConfig = field(default_factory=FitConfig)
    film: Any = None


def image_config(shape: tuple[int, int], base: SeedConfig) -> SeedConfig:
    """The codec's seed config for an image of ``shape`` (scales from the size, the rest from ``base``)."""
    return replace(base, scales=SeedConfig.scales_for(*shape))


def ablation(images: dict[str, np.ndarray], variants: dict[str, Variant], base: SeedConfig | None = None,
             steps: Sequence[int] = (50, 100, 200, 500), reference: str = "random",
             reference_steps: int = 1000, grid: Sequence[int] = STEP_GRID) -> list[dict[str, Any]]:
    """Per image and variant: PSNR at each budget, fitting seconds, and the fewest steps (among ``steps``
    and ``grid``; None: more than all) that reach the ``reference`` variant's PSNR at ``reference_steps``;
    the 10x convergence target is ``steps_to_reference <= reference_steps / 10``. ``images`` are
    normalised (H, W) arrays; ``base`` gives every config field but ``scales`` (default: the codec's
    default config)."""
    if reference not in variants:
        raise ValueError(f"the reference variant {reference!r} is not among the variants")
    base = base or default_seed_config()
    rows = []
    for image_name, image in images.items():
        config = image_config(image.shape, base)
        curves, seconds = {}, {}
        for name, variant in variants.items():
            params = (variant.init.init_for(config) if variant.init else random_init("seed", config)).params
            if variant.film is not None:
                params = variant.film.condition(params, image)
            budgets = sorted(set(steps) | set(grid) | ({reference_steps} if name == reference else set()))
            start = time.perf_counter()
            curves[name] = fit_curve(image, config, params, budgets, variant.fit)
            seconds[name] = time.perf_counter() - start
        goal = curves[reference][reference_steps]
        for name, curve in curves.items():
            rows.append({"image": image_name, "variant": name, "psnr": {n: curve[n] for n in steps},
                         "reference_psnr": goal, "steps_to_reference": steps_to_reach(curve, goal),
                         "fit_seconds": seconds[name]})
    return rows
