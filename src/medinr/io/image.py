"""The one in-memory record every layer passes around: stored pixel values plus what is needed to write them back."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from medinr.errors import InputError

#: Dtypes the codec accepts for stored pixel values.
SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")

PHOTOMETRICS = ("MONOCHROME2", "MONOCHROME1")


@dataclass
class MedicalImage:
    """A grayscale medical image, a stack of frames, or a volume, as stored by its source.

    ``pixels`` holds the *stored* values (before any DICOM rescale), shape ``(H, W)`` for one image or
    ``(N, H, W)`` for frames/slices. ``bits_stored`` is the number of significant bits (8-16 for
    integers; 32/64 for float data); ``signed`` whether stored values are two's complement.
    ``metadata`` keeps what a writer needs to reproduce the source (e.g. the pydicom Dataset without
    pixels under ``"dicom"``, the NIfTI affine under ``"affine"``); it never travels in the bitstream
    unless the encoder is asked to keep it.
    """

    pixels: np.ndarray
    bits_stored: int
    signed: bool = False
    photometric: str = "MONOCHROME2"
    modality: str | None = None
    body_part: str | None = None
    pixel_spacing: tuple[float, ...] | None = None
    frame_times: tuple[float, ...] | None = None
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    source_format: str | None = None
    source_path: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_pixels(self.pixels)
        if self.photometric not in PHOTOMETRICS:
            raise InputError(f"unsupported photometric interpretation {self.photometric!r}: "
                             f"medinr codes grayscale only ({', '.join(PHOTOMETRICS)})")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[-2])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[-1])

    @property
    def frames(self) -> int:
        """Number of 2D frames (slices) the image holds: 1 for a plain 2D image."""
        return 1 if self.pixels.ndim == 2 else int(self.pixels.shape[0])

    @property
    def num_pixels(self) -> int:
        return int(self.pixels.size)

    @property
    def is_float(self) -> bool:
        return self.pixels.dtype.kind == "f"

    def frame_stack(self) -> np.ndarray:
        """Pixels as ``(N, H, W)`` whatever the original rank."""
        return self.pixels[None] if self.pixels.ndim == 2 else self.pixels

    def with_pixels(self, pixels: np.ndarray) -> MedicalImage:
        """A copy with other pixel values (same metadata), e.g. a decoded reconstruction."""
        return replace(self, pixels=pixels, metadata=dict(self.metadata))


def validate_pixels(pixels: np.ndarray) -> None:
    """Reject arrays the codec cannot represent, with a message that says why."""
    if not isinstance(pixels, np.ndarray):
        raise InputError(f"pixels must be a NumPy array, got {type(pixels).__name__}")
    if pixels.dtype.name not in SUPPORTED_DTYPES:
        raise InputError(f"unsupported pixel dtype {pixels.dtype}: expected one of {', '.join(SUPPORTED_DTYPES)}")
    if pixels.ndim not in (2, 3):
        raise InputError(f"expected a grayscale image (H, W) or a stack (N, H, W), got shape {pixels.shape}; "
                         "colour images are not supported")
    if pixels.size == 0 or min(pixels.shape) == 0:
        raise InputError(f"empty image (shape {pixels.shape})")
    if pixels.dtype.kind == "f" and not np.all(np.isfinite(pixels)):
        raise InputError("image contains NaN or infinite values")


def bits_for_range(lo: int, hi: int, signed: bool) -> int:
    """Smallest number of bits that stores every value in ``[lo, hi]`` (at least 8)."""
    if signed:
        # n signed bits hold [-2**(n-1), 2**(n-1) - 1]
        bits = max(int(-lo - 1).bit_length(), int(hi).bit_length()) + 1
    else:
        bits = int(hi).bit_length()
    return max(8, bits)
