"""Decimated DWT sub-bands, their energies and the undecimated detail map."""

from __future__ import annotations

import numpy as np
import pytest

from medinr.errors import InputError
from medinr.features import dwt_bands
from medinr.features.dwt import band_energies, detail_magnitude_map


def test_dwt_constant_image_has_no_detail_energy() -> None:
    bands = dwt_bands(np.full((16, 16), 1234, np.uint16), levels=2)
    assert set(bands) == {"A2", "H2", "V2", "D2", "H1", "V1", "D1"}
    assert bands["H1"].shape == (8, 8) and bands["A2"].shape == (4, 4)
    for name, band in bands.items():
        if name != "A2":
            assert np.abs(band).max() == 0


def test_dwt_preserves_energy_and_sees_step_direction(cxr_crop) -> None:
    img = cxr_crop.astype(np.float64)
    bands = dwt_bands(img, wavelet="db2", levels=3)
    total = sum(float(np.sum(b.astype(np.float64) ** 2)) for b in bands.values())
    assert total == pytest.approx(float(np.sum(img ** 2)), rel=1e-5)
    # a vertical edge at an odd column is a change along x: only the "H"/"V" detail of one direction sees it
    step = np.zeros((16, 16))
    step[:, 7:] = 1.0
    b = dwt_bands(step, levels=1)
    assert np.abs(b["D1"]).max() == 0
    assert (np.abs(b["H1"]).max() == 0) != (np.abs(b["V1"]).max() == 0)


def test_band_energies_split_the_variance(cxr_crop) -> None:
    img = cxr_crop.astype(np.float64)
    energies = band_energies(dwt_bands(img, levels=2))
    assert energies.shape == (7,) and (energies >= 0).all()
    assert energies.sum() == pytest.approx(img.size * img.var(), rel=1e-4)


def test_detail_map_is_shift_invariant_and_zero_on_flat() -> None:
    assert not detail_magnitude_map(np.full((8, 8), 3.0)).any()
    on_boundary, inside = np.zeros((16, 16)), np.zeros((16, 16))
    on_boundary[:, 8:] = 1.0  # edge between haar blocks: invisible to the decimated level-1 details
    inside[:, 7:] = 1.0
    assert not dwt_bands(on_boundary, levels=1)["V1"].any() and not dwt_bands(on_boundary, levels=1)["H1"].any()
    a, b = detail_magnitude_map(on_boundary), detail_magnitude_map(inside)
    np.testing.assert_allclose(a[:, 4:12], b[:, 3:11], atol=1e-6)
    assert a[:, 7].min() > 0


def test_dwt_inputs_are_validated() -> None:
    with pytest.raises(InputError):
        dwt_bands(np.zeros((6, 6)), levels=3)
    with pytest.raises(InputError):
        dwt_bands(np.zeros((8, 8)), wavelet="nope")
    with pytest.raises(InputError):
        detail_magnitude_map(np.zeros((8, 8)), levels=0)
