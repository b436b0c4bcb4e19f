"""Helpers every reader and writer shares: slice specs, record building, atomic output files."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medinr.errors import InputError
from medinr.io.image import MedicalImage, bits_for_range, validate_pixels

#: A parsed ``"AXIS:INDEX"`` slice request.
SliceSpec = tuple[int, int]

_SLICE_RE = re.compile(r"^\s*(\d+)\s*:\s*(-?\d+)\s*$")


def parse_slice(spec: str | None) -> SliceSpec | None:
    """Parse ``"AXIS:INDEX"`` (e.g. ``"2:90"``; a negative index counts from the end)."""
    if spec is None:
        return None
    match = _SLICE_RE.match(spec)
    if match is None:
        raise InputError(f"bad slice spec {spec!r}: expected AXIS:INDEX, e.g. '2:90'")
    return int(match[1]), int(match[2])


def take_slice(volume: Any, sel: SliceSpec,
               spacing: Sequence[float | None] | None = None) -> tuple[np.ndarray, tuple[float, ...] | None, SliceSpec]:
    """Cut one 2D slice out of a 3D array-like (NumPy array, h5py dataset) without loading the rest.

    ``spacing`` gives the sample spacing of each of the three axes (``None`` where unknown); the result's
    spacing is that of the two remaining axes, or ``None``. Returns the slice, its spacing and the
    selection with a non-negative index.
    """
    shape = tuple(volume.shape)
    axis, index = sel
    if len(shape) != 3:
        raise InputError(f"slice '{axis}:{index}' needs a volume, but the image is {len(shape)}D {shape}")
    if axis > 2:
        raise InputError(f"bad slice spec '{axis}:{index}': axis must be 0, 1 or 2")
    if not -shape[axis] <= index < shape[axis]:
        raise InputError(f"slice index {index} out of range for axis {axis} of size {shape[axis]}")
    index %= shape[axis]
    where = tuple(index if i == axis else slice(None) for i in range(3))
    kept = [i for i in range(3) if i != axis]
    kept_spacing = None
    if spacing is not None and all(spacing[i] is not None for i in kept):
        kept_spacing = tuple(float(spacing[i]) for i in kept)
    return np.asarray(volume[where]), kept_spacing, (axis, index)


def infer_bits(pixels: np.ndarray) -> int:
    """Significant bits of pixels without a BitsStored tag: the value range, capped at the dtype width."""
    width = pixels.dtype.itemsize * 8
    if pixels.dtype.kind == "f":
        return width
    return min(bits_for_range(int(pixels.min()), int(pixels.max()), pixels.dtype.kind == "i"), width)


def make_image(pixels: np.ndarray, *, source_format: str, bits_stored: int | None = None,
               **fields: Any) -> MedicalImage:
    """Build the record from freshly read pixels: native byte order, contiguous, validated, bits inferred."""
    if pixels.dtype.kind in "uif" and not pixels.dtype.isnative:
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    pixels = np.ascontiguousarray(pixels)
    validate_pixels(pixels)  # before the range is taken: rejects empty arrays, NaNs and odd dtypes
    fields.setdefault("signed", pixels.dtype.kind == "i")
    bits = infer_bits(pixels) if bits_stored is None else bits_stored
    return MedicalImage(pixels=pixels, bits_stored=bits, source_format=source_format, **fields)


def image_from_array(pixels: Any, sel: SliceSpec | None, *, source_format: str, **fields: Any) -> MedicalImage:
    """The record for a whole 2D/3D array-like, or for the one slice ``sel`` asks for (noted in metadata)."""
    metadata = dict(fields.pop("metadata", None) or {})
    if sel is not None:
        pixels, _, metadata["slice"] = take_slice(pixels, sel)
    return make_image(np.asarray(pixels), source_format=source_format, metadata=metadata, **fields)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, prefixed by its type when the message is empty."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def atomic_write(dest: Path, suffix: str, writer: Callable[[Path], None]) -> None:
    """Let ``writer`` fill a temporary file beside ``dest`` (same ``suffix``), then rename it over ``dest``.

    A failing writer leaves neither a partial ``dest`` nor the temporary file; an existing ``dest`` is
    replaced only once the new file is complete.
    """
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp{suffix}")
    try:
        writer(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
