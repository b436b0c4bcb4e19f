"""``read`` and ``write``: pick the format from the file name (or the DICOM magic) and report failures
as one-line :class:`InputError` messages that name the file."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from medinr.errors import InputError
from medinr.io.arrays import read_hdf5, read_npy, write_npy
from medinr.io.common import SliceSpec, atomic_write, one_line, parse_slice, take_slice
from medinr.io.dicom import Derivation, is_dicom_file, read_dicom, write_dicom
from medinr.io.image import MedicalImage, validate_pixels
from medinr.io.nifti import read_nifti, write_nifti
from medinr.io.raster import read_png_jpeg, read_tiff, write_png, write_tiff
from medinr.io.sequence import (
    VIDEO_EXTENSIONS,
    read_dicom_luma,
    read_folder,
    read_video,
    write_video,
)

Reader = Callable[[Path, SliceSpec | None], MedicalImage]
Writer = Callable[[MedicalImage, Path], None]

_READERS: dict[str, Reader] = {
    ".dcm": read_dicom, ".dicom": read_dicom,
    ".nii": read_nifti, ".nii.gz": read_nifti,
    ".png": partial(read_png_jpeg, fmt="png"),
    ".jpg": partial(read_png_jpeg, fmt="jpeg"), ".jpeg": partial(read_png_jpeg, fmt="jpeg"),
    ".tif": read_tiff, ".tiff": read_tiff,
    ".npy": read_npy,
    ".h5": read_hdf5, ".hdf5": read_hdf5,
    **dict.fromkeys(VIDEO_EXTENSIONS, read_video),
}

_WRITERS: dict[str, Writer] = {
    ".png": write_png, ".tif": write_tiff, ".tiff": write_tiff,
    ".npy": write_npy,
    ".nii": write_nifti, ".nii.gz": write_nifti,
    ".mkv": write_video,
}

SUPPORTED_READ_EXTENSIONS: tuple[str, ...] = tuple(_READERS)
SUPPORTED_WRITE_EXTENSIONS: tuple[str, ...] = (".dcm", *_WRITERS)

#: What the libraries raise on damaged files that the readers do not translate themselves.
_LIBRARY_ERRORS = (OSError, ValueError, EOFError, RuntimeError, zlib.error)


def _extension(path: Path, known: tuple[str, ...]) -> str | None:
    """The known extension ``path`` ends with (case-insensitive; ``.nii.gz`` before ``.gz``)."""
    name = path.name.lower()
    return max((ext for ext in known if name.endswith(ext)), key=len, default=None)


def read(path: str | os.PathLike[str], *, slice: str | None = None, luma: bool = False) -> MedicalImage:  # noqa: A002
    """Read a medical image file into a :class:`MedicalImage` of stored values; the file is never modified.

    The format comes from the extension (see ``SUPPORTED_READ_EXTENSIONS``), or from the DICOM magic for
    files without a known one; a folder is read as a DICOM series or PNG sequence, video files through ffmpeg
    (:mod:`medinr.io.sequence`). ``slice="AXIS:INDEX"`` takes one 2D slice of a volume (NIfTI axes are the
    file's; DICOM, NumPy, TIFF and HDF5 axes are those of the ``(N, H, W)`` stack); without it a volume
    becomes an ``(N, H, W)`` stack. ``luma=True`` reads a colour DICOM file (ultrasound RGB or YBR) as its luma
    (:func:`medinr.io.sequence.read_dicom_luma`: colour overlays and Doppler are not kept); grayscale files and other
    formats read as without it.
    """
    path = Path(path)
    try:
        sel = parse_slice(slice)
        if not path.exists():
            raise InputError("file not found")
        try:
            if path.is_dir():  # a DICOM series or PNG sequence (medinr.io.sequence)
                image = read_folder(path, sel)
                image.source_path = str(path)
                return image
            ext = _extension(path, SUPPORTED_READ_EXTENSIONS)
            if ext is None and not is_dicom_file(path):
                raise InputError(f"unknown file type {''.join(path.suffixes) or '(no extension)'}: "
                                 f"medinr reads {', '.join(SUPPORTED_READ_EXTENSIONS)} and DICOM files")
            reader = _READERS[ext] if ext is not None else read_dicom
            image = _read_luma(path, sel) if luma and reader is read_dicom else reader(path, sel)
        except _LIBRARY_ERRORS as exc:
            raise InputError(f"unreadable or truncated file ({one_line(exc)})") from exc
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    image.source_path = str(path)
    return image


def _read_luma(path: Path, sel: SliceSpec | None) -> MedicalImage:
    """A DICOM file as grayscale (:func:`read_dicom_luma`), then the selected slice of its stack."""
    image = read_dicom_luma(path)
    if sel is None:
        return image
    pixels, _, sel = take_slice(image.pixels, sel)
    return replace(image, pixels=np.ascontiguousarray(pixels), frame_times=None,
                   metadata={**image.metadata, "slice": sel})


def write(image: MedicalImage, path: str | os.PathLike[str], *, derivation: Derivation | None = None) -> Path:
    """Write ``image`` to ``path`` in the format its extension names and return the path.

    The file appears complete or not at all: it is written beside ``path`` under a temporary name and
    renamed, so an existing file is only replaced on success. ``derivation`` fills DICOM's lossy
    compression attributes; other formats carry no such metadata and ignore it.
    """
    path = Path(path)
    try:
        ext = _extension(path, SUPPORTED_WRITE_EXTENSIONS)
        if ext is None:
            raise InputError(f"cannot write {''.join(path.suffixes) or 'files without an extension'}: "
                             f"medinr writes {', '.join(SUPPORTED_WRITE_EXTENSIONS)}")
        if not path.parent.is_dir():
            raise InputError(f"output folder {path.parent} does not exist")
        if path.is_dir():
            raise InputError("is a folder")
        validate_pixels(image.pixels)
        writer = partial(write_dicom, derivation=derivation) if ext == ".dcm" else _WRITERS[ext]
        atomic_write(path, ext, lambda tmp: writer(image, tmp))
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({one_line(exc)})") from exc
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return path

