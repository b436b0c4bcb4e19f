"""Z-score normalisation (part 1 of the method) and its exact inverse to the source's stored values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Normalisation:
    """Intensity statistics that travel in the header; ``std`` is never zero."""

    mean: float
    std: float
    value_min: float
    value_max: float

    @classmethod
    def of(cls, pixels: np.ndarray) -> Normalisation:
        data = pixels.astype(np.float64)
        std = float(data.std())
        # float32 storage in the header: round-trip the statistics now so encoder and decoder agree.
        return cls(float(np.float32(data.mean())), float(np.float32(std if std > 0 else 1.0)),
                   float(data.min()), float(data.max()))

    def forward(self, pixels: np.ndarray) -> np.ndarray:
        """Stored values to zero-mean, unit-variance float32."""
        return ((pixels.astype(np.float64) - self.mean) / self.std).astype(np.float32)

    def inverse(self, normalised: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
        """Normalised predictions back to stored values: rescale, round (integers), clip to the source range."""
        values = normalised.astype(np.float64) * self.std + self.mean
        dtype = np.dtype(dtype)
        if dtype.kind in "iu":
            values = np.rint(values)
        return np.clip(values, self.value_min, self.value_max).astype(dtype)
