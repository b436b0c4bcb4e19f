"""PNG, JPEG and TIFF: 8/16-bit grayscale (TIFF also float and multi-page stacks) via imagecodecs/tifffile.

A three-channel file whose channels are all equal is a grayscale image saved as RGB and is accepted;
real colour and alpha channels are rejected.
"""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import numpy as np
import tifffile

from medinr.errors import InputError
from medinr.io.common import SliceSpec, image_from_array, one_line
from medinr.io.image import MedicalImage

_DECODERS = {"png": imagecodecs.png_decode, "jpeg": imagecodecs.jpeg8_decode}
#: JPEG start-of-scan and end-of-image markers (neither can occur inside entropy-coded data, where 0xFF is stuffed)
_JPEG_SOS, _JPEG_EOI = b"\xff\xda", b"\xff\xd9"


def read_png_jpeg(path: Path, sel: SliceSpec | None, fmt: str) -> MedicalImage:
    """Read a PNG (``fmt="png"``) or JPEG (``fmt="jpeg"``) file as one 2D image."""
    data = path.read_bytes()
    if fmt == "jpeg" and data.rfind(_JPEG_EOI) < data.rfind(_JPEG_SOS):
        # libjpeg fills a cut-off scan with gray and only warns: refuse instead of coding invented pixels
        raise InputError("truncated JPEG file (no end-of-image marker after the last scan)")
    try:
        pixels = _DECODERS[fmt](data)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"unreadable {fmt.upper()} file ({one_line(exc)})") from exc
    if pixels.ndim == 3:
        pixels = _gray_from_channels(pixels)
    return image_from_array(pixels, sel, source_format=fmt)


def read_tiff(path: Path, sel: SliceSpec | None) -> MedicalImage:
    """Read the first TIFF series: one page is a 2D image, several pages an (N, H, W) stack."""
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = series.axes
            pixels = series.asarray()
    except (tifffile.TiffFileError, ValueError, IndexError) as exc:
        raise InputError(f"unreadable TIFF file ({one_line(exc)})") from exc
    if "S" in axes:  # samples per pixel: RGB(A) or similar, channels last after moving
        pixels = _gray_from_channels(np.moveaxis(pixels, axes.index("S"), -1))
    axes = axes.replace("S", "")
    pixels = pixels.reshape([n for n, ax in zip(pixels.shape, axes, strict=True) if n != 1 or ax in "YX"])
    if pixels.ndim > 3:
        raise InputError(f"TIFF series with axes {axes} and shape {pixels.shape} has more than 3 dimensions")
    return image_from_array(pixels, sel, source_format="tiff")


def _gray_from_channels(pixels: np.ndarray) -> np.ndarray:
    """The single channel of an image stored as identical R, G and B; InputError for colour or alpha."""
    channels = pixels.shape[-1]
    if channels == 1:
        return pixels[..., 0]
    if channels != 3:
        raise InputError(f"{channels}-channel image (alpha or colour) is not supported: medinr codes grayscale only")
    gray = pixels[..., 0]
    if not (np.array_equal(gray, pixels[..., 1]) and np.array_equal(gray, pixels[..., 2])):
        raise InputError("colour (RGB) image is not supported: medinr codes grayscale only")
    return gray


def write_png(image: MedicalImage, dest: Path) -> None:
    """Write one 2D uint8/uint16 image as PNG (lossless)."""
    pixels = image.pixels
    if pixels.dtype.name not in ("uint8", "uint16"):
        raise InputError(f"PNG holds uint8 or uint16 only, not {pixels.dtype}; write .tif or .npy instead")
    if pixels.ndim != 2:
        raise InputError(f"PNG holds one 2D image, not a stack of {image.frames}; write .tif, .npy, .nii or .dcm")
    dest.write_bytes(imagecodecs.png_encode(pixels))


def write_tiff(image: MedicalImage, dest: Path) -> None:
    """Write a 2D image or an (N, H, W) stack as uncompressed grayscale TIFF (any supported dtype)."""
    tifffile.imwrite(dest, image.pixels, photometric="minisblack")
