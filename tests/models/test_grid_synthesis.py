"""Partial synthesis of the grid INR: a window of an image (the curvature probes and training bands of large frames)
gives exactly what the whole image's synthesis gives there, pyramid or wavelet latents; the probes' windows."""

from __future__ import annotations

import pytest
import torch

from medinr.archs.grid import PROBE_PIXELS, PROBE_TILES, probe_windows
from medinr.models.grid import GridConfig, GridModel


def _random_model(config: GridConfig, seed: int = 0) -> GridModel:
    """A model whose every parameter (the zero-started output layers too) is random, so each part shows."""
    gen = torch.Generator().manual_seed(seed)
    model = GridModel(config)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model


@pytest.mark.parametrize("upsampling", ["bicubic", "bilinear", "cdf97"])
@pytest.mark.parametrize("window", [(0, 9, 0, 13), (5, 21, 7, 30), (30, 37, 40, 45), (0, 37, 0, 45), (36, 37, 3, 4)])
def test_window_equals_that_part_of_the_whole_image(upsampling: str, window: tuple[int, int, int, int]) -> None:
    config = GridConfig(levels=4, hidden=8, refine=4, upsampling=upsampling)
    model = _random_model(config)
    size = (37, 45)
    gen = torch.Generator().manual_seed(1)
    latents = [torch.randn(shape, generator=gen) for shape in config.level_shapes(*size)]
    with torch.no_grad():  # wavelet latents: the windowed inverse transform of a frame padded to 48 x 48
        whole = model.synthesize(latents, size)
        part = model.synthesize(latents, size, window=window)
    top, bottom, left, right = window
    assert part.shape == (bottom - top, right - left)
    torch.testing.assert_close(part, whole[top:bottom, left:right], rtol=0, atol=1e-5)


def test_probe_windows_sit_inside_large_frames_and_hold_the_probe_budget() -> None:
    assert probe_windows(512, 512) is None and probe_windows(300, 400) is None
    for height, width in [(2000, 2000), (2048, 1536), (3000, 600)]:
        windows = probe_windows(height, width)
        assert windows is not None and len(windows) == PROBE_TILES**2
        assert all(0 <= t < b <= height and 0 <= l < r <= width for t, b, l, r in windows)
        pixels = sum((b - t) * (r - l) for t, b, l, r in windows)
        assert 0.5 * min(PROBE_PIXELS, height * width / 4) <= pixels <= PROBE_PIXELS
        rows = sorted({t for t, *_ in windows})
        assert rows[0] < height / PROBE_TILES and rows[-1] > height * (PROBE_TILES - 1) / PROBE_TILES - rows[0] - 1


@pytest.mark.parametrize("config, size", [(GridConfig(levels=4, hidden=8, refine=4, upsampling="cdf97"), (37, 45)),
                                          (GridConfig(levels=3, hidden=8, refine=4), (37, 45)),
                                          (GridConfig(levels=3, hidden=8, refine=4, dims=3, static=1), (3, 12, 10))])
def test_only_latents_and_gains_enter_the_synthesis_inputs(config: GridConfig, size: tuple[int, ...]) -> None:
    """The curvature probes compute the synthesis inputs once for every network tensor but the gains: exact only if
    no other tensor enters them. Each tensor perturbed in turn: the inputs move for the gains alone, and the synthesis
    from the inputs is the synthesis."""
    model = _random_model(config)
    gen = torch.Generator().manual_seed(2)
    latents = [torch.randn(shape, generator=gen) for shape in config.level_shapes(*size)]
    with torch.no_grad():
        inputs = model.synthesis_inputs(latents, size)
        assert torch.equal(model.from_inputs(inputs), model.synthesize(latents, size))
        for name, p in model.named_parameters():
            saved = p.clone()
            p.add_(0.5)
            moved = not torch.equal(model.synthesis_inputs(latents, size), inputs)
            p.copy_(saved)
            assert moved == (name == "gain"), name
