"""DICOM reading and writing with pydicom: grayscale 8-16 bit, signed, MONOCHROME1/2, multi-frame.

Compressed transfer syntaxes decode through pydicom's plugins (pylibjpeg, pylibjpeg-libjpeg,
pylibjpeg-openjpeg). Output is always uncompressed Explicit VR Little Endian; a lossy medinr result is
marked as such (LossyImageCompression, ratio, method, ImageType DERIVED, a new SOP Instance UID).
"""

from __future__ import annotations

import copy
import datetime
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder, pixel_array
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pydicom.valuerep import DSfloat

from medinr.errors import InputError, MissingDependencyError
from medinr.io.common import SliceSpec, make_image, one_line, take_slice
from medinr.io.image import PHOTOMETRICS, MedicalImage

#: Plugin package that decodes each compressed transfer syntax family (pydicom's pylibjpeg route).
_PLUGIN_BY_SYNTAX = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg", "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg", "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg", "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg", "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg", "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg", "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}

#: Elements describing encoded pixel data that must not survive a rewrite as native pixels.
_STALE_PIXEL_TAGS = (0x7FE00001, 0x7FE00002, 0xFFFCFFFC, 0x00280106, 0x00280107)

_FRAME_TIMING = ("FrameTime", "FrameTimeVector", "FrameIncrementPointer")


@dataclass(frozen=True)
class Derivation:
    """How a written image derives from its source, for the DICOM lossy-compression attributes.

    ``lossy=False`` means the pixels are bit-exact: the source SOP Instance UID is kept.
    """

    lossy: bool
    ratio: float | None = None
    method: str = "MEDINR"
    description: str = ""


def is_dicom_file(path: Path) -> bool:
    """True when the file carries the DICOM Part 10 magic ``DICM`` at offset 128."""
    with open(path, "rb") as fh:
        head = fh.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def read_dataset(path: Path, stop_before_pixels: bool = False) -> Dataset:
    """The file's pydicom dataset (without Pixel Data when ``stop_before_pixels``); InputError if not DICOM."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # truncation warnings become the readers' errors
            return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as exc:
        raise InputError(f"not a DICOM file ({one_line(exc)})") from exc


def read_dicom(path: Path, sel: SliceSpec | None) -> MedicalImage:
    """Read one DICOM file's stored values (no rescale, no inversion), keeping its dataset as metadata."""
    ds = read_dataset(path)
    if "PixelData" not in ds:
        raise InputError("DICOM file has no Pixel Data (truncated, or not an image)")
    _check_pixel_module(ds)
    pixels = _decode(ds, path)
    if pixels.ndim == 2 and int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise InputError(f"DICOM says {ds.NumberOfFrames} frames but decoded a single one")
    row_col = _pixel_spacing(ds)
    spacing = row_col
    frame_times = dicom_frame_times(ds, pixels.shape[0]) if pixels.ndim == 3 else None
    meta: dict[str, Any] = {}
    if sel is not None:
        pixels, spacing, meta["slice"] = take_slice(pixels, sel, (None, *row_col) if row_col else None)
        frame_times = None
    del ds.PixelData
    meta["dicom"] = ds  # freshly read here, so it is already a private copy
    return make_image(
        pixels, source_format="dicom", bits_stored=int(ds.BitsStored),
        signed=int(ds.PixelRepresentation) == 1, photometric=str(ds.PhotometricInterpretation),
        modality=_text(ds, "Modality"), body_part=_text(ds, "BodyPartExamined"), pixel_spacing=spacing,
        frame_times=frame_times, rescale_slope=float(ds.get("RescaleSlope", 1.0) or 1.0),
        rescale_intercept=float(ds.get("RescaleIntercept", 0.0) or 0.0), metadata=meta)


def _check_pixel_module(ds: Dataset) -> None:
    """Reject colour and bit depths medinr does not code, before spending time on decoding."""
    photometric = str(ds.get("PhotometricInterpretation", ""))
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1 or photometric not in PHOTOMETRICS:
        raise InputError(f"colour DICOM ({photometric or 'no PhotometricInterpretation'}, {samples} samples "
                         "per pixel) is not supported: medinr codes grayscale only (--luma codes its luma, "
                         "without the colour)")
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation"):
        if ds.get(keyword) is None:
            raise InputError(f"DICOM image lacks {keyword}")
    if not 8 <= int(ds.BitsStored) <= 16 or int(ds.BitsAllocated) > 16:
        raise InputError(f"unsupported bit depth: BitsStored {ds.BitsStored} in BitsAllocated "
                         f"{ds.BitsAllocated} (medinr reads 8-16 bit grayscale)")


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    """Decode Pixel Data, naming the missing plugin when the transfer syntax cannot be decoded here."""
    syntax = UID(ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian))
    if syntax.is_compressed:
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError as exc:
            raise InputError(f"transfer syntax {syntax} ({syntax.name}) cannot be decoded by pydicom") from exc
        if not decoder.is_available:
            raise MissingDependencyError(_PLUGIN_BY_SYNTAX.get(str(syntax), "pylibjpeg"),
                                         f"decoding {path} ({syntax.name} transfer syntax)")
    try:
        return pixel_array(ds)
    except (ValueError, RuntimeError, AttributeError, NotImplementedError) as exc:
        raise InputError(f"cannot decode DICOM pixel data ({syntax.name}): {one_line(exc)}") from exc


def _pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    """(row, column) spacing in mm from PixelSpacing, ImagerPixelSpacing or the shared functional groups."""
    value = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if value is None:
        for group in ds.get("SharedFunctionalGroupsSequence", []):
            for measures in group.get("PixelMeasuresSequence", []):
                value = value or measures.get("PixelSpacing")
    if value is None or len(value) != 2:
        return None
    return float(value[0]), float(value[1])


