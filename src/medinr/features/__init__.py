"""Hand-crafted hybrid features (HOG, DWT, LBP), per-pixel structure maps and the losses they weight."""

from medinr.features.dwt import dwt_bands
from medinr.features.hog import gradients, hog_map
from medinr.features.hybrid import FeatureConfig, Features, edge_map, extract_features, homogeneity_map, hybrid_features
from medinr.features.lbp import lbp_map

__all__ = ["FeatureConfig", "Features", "dwt_bands", "edge_map", "extract_features", "gradients", "hog_map",
           "homogeneity_map", "hybrid_features", "lbp_map"]
