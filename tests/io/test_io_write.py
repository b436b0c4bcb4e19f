"""Writers: exact round trips, DICOM derivation attributes, atomic output files."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

import medinr.io.raster
from medinr.errors import InputError
from medinr.io import SUPPORTED_WRITE_EXTENSIONS, Derivation, MedicalImage, read, write

CR = "cxr/test/siim_nih_chest_CR_8bit.dcm"
EMRI = "mri/test/emri_small_head_12bit_10fr.dcm"
CINE = "cine/test/SCD0000401_mid/frame00.dcm"
S0 = "mri/test/dipy_S0_10slices.nii.gz"
T1_NPY = "mri/test/dipy_t1_coronal_slice.npy"
PNG = "cxr/test/txv_512_00000001_000.png"

#: Which pixel kinds each output format can hold.
WRITABLE = {
    ".dcm": {"u8", "u16", "i16", "stack"},
    ".png": {"u8", "u16"},
    ".tif": {"u8", "u16", "i16", "f64", "stack"},
    ".tiff": {"u8", "u16", "i16", "f64", "stack"},
    ".npy": {"u8", "u16", "i16", "f64", "stack"},
    ".nii": {"u8", "u16", "i16", "f64", "stack"},
    ".nii.gz": {"u8", "u16", "i16", "f64", "stack"},
    ".mkv": {"u8", "u16", "i16", "stack"},  # lossless FFV1 through ffmpeg; no float video
}


def _source(shared_data: Path, kind: str) -> MedicalImage:
    """Real images of each pixel kind: 8 bit PNG, 16 bit (12-bit MR scaled to the full range), signed
    int16 cine MR, float64 MR, and a 10-frame 12-bit DICOM stack."""
    if kind == "u8":
        return read(shared_data / PNG)
    if kind == "u16":
        mr = read(shared_data / S0, slice="2:5")
        return dataclasses.replace(mr, pixels=mr.pixels * np.uint16(16), bits_stored=16)
    if kind == "i16":
        return read(shared_data / CINE)
    if kind == "f64":
        return read(shared_data / T1_NPY)
    return read(shared_data / EMRI)


@pytest.mark.parametrize("ext", SUPPORTED_WRITE_EXTENSIONS)
@pytest.mark.parametrize("kind", ["u8", "u16", "i16", "f64", "stack"])
def test_round_trip_is_exact(shared_data: Path, tmp_path: Path, ext: str, kind: str) -> None:
    if ext == ".mkv" and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg (Debian package) is not installed")
    image = _source(shared_data, kind)
    out = tmp_path / f"out{ext}"
    if kind not in WRITABLE[ext]:
        with pytest.raises(InputError):
            write(image, out)
        assert not out.exists()
        return
    assert write(image, out) == out
    back = read(out)
    assert back.pixels.dtype == image.pixels.dtype
    np.testing.assert_array_equal(back.pixels, image.pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary left over


@pytest.mark.parametrize(("path", "bits"), [(CR, 8), (EMRI, 12), (CINE, 16)])
def test_dicom_keeps_bits_stored(shared_data: Path, tmp_path: Path, path: str, bits: int) -> None:
    image = read(shared_data / path)
    back = read(write(image, tmp_path / "out.dcm"))
    assert (back.bits_stored, back.signed, back.pixel_spacing) == (bits, image.signed, image.pixel_spacing)
    assert pydicom.dcmread(tmp_path / "out.dcm").file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_dicom_signed_12bit_monochrome1_rescale(shared_data: Path, tmp_path: Path) -> None:
    cine = read(shared_data / CINE)
    image = dataclasses.replace(cine, pixels=cine.pixels - np.int16(400), bits_stored=12,
                                photometric="MONOCHROME1", rescale_slope=2.0, rescale_intercept=-50.0)
    back = read(write(image, tmp_path / "out.dcm"))
    np.testing.assert_array_equal(back.pixels, image.pixels)
    assert (back.bits_stored, back.signed, back.photometric) == (12, True, "MONOCHROME1")
    assert (back.rescale_slope, back.rescale_intercept) == (2.0, -50.0)


def test_dicom_lossy_derivation(shared_data: Path, tmp_path: Path) -> None:
    image = read(shared_data / EMRI)
    source = pydicom.dcmread(shared_data / EMRI, stop_before_pixels=True)
    derivation = Derivation(lossy=True, ratio=12.5, method="MEDINR", description="medinr seed, 12.5:1")
    out = pydicom.dcmread(write(image, tmp_path / "lossy.dcm", derivation=derivation))
    assert out.LossyImageCompression == "01"
    assert float(out.LossyImageCompressionRatio) == 12.5
    assert out.LossyImageCompressionMethod == "MEDINR"
    assert list(out.ImageType) == ["DERIVED", *list(source.ImageType)[1:]]
    assert out.DerivationDescription == "medinr seed, 12.5:1"
    assert out.SOPInstanceUID != source.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "Modality", "BodyPartExamined"):
        assert out[keyword].value == source[keyword].value


def test_dicom_keeps_patient_attributes(shared_data: Path, tmp_path: Path) -> None:
    source = pydicom.dcmread(shared_data / CR, stop_before_pixels=True)
    out = pydicom.dcmread(write(read(shared_data / CR), tmp_path / "cr.dcm", derivation=Derivation(lossy=True)))
    assert source.PatientID and out.PatientID == source.PatientID
    assert out.PatientName == source.PatientName and out.StudyInstanceUID == source.StudyInstanceUID


def test_dicom_lossless_keeps_sop_uid(shared_data: Path, tmp_path: Path) -> None:
    source = pydicom.dcmread(shared_data / EMRI, stop_before_pixels=True)
    out = pydicom.dcmread(write(read(shared_data / EMRI), tmp_path / "same.dcm", derivation=Derivation(lossy=False)))
    assert out.SOPInstanceUID == source.SOPInstanceUID
    assert out.LossyImageCompression == source.LossyImageCompression == "00"
    assert list(out.ImageType) == list(source.ImageType)


def test_dicom_from_non_dicom_is_secondary_capture(shared_data: Path, tmp_path: Path) -> None:
    volume = read(shared_data / S0)
    out = pydicom.dcmread(write(volume, tmp_path / "sc.dcm"))
    assert out.SOPClassUID == pydicom.uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    assert (out.Modality, out.NumberOfFrames, out.SamplesPerPixel) == ("OT", 10, 1)
    assert out.StudyInstanceUID and out.SeriesInstanceUID
    single = pydicom.dcmread(write(read(shared_data / PNG), tmp_path / "sc2.dcm"))
    assert single.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage and "NumberOfFrames" not in single


def test_dicom_frame_times_round_trip(shared_data: Path, tmp_path: Path) -> None:
    image = dataclasses.replace(read(shared_data / EMRI), frame_times=(0, 10, 30, 31, 40, 50, 60, 70, 80, 90.5))
    assert read(write(image, tmp_path / "t.dcm")).frame_times == pytest.approx(image.frame_times)


def test_float_to_dicom_is_refused(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="float64 pixels cannot be stored in DICOM"):
        write(read(shared_data / T1_NPY), tmp_path / "f.dcm")


def test_nifti_keeps_affine_and_scaling(shared_data: Path, tmp_path: Path) -> None:
    image = dataclasses.replace(read(shared_data / S0), rescale_slope=0.5, rescale_intercept=3.0)
    back = read(write(image, tmp_path / "vol.nii.gz"))
    np.testing.assert_array_equal(back.metadata["affine"], image.metadata["affine"])
    assert (back.rescale_slope, back.rescale_intercept) == (0.5, 3.0)
    assert nib.load(tmp_path / "vol.nii.gz").shape == (128, 128, 10)  # slices back on the last axis


def test_failed_write_leaves_nothing_and_keeps_existing(shared_data: Path, tmp_path: Path) -> None:
    floats = read(shared_data / T1_NPY)
    with pytest.raises(InputError, match=r"PNG holds uint8 or uint16 only.*\.tif or \.npy"):
        write(floats, tmp_path / "new.png")
    assert not any(tmp_path.iterdir())
    existing = tmp_path / "old.png"
    write(read(shared_data / PNG), existing)
    before = existing.read_bytes()
    with pytest.raises(InputError):
        write(floats, existing)
    assert existing.read_bytes() == before


def test_crash_inside_writer_is_atomic(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    existing = tmp_path / "out.tif"
    write(read(shared_data / PNG), existing)
    before = existing.read_bytes()

    def crash(path: Path, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"II*\x00partial")
        raise OSError("disk full")

    monkeypatch.setattr(medinr.io.raster.tifffile, "imwrite", crash)
    with pytest.raises(InputError, match="cannot write .*disk full"):
        write(read(shared_data / EMRI), existing)
    assert existing.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


@pytest.mark.parametrize(("name", "match"), [("x.bmp", r"cannot write \.bmp"), ("no/dir/x.png", "does not exist")])
def test_bad_output_path(shared_data: Path, tmp_path: Path, name: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        write(read(shared_data / PNG), tmp_path / name)
