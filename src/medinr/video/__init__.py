"""Video (2D+t) support beside the architectures: the sequence fitter with temporal-consistency
regularisation, temporal metrics and rates in video units, and video baselines (x264, x265, per-frame
JPEG 2000)."""
