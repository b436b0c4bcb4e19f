"""The hybrid vector and the per-pixel edge / homogeneity maps."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest

from medinr.errors import InputError
from medinr.features import FeatureConfig, edge_map, extract_features, homogeneity_map, hybrid_features


@pytest.fixture(scope="module")
def cxr(shared_data) -> np.ndarray:
    return imagecodecs.imread(shared_data / "cxr" / "test" / "00000001_000.png")


def _parts(vec: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_hog = cfg.orientations * cfg.hog_grid ** 2
    n_dwt = 1 + 3 * cfg.levels
    return vec[:n_hog], vec[n_hog:n_hog + n_dwt], vec[n_hog + n_dwt:]


def test_vector_length_is_fixed_across_image_sizes(cxr) -> None:
    cfg = FeatureConfig()
    small, large = hybrid_features(cxr[200:248, 300:360]), hybrid_features(cxr[100:228, 100:292])
    assert small.shape == large.shape == (cfg.length,) == (9 * 16 + 7 + 10,)
    assert small.dtype == np.float32 and np.isfinite(small).all()
    other = FeatureConfig(orientations=6, hog_grid=2, levels=3, lbp_uniform=False)
    assert hybrid_features(cxr[:40, :40], config=other).shape == (other.length,) == (24 + 10 + 256,)


def test_parts_are_unit_norm_and_weighted(cxr) -> None:
    cfg = FeatureConfig()
    crop = cxr[300:364, 300:364]
    for part in _parts(hybrid_features(crop), cfg):
        assert np.linalg.norm(part) == pytest.approx(1.0, rel=1e-5)
    hog, dwt, lbp = _parts(hybrid_features(crop, alpha=2.0, beta=0.5, gamma=0.0), cfg)
    assert np.linalg.norm(hog) == pytest.approx(2.0, rel=1e-5)
    assert np.linalg.norm(dwt) == pytest.approx(0.5, rel=1e-5)
    assert not lbp.any()


def test_vector_ignores_bit_depth_and_sees_structure(cxr) -> None:
    crop = cxr[300:364, 300:364]
    eight = hybrid_features(crop)
    sixteen = hybrid_features(crop.astype(np.uint16) * 257)
    np.testing.assert_allclose(eight, sixteen, atol=1e-5)
    stripes = np.tile(np.repeat([0, 1], 4), 8)[None, :].repeat(64, axis=0)  # vertical stripes
    hog = _parts(hybrid_features(stripes), FeatureConfig())[0]
    assert hog.reshape(9, 16)[0].sum() > 0.99 * hog.sum()  # all gradients horizontal


def test_constant_image_gives_finite_vector_and_flat_maps() -> None:
    flat = np.full((32, 32), 700, np.uint16)
    f = extract_features(flat)
    cfg = FeatureConfig()
    hog, dwt, lbp = _parts(f.vector, cfg)
    assert not hog.any() and not dwt.any()
    assert np.argmax(lbp) == cfg.lbp_points  # every pixel carries the all-ones label
    assert not f.edge.any() and (f.homogeneity == 1).all()


def test_maps_in_unit_range_and_high_on_an_edge(cxr) -> None:
    step = np.zeros((48, 48), np.uint16)
    step[:, 24:] = 4000
    noise = np.random.default_rng(1).integers(0, 40, step.shape)  # faint texture either side
    img = step + noise.astype(np.uint16)
    edge, homog = edge_map(img), homogeneity_map(img)
    for m in (edge, homog):
        assert m.shape == img.shape and m.dtype == np.float32
        assert m.min() >= 0.0 and m.max() <= 1.0
    assert edge[:, 23:25].mean() > 0.5
    assert edge[:, 23:25].mean() > 4 * edge[:, 4:16].mean()
    assert homog[:, 4:16].mean() > 0.7 > homog[:, 23:25].mean()
    real = extract_features(cxr[256:384, 256:384])
    assert real.edge.min() >= 0 and real.edge.max() <= 1
    np.testing.assert_allclose(real.homogeneity, homogeneity_map(cxr[256:384, 256:384]), atol=1e-6)


def test_bad_inputs_raise() -> None:
    with pytest.raises(InputError):
        hybrid_features(np.zeros((3, 16, 16)))
    with pytest.raises(InputError):
        hybrid_features(np.zeros((2, 2)))  # too small for two DWT levels
    with pytest.raises(InputError):
        FeatureConfig(edge_mix=(1.0, -1.0, 0.0))
