"""Plain arrays: NumPy ``.npy`` files and fastMRI HDF5 reconstructions (``(slices, H, W)`` float32)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from medinr.errors import InputError
from medinr.io.common import SliceSpec, image_from_array, one_line
from medinr.io.image import MedicalImage

#: fastMRI datasets holding image-domain volumes, in order of preference.
FASTMRI_DATASETS = ("reconstruction_rss", "reconstruction_esc")


def read_npy(path: Path, sel: SliceSpec | None) -> MedicalImage:
    """A 2D image or an (N, H, W) stack saved with ``numpy.save`` (no pickled objects)."""
    try:
        pixels = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise InputError(f"unreadable .npy file ({one_line(exc)})") from exc
    return image_from_array(pixels, sel, source_format="npy")


def read_hdf5(path: Path, sel: SliceSpec | None) -> MedicalImage:
    """The fastMRI reconstruction volume of an HDF5 file; with ``sel`` only that slice is read from disk."""
    try:
        with h5py.File(path, "r") as h5:
            name = next((n for n in FASTMRI_DATASETS if isinstance(h5.get(n), h5py.Dataset)), None)
            if name is None:
                raise InputError(f"HDF5 file has none of the datasets {', '.join(FASTMRI_DATASETS)} "
                                 f"(found: {', '.join(h5.keys()) or 'nothing'})")
            attrs = {key: _plain(value) for key, value in h5.attrs.items()}
            return image_from_array(h5[name] if sel is not None else h5[name][()], sel, source_format="hdf5",
                                    modality="MR", metadata={"hdf5_dataset": name, "hdf5_attrs": attrs})
    except OSError as exc:
        raise InputError(f"unreadable HDF5 file ({one_line(exc)})") from exc


def write_npy(image: MedicalImage, dest: Path) -> None:
    """Exactly the stored values, in the record's dtype and shape."""
    with open(dest, "wb") as fh:
        np.save(fh, image.pixels, allow_pickle=False)


def _plain(value: Any) -> Any:
    """HDF5 attribute as a plain Python value (str, int, float or list)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value