def dicom_frame_times(ds: Dataset, frames: int) -> tuple[float, ...] | None:
    """Start time of each frame in ms from the first, from FrameTimeVector (increments) or FrameTime."""
    vector = ds.get("FrameTimeVector")
    if vector is not None and len(vector) == frames:
        increments = np.asarray(vector, dtype=np.float64)
        increments[0] = 0.0
        return tuple(np.cumsum(increments).tolist())
    if ds.get("FrameTime") is not None:
        return tuple((np.arange(frames) * float(ds.FrameTime)).tolist())
    return None


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    return (str(value).strip() or None) if value is not None else None


def write_dicom(image: MedicalImage, dest: Path, derivation: Derivation | None) -> None:
    """Write ``image`` as uncompressed DICOM, starting from its source dataset when it has one."""
    pixels = _dicom_pixels(image)
    source = image.metadata.get("dicom")
    if source is not None and not isinstance(source, Dataset):
        raise InputError(f"metadata['dicom'] must be a pydicom Dataset, got {type(source).__name__}")
    ds = copy.deepcopy(source) if source is not None else new_dataset(image, pixels)
    for tag in _STALE_PIXEL_TAGS:
        ds.pop(tag, None)
    if not hasattr(ds, "file_meta"):
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    keep_uid = derivation is not None and not derivation.lossy and "SOPInstanceUID" in ds
    try:
        ds.set_pixel_data(pixels, image.photometric, min(image.bits_stored, pixels.dtype.itemsize * 8),
                          generate_instance_uid=not keep_uid)
    except ValueError as exc:
        raise InputError(f"cannot store these pixels as DICOM: {one_line(exc)}") from exc
    _set_record_fields(ds, image)
    if derivation is not None and derivation.lossy:
        _mark_lossy(ds, derivation)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(dest, enforce_file_format=True)


def _dicom_pixels(image: MedicalImage) -> np.ndarray:
    """The record's pixels in a DICOM-storable dtype (8 or 16 bits allocated), or an InputError."""
    pixels = image.pixels
    if pixels.dtype.kind == "f":
        raise InputError(f"{pixels.dtype} pixels cannot be stored in DICOM; write .tif, .npy or .nii instead")
    if image.bits_stored > 16:
        raise InputError(f"BitsStored {image.bits_stored} exceeds DICOM's 16 for medinr output; "
                         "write .tif, .npy or .nii instead")
    if pixels.dtype.itemsize > 2:
        target = np.int16 if pixels.dtype.kind == "i" else np.uint16
        info = np.iinfo(target)
        if pixels.min() < info.min or pixels.max() > info.max:
            raise InputError(f"pixel values [{pixels.min()}, {pixels.max()}] do not fit 16-bit DICOM")
        pixels = pixels.astype(target)
    return pixels


def new_dataset(image: MedicalImage, pixels: np.ndarray) -> Dataset:
    """A minimal Secondary Capture dataset for a record that did not come from DICOM."""
    if pixels.ndim == 2:
        sop_class = SecondaryCaptureImageStorage
    elif pixels.dtype.itemsize == 1:
        sop_class = MultiFrameGrayscaleByteSecondaryCaptureImageStorage
    else:
        sop_class = MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    now = datetime.datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.StudyDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = now.strftime("%H%M%S")
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "ReferringPhysicianName",
                    "StudyID", "AccessionNumber"):
        setattr(ds, keyword, "")
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    return ds


def _set_record_fields(ds: Dataset, image: MedicalImage) -> None:
    """Copy what the record knows (modality, spacing, rescale, frame times) over the dataset's values."""
    if image.modality:
        ds.Modality = image.modality
    if image.body_part:
        ds.BodyPartExamined = image.body_part
    if image.pixel_spacing is not None and len(image.pixel_spacing) == 2:
        ds.PixelSpacing = [DSfloat(v, auto_format=True) for v in image.pixel_spacing]
    if (image.rescale_slope, image.rescale_intercept) != (1.0, 0.0) or "RescaleSlope" in ds:
        ds.RescaleSlope = DSfloat(image.rescale_slope, auto_format=True)
        ds.RescaleIntercept = DSfloat(image.rescale_intercept, auto_format=True)
    times = image.frame_times
    if image.frames == 1:
        for keyword in _FRAME_TIMING:
            ds.pop(keyword, None)
    elif times is not None and len(times) == image.frames:
        steps = np.diff(np.asarray(times, dtype=np.float64))
        for keyword in _FRAME_TIMING:
            ds.pop(keyword, None)
        if np.allclose(steps, steps[0]):
            ds.FrameTime = DSfloat(float(steps[0]), auto_format=True)
            ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
        else:
            ds.FrameTimeVector = [DSfloat(float(v), auto_format=True) for v in (0.0, *steps)]
            ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTimeVector")


def _mark_lossy(ds: Dataset, derivation: Derivation) -> None:
    """DICOM's lossy-compression attributes (PS3.3 C.7.6.1.1.5) and a DERIVED image type."""
    ds.LossyImageCompression = "01"
    if derivation.ratio is not None:
        ds.LossyImageCompressionRatio = DSfloat(derivation.ratio, auto_format=True)
    ds.LossyImageCompressionMethod = derivation.method
    image_type = list(ds.get("ImageType") or [])
    ds.ImageType = ["DERIVED", *image_type[1:]] if len(image_type) > 1 else ["DERIVED", "SECONDARY"]
    if derivation.description:
        ds.DerivationDescription = derivation.description
