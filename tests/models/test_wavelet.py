"""The CDF 9/7 latent basis: our synthesis inverts PyWavelets' analysis (both of its code paths), the per-scale parts
sum to the image, padding, and the wavelet grid config's layout and header."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from medinr.models import wavelet
from medinr.models.grid import GridConfig, GridModel


def _bands(image: np.ndarray, levels: int,
           symmetric: bool = False) -> tuple[torch.Tensor, list[tuple[torch.Tensor, ...]]]:
    approx, details = wavelet.analysis(image, levels, symmetric)
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


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("rows", [(0, 5), (37, 251), (100, 256), (0, 256), (255, 256)])
def test_scale_parts_of_a_row_window_are_those_rows_of_the_whole(rows: tuple[int, int], symmetric: bool) -> None:
    """Windows that reach past either edge at the coarse levels (read periodically or mirrored) included."""
    approx, details = _bands(np.random.default_rng(4).random((256, 64)), 5, symmetric)
    with torch.no_grad():
        whole = wavelet.scale_parts(approx, details, symmetric=symmetric)
        window = wavelet.scale_parts(approx, details, rows, symmetric)
    assert torch.equal(window, whole[:, rows[0]:rows[1]])


@pytest.mark.parametrize(("shape", "levels"), [((64, 96), 3), ((16, 16), 4), ((8, 24), 3), ((2, 4), 1)])
def test_the_symmetric_transform_is_critically_sampled_and_inverted_on_both_code_paths(shape: tuple[int, int],
                                                                                      levels: int) -> None:
    image = np.random.default_rng(5).random(shape)
    approx, details = _bands(image, levels, symmetric=True)
    assert approx.shape == (shape[0] >> levels, shape[1] >> levels)
    assert [level[0].shape for level in details] == [(shape[0] >> s, shape[1] >> s) for s in range(levels, 0, -1)]
    with torch.no_grad():
        slices = wavelet.scale_parts(approx, details, symmetric=True).sum(0)
    with torch.enable_grad():
        matrix = wavelet.scale_parts(approx.float().requires_grad_(True), [tuple(b.float() for b in level)
                                                                           for level in details], symmetric=True)
    assert np.abs(slices.numpy() - image).max() < 1e-9
    assert np.abs(matrix.sum(0).detach().numpy() - image).max() < 1e-5


def test_band_indices_mirror_the_bands_as_the_signal_mirror_does() -> None:
    """The symmetric transform of n samples is the periodic one of the signal mirrored about its ends (period
    2n - 2); the extension of its n / 2 low and high samples reads what that periodic transform holds beyond them."""
    signal = np.random.default_rng(6).random(16)
    low, high = pywt.dwt(np.r_[signal, signal[-2:0:-1]], "bior4.4", mode="periodization")
    reach = np.arange(-20, 40)
    for band, full in enumerate((low, high)):
        np.testing.assert_allclose(full[reach % 15], full[:8][wavelet.band_indices(reach, 8, band, True)], rtol=1e-12)
        assert set(wavelet.band_indices(reach, 1, band, True)) == {0}  # a one-sample band repeats itself
    np.testing.assert_array_equal(wavelet.band_indices(reach, 8, 0, False), reach % 8)


def test_the_symmetric_extension_keeps_a_smooth_frame_smooth_at_its_edges() -> None:
    """A plane's finest details: the periodic wrap makes a jump at every edge, the mirror a mere kink."""
    plane = np.add.outer(np.arange(64.0), 2 * np.arange(64.0))
    periodic = max(np.abs(band).max() for band in wavelet.analysis(plane, 3)[1][-1])
    symmetric = max(np.abs(band).max() for band in wavelet.analysis(plane, 3, True)[1][-1])
    assert periodic > 50 and symmetric < 0.05 * periodic


def test_padding_mirrors_to_a_multiple_of_the_level_unit() -> None:
    frame = np.arange(30 * 17, dtype=np.float64).reshape(30, 17)
    assert wavelet.padded_size(30, 17, 3) == (32, 24)
    padded = wavelet.pad_frame(frame, 3)
    assert padded.shape == (32, 24) and np.array_equal(padded[:30, :17], frame)
    assert np.array_equal(padded[30, :17], frame[29]) and np.array_equal(padded[:30, 17], frame[:, 16])


@pytest.mark.parametrize("basis", ["cdf97", "cdf97-symmetric"])
def test_wavelet_config_layout(basis: str) -> None:
    config = GridConfig(levels=3, hidden=4, upsampling=basis)
    assert config.wavelet and config.grids == 10 and config.channels == 4
    assert config.symmetric == (basis == "cdf97-symmetric") and config.init_fields().upsampling == "cdf97"
    # finest level's H, V, D, then the next level's, ..., the approximation last
    assert config.level_shapes(60, 40) == [(32, 20)] * 3 + [(16, 10)] * 3 + [(8, 5)] * 4
    assert config.parents() == [3, 4, 5, 6, 7, 8, 9, 9, 9, None]
    assert config.coarse_to_fine()[0] == 9
    assert GridConfig.from_bytes(config.to_bytes()) == config
    assert GridConfig.levels_for(2000, 1800, 7, wavelet=True) == 5 and GridConfig.levels_for(64, 200, 7, True) == 3
    with pytest.raises(ValueError, match="invalid grid configuration"):
        GridConfig.from_bytes(GridConfig(levels=3, upsampling=basis, dims=3).to_bytes())


def test_the_magnitude_flag_rides_on_the_upsampling_byte() -> None:
    plain = GridConfig(levels=3, hidden=4, upsampling="cdf97")
    magnitudes = GridConfig(levels=3, hidden=4, upsampling="cdf97", context_magnitudes=True)
    assert magnitudes.to_bytes()[5] == plain.to_bytes()[5] | 0x80
    assert magnitudes.to_bytes()[:5] + magnitudes.to_bytes()[6:] == plain.to_bytes()[:5] + plain.to_bytes()[6:]
    assert GridConfig.from_bytes(magnitudes.to_bytes()) == magnitudes
    assert GridModel(magnitudes).context[0].shape == (8, 2 * 13 + 1)
    with pytest.raises(ValueError, match="invalid grid configuration"):
        GridConfig.from_bytes(plain.to_bytes()[:5] + bytes([0x80 | 4]) + plain.to_bytes()[6:])


@pytest.mark.parametrize("basis", ["cdf97", "cdf97-symmetric"])
def test_untrained_wavelet_model_is_the_inverse_transform_of_the_gained_latents(basis: str) -> None:
    config = GridConfig(levels=3, hidden=4, upsampling=basis)
    model = GridModel(config)
    image = np.random.default_rng(3).random((40, 24))
    approx, details = _bands(wavelet.pad_frame(image, 3), 3, config.symmetric)
    with torch.no_grad():
        model.gain.fill_(0.5)
        latents = [(band / 0.5).float() for level in reversed(details) for band in level] + [(approx / 0.5).float()]
        out = model.synthesize(latents, image.shape).numpy()
    assert out.shape == image.shape and np.abs(out - image).max() < 1e-4
    assert model.multiply_adds_per_pixel() < 2000
