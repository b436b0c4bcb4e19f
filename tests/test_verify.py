"""Integrity hash, ``medinr verify`` and the DICOM attributes of each mode (pydicom, and dciodvfy when
Debian's dicom3tools is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

import medinr
from medinr.bitstream import Tag, read_container, write_container
from medinr.cli import main
from medinr.errors import BitstreamError
from medinr.verify import derivation_for, pixel_sha256, verify

MR_FILE = ("mri", "test", "emri_small_head_12bit_10fr.dcm")


@pytest.fixture(scope="module")
def mr(shared_data) -> medinr.MedicalImage:
    return medinr.read(shared_data.joinpath(*MR_FILE))


def test_pixel_hash_is_canonical(mr) -> None:
    frame = np.ascontiguousarray(mr.pixels[0])
    assert pixel_sha256(frame) == pixel_sha256(frame[None])
    assert pixel_sha256(frame) == pixel_sha256(frame.astype(">u2"))
    assert pixel_sha256(frame) != pixel_sha256(frame.astype(np.int16))
    changed = frame.copy()
    changed[3, 3] += 1
    assert pixel_sha256(frame) != pixel_sha256(changed)


def test_verify_lossless_file_with_hash(mr) -> None:
    report = verify(medinr.encode(mr, max_error=0, source_hash=True), mr)
    assert report.ok and report.max_abs_error == 0 and report.decoded_matches_hash and report.original_matches_hash


def test_verify_near_lossless_reports_error_and_bound(mr) -> None:
    report = verify(medinr.encode(mr, max_error=2, source_hash=True), mr)
    assert report.ok and 0 < report.max_abs_error <= 2 and report.bound_holds
    assert report.decoded_matches_hash is None and 40 < report.psnr < 80


def test_verify_flags_another_original(mr) -> None:
    data = medinr.encode(mr, max_error=0, source_hash=True)
    other = mr.with_pixels(mr.pixels.copy())
    other.pixels[0, 10, 10] += 3
    report = verify(data, other)
    assert not report.ok and report.original_matches_hash is False and report.max_abs_error == 3


def test_lossless_decode_checks_the_source_hash(mr) -> None:
    container = read_container(medinr.encode(mr, max_error=0, source_hash=True))
    forged = [(t, b"\x00" + bytes(32) if t == Tag.HASH else p) for t, p in container.sections]
    with pytest.raises(BitstreamError, match="SHA-256"):
        medinr.decode(write_container(container.header, forged))


def test_cli_encode_verify_and_exit_codes(mr, shared_data, tmp_path) -> None:
    source = tmp_path / "crop.npy"
    np.save(source, mr.pixels[2:4, 8:40, 8:40])
    out = tmp_path / "crop.minr"
    runner = CliRunner()
    result = runner.invoke(main, ["encode", str(source), "-o", str(out), "--max-error", "0", "--hash", "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["verify", str(out), str(source), "--json"])
    assert result.exit_code == 0 and '"ok": true' in result.output
    other = tmp_path / "other.npy"
    np.save(other, mr.pixels[4:6, 8:40, 8:40])
    result = runner.invoke(main, ["verify", str(out), str(other)])
    assert result.exit_code == 1 and "does not match" in result.output
    result = runner.invoke(main, ["encode", str(source), "-o", str(out), "--max-error", "-1"])
    assert result.exit_code != 0


def _decoded_dicom(mr: medinr.MedicalImage, tmp_path: Path, max_error: int) -> Path:
    minr = tmp_path / f"mr{max_error}.minr"
    minr.write_bytes(medinr.encode(mr, max_error=max_error, keep_metadata=True))
    out = tmp_path / f"mr{max_error}.dcm"
    result = CliRunner().invoke(main, ["decode", str(minr), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def _dciodvfy_errors(path: Path) -> set[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return {line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")}


def test_dicom_lossless_keeps_the_instance(mr, shared_data, tmp_path) -> None:
    out = _decoded_dicom(mr, tmp_path, 0)
    ds, src = pydicom.dcmread(out), pydicom.dcmread(shared_data.joinpath(*MR_FILE))
    assert ds.SOPInstanceUID == src.SOPInstanceUID and ds.file_meta.MediaStorageSOPInstanceUID == src.SOPInstanceUID
    assert src.LossyImageCompression == "00"  # the source says "not lossy"; a lossless result keeps saying so
    assert ds.LossyImageCompression == "00" and list(ds.ImageType) == list(src.ImageType)
    np.testing.assert_array_equal(medinr.read(out).pixels, mr.pixels)
    if shutil.which("dciodvfy"):
        assert _dciodvfy_errors(out) <= _dciodvfy_errors(shared_data.joinpath(*MR_FILE))


def test_dicom_near_lossless_is_marked_with_its_bound(mr, shared_data, tmp_path) -> None:
    out = _decoded_dicom(mr, tmp_path, 2)
    ds, src = pydicom.dcmread(out), pydicom.dcmread(shared_data.joinpath(*MR_FILE))
    assert ds.SOPInstanceUID != src.SOPInstanceUID and ds.LossyImageCompression == "01"
    assert "max error 2" in ds.DerivationDescription and ds.ImageType[0] == "DERIVED"
    assert float(ds.LossyImageCompressionRatio) > 1
    if shutil.which("dciodvfy"):
        new = _dciodvfy_errors(out) - _dciodvfy_errors(shared_data.joinpath(*MR_FILE))
        assert not [e for e in new if "Lossy" in e or "Derivation" in e or "SOP" in e]


def test_derivation_per_mode(mr) -> None:
    assert not derivation_for(medinr.encode(mr, max_error=0)).lossy
    near = derivation_for(medinr.encode(mr, max_error=4))
    assert near.lossy and "max error 4" in near.description
