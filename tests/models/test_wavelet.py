"""The CDF 9/7 latent basis: our synthesis inverts PyWavelets' analysis (both of its code paths), the per-scale parts
sum to the image, padding, and the wavelet grid config's layout and header."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from medinr.models import wavelet
from medinr.models.grid import GridConfig, GridModel


def _bands(image: np.ndarray, levels: int) -> tuple[torch.Tensor, list[tuple[torch.Tensor, ...]]]:
    approx, details = wavelet.analysis(image, levels)
    return torch.from_numpy(approx), [tuple(torch.from_numpy(band) for band in level) for level in details]


@pytest.mark.parametrize(("shape", "levels"), [((64, 96), 3), ((16, 16), 4), ((8, 24), 3), ((128, 32), 5)])
def test_synthesis_inverts_the_analysis_and_matches_waverec2(shape: tuple[int, int], levels: int) -> None:
    image = np.random.default_rng(0).random(shape)
    approx, details = _bands(image, levels)
    with torch.no_grad():  # the decoder's path (slices): the per-scale parts sum to the inverse transform
        ours = wavelet.scale_parts(approx, details).sum(0).numpy()
    reference = pywt.waverec2([approx.numpy(), *[tuple(b.numpy() for b in level) for level in details]],
                              "bior4.4", mode="periodization")
    assert np.abs(ours - image).max() < 1e-9
    assert np.abs(ours - reference).max() < 1e-12


def test_training_matrix_path_equals_the_decoder_slices() -> None:
    approx, details = _bands(np.random.default_rng(1).random((64, 64)), 4)
    with torch.no_grad():
        slices = wavelet.scale_parts(approx, details)
    with torch.enable_grad():
        matrix = wavelet.scale_parts(approx.requires_grad_(True), details)
    assert 2 * details[-1][0].shape[-1] <= wavelet.MATRIX_MAX_SIDE  # every level took the matrix path
    assert torch.allclose(matrix.detach(), slices, atol=1e-6)  # the matrix is float32


def test_scale_parts_sum_to_the_image_and_each_holds_its_own_scale() -> None:
    image = np.random.default_rng(2).random((32, 48))
    approx, details = _bands(image, 3)
    with torch.no_grad():
        parts = wavelet.scale_parts(approx, details)
    assert parts.shape == (4, 32, 48)
    assert np.abs(parts.sum(0).numpy() - image).max() < 1e-9
    # the finest part alone: only the finest details, everything else zero
    zeros = [tuple(torch.zeros_like(b) for b in level) for level in details]
    with torch.no_grad():
        finest = wavelet.scale_parts(torch.zeros_like(approx), [*zeros[:-1], details[-1]]).sum(0)
    assert torch.allclose(parts[0], finest, atol=1e-12)


@pytest.mark.parametrize("rows", [(0, 5), (37, 251), (100, 256), (0, 256)])
def test_scale_parts_of_a_row_window_are_those_rows_of_the_whole(rows: tuple[int, int]) -> None:
    """Windows that reach past either edge at the coarse levels (read periodically) included."""
    approx, details = _bands(np.random.default_rng(4).random((256, 64)), 5)
    with torch.no_grad():
        whole, window = wavelet.scale_parts(approx, details), wavelet.scale_parts(approx, details, rows)
    assert torch.equal(window, whole[:, rows[0]:rows[1]])


def test_padding_mirrors_to_a_multiple_of_the_level_unit() -> None:
    frame = np.arange(30 * 17, dtype=np.float64).reshape(30, 17)
    assert wavelet.padded_size(30, 17, 3) == (32, 24)
    padded = wavelet.pad_frame(frame, 3)
    assert padded.shape == (32, 24) and np.array_equal(padded[:30, :17], frame)
    assert np.array_equal(padded[30, :17], frame[29]) and np.array_equal(padded[:30, 17], frame[:, 16])


def test_wavelet_config_layout() -> None:
    config = GridConfig(levels=3, hidden=4, upsampling="cdf97")
    assert config.wavelet and config.grids == 10 and config.channels == 4
    # finest level's H, V, D, then the next level's, ..., the approximation last
    assert config.level_shapes(60, 40) == [(32, 20)] * 3 + [(16, 10)] * 3 + [(8, 5)] * 4
    assert config.parents() == [3, 4, 5, 6, 7, 8, 9, 9, 9, None]
    assert config.coarse_to_fine()[0] == 9
    assert GridConfig.from_bytes(config.to_bytes()) == config
    assert GridConfig.levels_for(2000, 1800, 7, wavelet=True) == 5 and GridConfig.levels_for(64, 200, 7, True) == 3
    with pytest.raises(ValueError, match="invalid grid configuration"):
        GridConfig.from_bytes(GridConfig(levels=3, upsampling="cdf97", dims=3).to_bytes())


def test_the_magnitude_flag_rides_on_the_upsampling_byte() -> None:
    plain = GridConfig(levels=3, hidden=4, upsampling="cdf97")
    magnitudes = GridConfig(levels=3, hidden=4, upsampling="cdf97", context_magnitudes=True)
    assert magnitudes.to_bytes()[5] == plain.to_bytes()[5] | 0x80
    assert magnitudes.to_bytes()[:5] + magnitudes.to_bytes()[6:] == plain.to_bytes()[:5] + plain.to_bytes()[6:]
    assert GridConfig.from_bytes(magnitudes.to_bytes()) == magnitudes
    assert GridModel(magnitudes).context[0].shape == (8, 2 * 13 + 1)
    with pytest.raises(ValueError, match="invalid grid configuration"):
        GridConfig.from_bytes(plain.to_bytes()[:5] + bytes([0x80 | 3]) + plain.to_bytes()[6:])


def test_untrained_wavelet_model_is_the_inverse_transform_of_the_gained_latents() -> None:
    config = GridConfig(levels=3, hidden=4, upsampling="cdf97")
    model = GridModel(config)
    image = np.random.default_rng(3).random((40, 24))
    approx, details = _bands(wavelet.pad_frame(image, 3), 3)
    with torch.no_grad():
        model.gain.fill_(0.5)
        latents = [(band / 0.5).float() for level in reversed(details) for band in level] + [(approx / 0.5).float()]
        out = model.synthesize(latents, image.shape).numpy()
    assert out.shape == image.shape and np.abs(out - image).max() < 1e-4
    assert model.multiply_adds_per_pixel() < 2000
