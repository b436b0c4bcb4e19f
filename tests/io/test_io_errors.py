"""Bad inputs end in one-line InputError (or MissingDependencyError) messages that name the file."""

from __future__ import annotations

import gzip
from pathlib import Path

import imagecodecs
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.pixels.decoders.base import Decoder

from medinr.errors import InputError, MissingDependencyError
from medinr.io import read

CR = "cxr/test/siim_nih_chest_CR_8bit.dcm"
EMRI = "mri/test/emri_small_head_12bit_10fr.dcm"
ECHO = "video/test/echo_plax_rgb_120fr.dcm"
S0 = "mri/test/dipy_S0_10slices.nii.gz"
T1_NPY = "mri/test/dipy_t1_coronal_slice.npy"
PNG = "cxr/test/txv_512_00000001_000.png"


def _fails(path: Path, match: str, **kwargs: str) -> str:
    """Read ``path`` expecting an InputError whose single-line message names the file and matches ``match``."""
    with pytest.raises(InputError, match=match) as info:
        read(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    _fails(tmp_path / "absent.dcm", "file not found")


def test_unknown_extension(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "scan.xyz"
    path.write_bytes((shared_data / PNG).read_bytes())
    _fails(path, r"unknown file type \.xyz")


def test_truncated_dicom_header(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.dcm"
    path.write_bytes((shared_data / EMRI).read_bytes()[:500])
    _fails(path, "no Pixel Data")


def test_truncated_dicom_pixels(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.dcm"
    path.write_bytes((shared_data / EMRI).read_bytes()[:-100])
    _fails(path, "cannot decode DICOM pixel data")


def test_text_renamed_dcm(tmp_path: Path) -> None:
    path = tmp_path / "notes.dcm"
    path.write_text("patient notes, not an image\n" * 20)
    _fails(path, "not a DICOM file")


def test_colour_dicom(shared_data: Path) -> None:
    _fails(shared_data / ECHO, "colour DICOM .*not supported")


def test_dicom_bit_depth(shared_data: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(shared_data / EMRI)
    ds.BitsStored, ds.HighBit = 6, 5
    ds.save_as(tmp_path / "six.dcm")
    _fails(tmp_path / "six.dcm", "unsupported bit depth: BitsStored 6")


def test_missing_decoder_plugin_is_named(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    with pytest.raises(MissingDependencyError, match="JPEG Baseline.*pylibjpeg-libjpeg") as info:
        read(shared_data / CR)
    assert str(shared_data / CR) in str(info.value)


@pytest.mark.parametrize(("channels", "match"), [(3, r"colour \(RGB\)"), (4, "4-channel")])
def test_colour_png(shared_data: Path, tmp_path: Path, channels: int, match: str) -> None:
    gray = read(shared_data / PNG).pixels
    planes = [gray, gray // 2, 255 - gray, np.full_like(gray, 255)][:channels]
    path = tmp_path / "colour.png"
    path.write_bytes(imagecodecs.png_encode(np.stack(planes, axis=-1)))
    _fails(path, match)


def test_truncated_png(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes((shared_data / PNG).read_bytes()[:2000])
    _fails(path, "unreadable PNG")


@pytest.mark.parametrize("keep", [0.5, -2])
def test_truncated_jpeg(shared_data: Path, tmp_path: Path, keep: float) -> None:
    """A JPEG cut inside its scan, or missing only its end-of-image marker, is refused (libjpeg would fill it)."""
    data = next((shared_data / "cxr" / "train").glob("*.jpg")).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[:int(len(data) * keep)] if keep > 0 else data[:keep])
    _fails(path, "truncated JPEG")


def test_whole_jpeg_with_trailing_bytes(shared_data: Path, tmp_path: Path) -> None:
    """Bytes after the end-of-image marker (some writers append them) do not make a JPEG truncated."""
    source = next((shared_data / "cxr" / "train").glob("*.jpg"))
    path = tmp_path / "tail.jpg"
    path.write_bytes(source.read_bytes() + b"\x00" * 16)
    assert np.array_equal(read(path).pixels, read(source).pixels)


def test_empty_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "empty.npy", np.zeros((0, 16), np.uint16))
    _fails(tmp_path / "empty.npy", "empty image")


def test_nan_npy(shared_data: Path, tmp_path: Path) -> None:
    pixels = np.load(shared_data / T1_NPY)
    pixels[10, 20] = np.nan
    np.save(tmp_path / "nan.npy", pixels)
    _fails(tmp_path / "nan.npy", "NaN")


@pytest.mark.parametrize(("array", "match"), [
    (np.zeros((2, 3, 4, 5), np.uint8), "colour images are not supported"),
    (np.zeros((8, 8), np.int64), "unsupported pixel dtype int64"),
    (np.array([[None]], dtype=object), "unreadable .npy"),
])
def test_unsupported_npy(tmp_path: Path, array: np.ndarray, match: str) -> None:
    np.save(tmp_path / "bad.npy", array, allow_pickle=True)
    _fails(tmp_path / "bad.npy", match)


def test_truncated_nifti(shared_data: Path, tmp_path: Path) -> None:
    data = gzip.decompress((shared_data / S0).read_bytes())
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(gzip.compress(data[: len(data) // 2]))
    _fails(path, "unreadable or truncated")


def test_4d_nifti(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2), np.int16), np.eye(4)), tmp_path / "t.nii")
    _fails(tmp_path / "t.nii", "4D NIfTI")


def test_hdf5_without_reconstruction(tmp_path: Path) -> None:
    import h5py

    with h5py.File(tmp_path / "raw.h5", "w") as h5:
        h5.create_dataset("kspace", data=np.zeros((2, 4, 4), np.complex64))
    _fails(tmp_path / "raw.h5", "none of the datasets.*found: kspace")


@pytest.mark.parametrize(("spec", "match"), [
    ("2-90", "bad slice spec"), ("3:0", "axis must be 0, 1 or 2"), ("2:10", "out of range for axis 2 of size 10"),
])
def test_bad_slice_spec(shared_data: Path, spec: str, match: str) -> None:
    _fails(shared_data / S0, match, slice=spec)


def test_slice_of_2d_image(shared_data: Path) -> None:
    _fails(shared_data / PNG, "needs a volume", slice="0:1")
