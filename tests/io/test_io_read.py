"""Each reader on real files from ../shared/data: shape, dtype, bits, sign, frames, spacing, metadata."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from medinr.io import SUPPORTED_READ_EXTENSIONS, read

CR = "cxr/test/siim_nih_chest_CR_8bit.dcm"
EMRI = "mri/test/emri_small_head_12bit_10fr.dcm"
CINE = "cine/test/SCD0000401_mid/frame00.dcm"
S0 = "mri/test/dipy_S0_10slices.nii.gz"
T1_NPY = "mri/test/dipy_t1_coronal_slice.npy"
PNG = "cxr/test/txv_512_00000001_000.png"
JPG = "cxr/test/a4318ac9.jpg"


def test_dicom_cr_jpeg_baseline(shared_data: Path) -> None:
    image = read(shared_data / CR)
    assert image.pixels.shape == (1024, 1024) and image.pixels.dtype == np.uint8
    assert (image.bits_stored, image.signed, image.frames) == (8, False, 1)
    assert image.photometric == "MONOCHROME2"
    assert (image.modality, image.body_part) == ("CR", "CHEST")
    assert image.pixel_spacing == (0.168, 0.168)
    assert image.source_format == "dicom" and image.source_path == str(shared_data / CR)
    kept = image.metadata["dicom"]
    assert "PixelData" not in kept and kept.PatientID


def test_dicom_multiframe_12bit(shared_data: Path) -> None:
    image = read(shared_data / EMRI)
    assert image.pixels.shape == (10, 64, 64) and image.pixels.dtype == np.uint16
    assert (image.bits_stored, image.signed, image.frames) == (12, False, 10)
    assert (image.modality, image.body_part, image.pixel_spacing) == ("MR", "HEAD", None)
    np.testing.assert_array_equal(image.pixels, pydicom.dcmread(shared_data / EMRI).pixel_array)


def test_dicom_signed_int16_with_rescale(shared_data: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(shared_data / CINE)
    ds.RescaleSlope, ds.RescaleIntercept = 2, -1024
    ds.save_as(tmp_path / "rescaled.dcm")
    image = read(tmp_path / "rescaled.dcm")
    assert image.pixels.dtype == np.int16 and image.signed and image.bits_stored == 16
    assert image.pixel_spacing == (1.3672, 1.3672)
    assert (image.rescale_slope, image.rescale_intercept) == (2.0, -1024.0)
    np.testing.assert_array_equal(image.pixels, ds.pixel_array)  # stored values, not rescaled


def test_dicom_monochrome1_not_inverted(shared_data: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(shared_data / CINE)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "mono1.dcm")
    image = read(tmp_path / "mono1.dcm")
    assert image.photometric == "MONOCHROME1"
    np.testing.assert_array_equal(image.pixels, read(shared_data / CINE).pixels)


@pytest.mark.parametrize(("keyword", "value", "expected"), [
    ("FrameTime", 40.0, tuple(40.0 * i for i in range(10))),
    ("FrameTimeVector", [0, 30, 30, 40, 30, 30, 30, 30, 30, 30], (0, 30, 60, 100, 130, 160, 190, 220, 250, 280)),
])
def test_dicom_frame_times(shared_data: Path, tmp_path: Path, keyword: str, value: object,
                           expected: tuple[float, ...]) -> None:
    ds = pydicom.dcmread(shared_data / EMRI)
    setattr(ds, keyword, value)
    ds.save_as(tmp_path / "timed.dcm")
    assert read(tmp_path / "timed.dcm").frame_times == pytest.approx(expected)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_dicom_compressed_transfer_syntaxes(shared_data: Path, tmp_path: Path, syntax: str) -> None:
    ds = pydicom.dcmread(shared_data / EMRI)
    expected = ds.pixel_array
    ds.compress(syntax)
    ds.save_as(tmp_path / "compressed.dcm")
    image = read(tmp_path / "compressed.dcm")
    assert image.bits_stored == 12
    np.testing.assert_array_equal(image.pixels, expected)


def test_dicom_by_magic_without_extension(shared_data: Path, tmp_path: Path) -> None:
    shutil.copy(shared_data / EMRI, tmp_path / "IM0001")
    shutil.copy(shared_data / EMRI, tmp_path / "1.2.840.113619.2.55")
    for name in ("IM0001", "1.2.840.113619.2.55"):
        assert read(tmp_path / name).pixels.shape == (10, 64, 64)


def test_dicom_frame_slice(shared_data: Path) -> None:
    stack = read(shared_data / EMRI).pixels
    frame = read(shared_data / EMRI, slice="0:3")
    np.testing.assert_array_equal(frame.pixels, stack[3])
    assert frame.frame_times is None and frame.metadata["slice"] == (0, 3)
    np.testing.assert_array_equal(read(shared_data / EMRI, slice="1:-1").pixels, stack[:, -1, :])


def test_read_does_not_modify_input(shared_data: Path, tmp_path: Path) -> None:
    path = Path(shutil.copy(shared_data / EMRI, tmp_path / "in.dcm"))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    read(path).pixels[:] = 0
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_nifti_volume_as_stack(shared_data: Path) -> None:
    image = read(shared_data / S0)
    raw = np.asarray(nib.load(shared_data / S0).dataobj.get_unscaled())[..., 0]  # 128x128x10x1 on disk
    assert image.pixels.shape == (10, 128, 128) and image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels, np.moveaxis(raw, -1, 0))
    assert image.bits_stored == int(raw.max()).bit_length() and not image.signed
    assert image.pixel_spacing == (2.0, 2.0)
    np.testing.assert_array_equal(image.metadata["affine"], nib.load(shared_data / S0).affine)
    assert image.metadata["zooms"][:2] == (2.0, 2.0)


def test_nifti_slice_matches_stack_and_affine(shared_data: Path) -> None:
    volume = read(shared_data / S0)
    cut = read(shared_data / S0, slice="2:4")
    np.testing.assert_array_equal(cut.pixels, volume.pixels[4])
    across = read(shared_data / S0, slice="0:7")
    assert across.pixels.shape == (128, 10)
    # voxel (i, j) of the slice lies where voxel (7, i, j) of the volume lies
    i, j = 5, 3
    np.testing.assert_allclose(across.metadata["affine"] @ [i, j, 0, 1], volume.metadata["affine"] @ [7, i, j, 1])


def test_nifti_scaled_keeps_raw_integers(shared_data: Path, tmp_path: Path) -> None:
    src = nib.load(shared_data / S0)
    raw = np.asarray(src.dataobj.get_unscaled())[..., 0]
    img = nib.Nifti1Image(raw, src.affine)
    img.header.set_slope_inter(0.5, 10.0)
    nib.save(img, tmp_path / "scaled.nii")
    image = read(tmp_path / "scaled.nii")
    assert image.pixels.dtype == np.uint16
    assert (image.rescale_slope, image.rescale_intercept) == (0.5, 10.0)
    np.testing.assert_array_equal(image.pixels, np.moveaxis(raw, -1, 0))


def test_npy_float64(shared_data: Path) -> None:
    image = read(shared_data / T1_NPY)
    assert image.pixels.shape == (256, 256) and image.pixels.dtype == np.float64
    assert (image.bits_stored, image.source_format) == (64, "npy")


def test_npy_stack_and_slice(shared_data: Path, tmp_path: Path) -> None:
    stack = read(shared_data / S0).pixels
    np.save(tmp_path / "stack.npy", stack)
    np.testing.assert_array_equal(read(tmp_path / "stack.npy", slice="0:2").pixels, stack[2])
    assert read(tmp_path / "stack.npy").frames == 10


def test_png_and_jpeg(shared_data: Path) -> None:
    png, jpg = read(shared_data / PNG), read(shared_data / JPG)
    assert (png.pixels.shape, png.pixels.dtype, png.bits_stored, png.source_format) == ((512, 512), np.uint8, 8, "png")
    assert (jpg.pixels.shape, jpg.pixels.dtype, jpg.bits_stored, jpg.source_format) == (
        (2000, 2000), np.uint8, 8, "jpeg")


def test_png_gray_saved_as_rgb_is_accepted(shared_data: Path, tmp_path: Path) -> None:
    import imagecodecs

    gray = read(shared_data / PNG).pixels
    (tmp_path / "rgb.png").write_bytes(imagecodecs.png_encode(np.stack([gray] * 3, axis=-1)))
    np.testing.assert_array_equal(read(tmp_path / "rgb.png").pixels, gray)


def test_tiff_multipage_stack(shared_data: Path, tmp_path: Path) -> None:
    import tifffile

    stack = read(shared_data / EMRI).pixels
    tifffile.imwrite(tmp_path / "stack.tiff", stack, photometric="minisblack")
    image = read(tmp_path / "stack.tiff")
    assert image.source_format == "tiff" and image.bits_stored == 9  # max value 467
    np.testing.assert_array_equal(image.pixels, stack)


@pytest.fixture()
def fastmri_file(shared_data: Path, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """An HDF5 file laid out like fastMRI (float32 ``reconstruction_rss``, slices first) from a real volume."""
    volume = read(shared_data / S0).pixels.astype(np.float32) / 1000.0
    path = tmp_path / "file1000001.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("reconstruction_rss", data=volume)
        h5.create_dataset("kspace", data=np.zeros((2, 4, 4), np.complex64))
        h5.attrs["acquisition"] = "CORPD_FBK"
        h5.attrs["max"] = float(volume.max())
    return path, volume


def test_hdf5_fastmri(fastmri_file: tuple[Path, np.ndarray]) -> None:
    path, volume = fastmri_file
    image = read(path)
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (10, 128, 128)
    assert (image.bits_stored, image.source_format, image.modality) == (32, "hdf5", "MR")
    assert image.metadata["hdf5_dataset"] == "reconstruction_rss"
    assert image.metadata["hdf5_attrs"]["acquisition"] == "CORPD_FBK"
    np.testing.assert_array_equal(read(path, slice="0:6").pixels, volume[6])


def test_hdf5_esc_fallback(fastmri_file: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    _, volume = fastmri_file
    with h5py.File(tmp_path / "esc.h5", "w") as h5:
        h5.create_dataset("reconstruction_esc", data=volume[:2])
    image = read(tmp_path / "esc.h5")
    assert image.metadata["hdf5_dataset"] == "reconstruction_esc" and image.frames == 2


def test_every_extension_has_a_reader() -> None:
    assert {".dcm", ".nii", ".nii.gz", ".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy", ".h5"} <= set(
        SUPPORTED_READ_EXTENSIONS)
