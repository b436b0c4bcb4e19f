"""The hybrid descriptor Phi(I) = concat(alpha*HOG, beta*DWT, gamma*LBP) and per-pixel structure maps.

Everything works on the image mapped to [0, 1] by its own range, so 8- and 16-bit inputs give the same
features. :func:`extract_features` computes gradients, sub-bands and LBP codes once and derives the global
vector and both maps from them; the single-purpose functions are thin wrappers around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medinr.errors import InputError
from medinr.features._common import normalise_range, robust_unit
from medinr.features.dwt import band_energies, detail_magnitude_map, dwt_bands
from medinr.features.hog import gradients, orientation_histograms
from medinr.features.lbp import lbp_map


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the hybrid features; the vector length depends on these only, never on the image size.

    HOG: ``orientations`` bins over [0, pi) pooled on a ``hog_grid`` x ``hog_grid`` grid of image regions.
    DWT: ``wavelet`` at ``levels`` levels. LBP: ``lbp_points`` samples at radius ``lbp_radius``, uniform
    mapping if ``lbp_uniform``. Maps: ``edge_mix`` weights (gradient, Haar detail, LBP non-uniformity),
    each component and the smoothed blend scaled so their ``robust_percentile`` is 1; ``edge_sigma`` and
    ``homogeneity_sigma`` are the Gaussian smoothing of the edge and homogeneity maps in pixels.
    """

    orientations: int = 9
    hog_grid: int = 4
    wavelet: str = "haar"
    levels: int = 2
    lbp_points: int = 8
    lbp_radius: float = 1.0
    lbp_uniform: bool = True
    edge_mix: tuple[float, float, float] = (0.5, 0.3, 0.2)
    robust_percentile: float = 99.0
    edge_sigma: float = 1.0
    homogeneity_sigma: float = 2.0

    def __post_init__(self) -> None:
        if self.orientations < 1 or self.hog_grid < 1 or self.levels < 1 or self.lbp_points < 1:
            raise InputError("FeatureConfig: orientations, hog_grid, levels and lbp_points must be >= 1")
        if len(self.edge_mix) != 3 or min(self.edge_mix) < 0 or sum(self.edge_mix) <= 0:
            raise InputError(f"FeatureConfig: edge_mix must be 3 non-negative weights, got {self.edge_mix}")
        if not 0 < self.robust_percentile <= 100:
            raise InputError(f"FeatureConfig: robust_percentile must be in (0, 100], got {self.robust_percentile}")

    @property
    def lbp_labels(self) -> int:
        """Number of LBP histogram bins: P + 2 with the uniform mapping, 2^P without."""
        return self.lbp_points + 2 if self.lbp_uniform else 2 ** self.lbp_points

    @property
    def length(self) -> int:
        """Length of the hybrid vector: HOG grid histograms + one energy per sub-band + LBP histogram."""
        return self.orientations * self.hog_grid ** 2 + 1 + 3 * self.levels + self.lbp_labels


@dataclass(frozen=True)
class Features:
    """Result of :func:`extract_features`: the global vector and the two (H, W) maps in [0, 1]."""

    vector: np.ndarray
    edge: np.ndarray
    homogeneity: np.ndarray


def _unit(v: np.ndarray) -> np.ndarray:
    """L2-normalise a part of the vector (an all-zero part, e.g. from a constant image, stays zero)."""
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else v).astype(np.float32)


def _region_index(n: int, grid: int) -> np.ndarray:
    """Region of each of ``n`` pixels when split into ``grid`` nearly equal bands."""
    return (np.arange(n) * grid) // n


def _analyse(img: np.ndarray, config: FeatureConfig, weights: tuple[float, float, float],
             want_vector: bool, want_maps: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Shared work: the hybrid vector and/or the edge map of one image."""
    norm = normalise_range(img, min_size=2 ** config.levels)
    magnitude, theta = gradients(norm)
    labels = lbp_map(norm, P=config.lbp_points, R=config.lbp_radius, uniform=config.lbp_uniform)
    vector = edge = None
    if want_vector:
        g = config.hog_grid
        hog = orientation_histograms(magnitude, theta, orientations=config.orientations,
                                     rows=_region_index(norm.shape[0], g), cols=_region_index(norm.shape[1], g),
                                     shape=(g, g))
        bands = dwt_bands(norm, wavelet=config.wavelet, levels=config.levels)
        lbp_hist = np.bincount(labels.ravel(), minlength=config.lbp_labels).astype(np.float64)
        alpha, beta, gamma = weights
        vector = np.concatenate([alpha * _unit(hog.ravel()), beta * _unit(band_energies(bands)),
                                 gamma * _unit(lbp_hist)]).astype(np.float32)
    if want_maps:
        # non-uniform LBP patterns mark texture and corners; gating by the gradient keeps flat noise dark
        non_uniform = (labels == config.lbp_points + 1) if config.lbp_uniform else np.zeros(norm.shape, bool)
        grad = robust_unit(magnitude, config.robust_percentile)
        texture = ndimage.uniform_filter(non_uniform.astype(np.float32), size=3) * np.sqrt(grad)
        detail = robust_unit(detail_magnitude_map(norm, levels=config.levels), config.robust_percentile)
        wg, wd, wt = config.edge_mix
        mix = wg * grad + wd * detail + wt * texture
        edge = robust_unit(ndimage.gaussian_filter(mix, config.edge_sigma, truncate=3.0), config.robust_percentile)
    return vector, edge


def _homogeneity(edge: np.ndarray, config: FeatureConfig) -> np.ndarray:
    return np.clip(ndimage.gaussian_filter(1.0 - edge, config.homogeneity_sigma, truncate=3.0), 0.0, 1.0)


def extract_features(img: np.ndarray, *, alpha: float = 1.0, beta: float = 1.0, gamma: float = 1.0,
                     config: FeatureConfig = FeatureConfig()) -> Features:
    """Hybrid vector, edge map and homogeneity map of a 2-D image in one pass (see the functions below)."""
    vector, edge = _analyse(img, config, (alpha, beta, gamma), want_vector=True, want_maps=True)
    return Features(vector=vector, edge=edge, homogeneity=_homogeneity(edge, config))


def hybrid_features(img: np.ndarray, *, alpha: float = 1.0, beta: float = 1.0, gamma: float = 1.0,
                    config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Global descriptor Phi(I), float32 of length ``config.length`` whatever the image size.

    Parts, each L2-normalised to unit length before weighting so alpha, beta, gamma set their shares:
    HOG orientation histograms of a hog_grid x hog_grid grid of regions; the AC energy of every DWT
    sub-band (how contrast splits over scales and directions); the LBP label histogram.
    """
    vector, _ = _analyse(img, config, (alpha, beta, gamma), want_vector=True, want_maps=False)
    return vector


def edge_map(img: np.ndarray, *, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Per-pixel structure in [0, 1], (H, W) float32: high on edges and texture, near 0 in flat regions.

    A weighted blend of the gradient magnitude, the undecimated Haar detail magnitude (all levels) and the
    local rate of non-uniform LBP patterns gated by the gradient, each scaled robustly to [0, 1], then
    Gaussian-smoothed and rescaled the same way: values are relative to the image's own strongest structure.
    """
    _, edge = _analyse(img, config, (1.0, 1.0, 1.0), want_vector=False, want_maps=True)
    return edge


def homogeneity_map(img: np.ndarray, *, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """1 - :func:`edge_map`, smoothed: the sparsity weight w(x), high in homogeneous regions (paper Eq. 17)."""
    return _homogeneity(edge_map(img, config=config), config)
