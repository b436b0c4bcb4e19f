"""NIfTI-1/2 volumes with nibabel, kept in their stored integer dtype.

A 3D volume ``(X, Y, Z)`` becomes the stack ``(Z, X, Y)``: one frame per index of the last axis, the
slices a viewer shows for an axial acquisition. Writing reverses this, so a read-write round trip keeps
the voxel grid and the affine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from medinr.errors import InputError
from medinr.io.common import SliceSpec, make_image, one_line, take_slice
from medinr.io.image import MedicalImage


def read_nifti(path: Path, sel: SliceSpec | None) -> MedicalImage:
    """Read raw stored voxels; scl_slope/scl_inter go to the record's rescale fields, not into the values."""
    try:
        img = nib.load(path)
    except ImageFileError as exc:
        raise InputError(f"not a NIfTI file ({one_line(exc)})") from exc
    proxy = img.dataobj
    raw = np.asarray(proxy.get_unscaled() if hasattr(proxy, "get_unscaled") else proxy)
    while raw.ndim > 2 and raw.shape[-1] == 1:  # e.g. 128x128x10x1
        raw = raw[..., 0]
    if raw.ndim > 3:
        raise InputError(f"{raw.ndim}D NIfTI of shape {raw.shape} is not supported: "
                         "medinr reads 2D images and 3D volumes")
    zooms = tuple(float(z) for z in img.header.get_zooms()[:raw.ndim])
    affine = np.asarray(img.affine, dtype=np.float64)
    meta: dict[str, Any] = {"zooms": zooms}
    if sel is not None:
        pixels, spacing, meta["slice"] = take_slice(raw, sel, zooms)
        affine = _slice_affine(affine, *meta["slice"])
    else:
        pixels = np.moveaxis(raw, -1, 0) if raw.ndim == 3 else raw
        spacing = zooms[:2]
    meta["affine"] = affine
    return make_image(pixels, source_format="nifti", pixel_spacing=spacing,
                      rescale_slope=float(getattr(proxy, "slope", 1.0)),
                      rescale_intercept=float(getattr(proxy, "inter", 0.0)), metadata=meta)


def _slice_affine(affine: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Affine of the 2D slice ``index`` along ``axis``: kept axes first, the cut axis third, origin moved."""
    kept = [i for i in range(3) if i != axis]
    out = affine.copy()
    out[:, :3] = affine[:, [*kept, axis]]
    out[:3, 3] = affine[:3, 3] + index * affine[:3, axis]
    return out


def write_nifti(image: MedicalImage, dest: Path) -> None:
    """Write the stack with slices on the last axis, the source affine when known, raw values plus scaling."""
    pixels = image.pixels
    data = np.moveaxis(pixels, 0, -1) if pixels.ndim == 3 else pixels
    affine = image.metadata.get("affine")
    if affine is None or np.shape(affine) != (4, 4):
        spacing = image.pixel_spacing[:2] if image.pixel_spacing and len(image.pixel_spacing) >= 2 else (1.0, 1.0)
        affine = np.diag([*spacing, 1.0, 1.0])
    img = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
    img.set_data_dtype(data.dtype)
    if (image.rescale_slope, image.rescale_intercept) != (1.0, 0.0):
        img.header.set_slope_inter(image.rescale_slope, image.rescale_intercept)
    nib.save(img, dest)
