"""Motion fields on real cine frames: warping by a known shift, estimation of a known shift, field coding
round trips and corrupted field sections."""

from __future__ import annotations

import numpy as np
import pytest

from medinr.errors import BitstreamError
from medinr.io import read
from medinr.preprocess import Normalisation
from medinr.video.motion import SUBPEL, decode_field, encode_field, estimate_field, field_shape, predict


@pytest.fixture(scope="module")
def frames(shared_data) -> np.ndarray:
    pixels = read(shared_data / "cine/train/SCD0000101_mid").pixels[:4, 96:160, 96:160]
    return Normalisation.of(pixels).forward(pixels)


def _uniform(shape: tuple[int, int], block: int, dy: float, dx: float) -> np.ndarray:
    field = np.zeros((2, *field_shape(shape, block)), dtype=np.int64)
    field[0], field[1] = round(dy * SUBPEL), round(dx * SUBPEL)
    return field


def test_warp_by_whole_pixels_is_a_shift_clamped_at_the_border(frames) -> None:
    ref = frames[0]
    pred = predict(ref, _uniform(ref.shape, 16, 2, -1))
    np.testing.assert_allclose(pred[:-2, 1:], ref[2:, :-1], atol=1e-6)
    np.testing.assert_allclose(pred[-2:, 1:], np.broadcast_to(ref[-1, :-1], (2, ref.shape[1] - 1)), atol=1e-6)


def test_warp_by_half_a_pixel_averages_neighbours(frames) -> None:
    ref = frames[0]
    pred = predict(ref, _uniform(ref.shape, 8, 0, 0.5))
    np.testing.assert_allclose(pred[:, :-1], 0.5 * (ref[:, :-1] + ref[:, 1:]), atol=1e-6)


def test_estimated_field_recovers_a_known_shift(frames) -> None:
    ref = frames[1]
    current = np.ascontiguousarray(np.pad(ref, 8, mode="edge")[8 + 3:8 + 3 + 64, 8 - 2:8 - 2 + 64])  # ref at (y+3, x-2)
    field = estimate_field(ref, current, 16)
    inner = field[:, 1:-1, 1:-1]  # border cells see the padding
    assert np.median(inner[0]) == 3 * SUBPEL and np.median(inner[1]) == -2 * SUBPEL
    assert np.mean((predict(ref, field) - current) ** 2) < 0.1 * np.mean((ref - current) ** 2)


@pytest.mark.parametrize("block", [8, 16, 32])
def test_field_coding_round_trip(frames, block: int) -> None:
    field = estimate_field(frames[0], frames[1], block)
    cells = field_shape(frames[0].shape, block)
    assert field.shape == (2, *cells)
    np.testing.assert_array_equal(decode_field(encode_field(field), cells), field)
    odd = np.random.default_rng(0).integers(-40, 40, size=(2, 3, 5))
    np.testing.assert_array_equal(decode_field(encode_field(odd), (3, 5)), odd)


def test_corrupted_field_section_raises_bitstream_error(frames) -> None:
    field = estimate_field(frames[0], frames[2], 8)
    data = encode_field(field)
    with pytest.raises(BitstreamError):
        decode_field(data[:3], field.shape[1:])
    with pytest.raises(BitstreamError):
        decode_field(data[:-1], field.shape[1:])
