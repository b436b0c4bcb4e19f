"""Sequence I/O on real cine MRI frames: DICOM series folders (order, timing, refusals), round trips of
every sequence format, the single-frame refusal, and frame times through the codec (TIMING section)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medinr.bitstream import Tag, read_container
from medinr.errors import InputError
from medinr.io import read
from medinr.io.sequence import DEFAULT_FPS, frame_rate, read_sequence, write_sequence

SERIES = "cine/train/SCD0000101_mid"
OTHER_SERIES = "cine/train/SCD0000101_basal"
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is not installed")


def _copy_frames(shared_data: Path, dest: Path, count: int = 5, names: list[str] | None = None) -> Path:
    dest.mkdir()
    for i in range(count):
        src = shared_data / SERIES / f"frame{i:02d}.dcm"
        shutil.copy(src, dest / (names[i] if names else src.name))
    return dest


@pytest.fixture(scope="module")
def cine(shared_data: Path) -> object:
    """The first 6 phases of a real cine series, cropped to 48x40 (keeps the DICOM metadata)."""
    image = read(shared_data / SERIES)
    small = image.with_pixels(np.ascontiguousarray(image.pixels[:6, 100:148, 100:140]))
    small.frame_times = image.frame_times[:6]
    small.metadata["dicom_frames"] = image.metadata["dicom_frames"][:6]
    return small


def test_series_folder_ordered_by_trigger_time(shared_data: Path, tmp_path: Path) -> None:
    # file names in reverse order: the reader must sort by TriggerTime, not by name
    folder = _copy_frames(shared_data, tmp_path / "s", names=[f"z{4 - i}.dcm" for i in range(5)])
    image = read(folder)
    assert image.pixels.shape == (5, 256, 256) and image.pixels.dtype == np.int16
    assert image.source_format == "dicom-series" and image.modality == "MR"
    for i in range(5):
        np.testing.assert_array_equal(image.pixels[i], pydicom.dcmread(shared_data / SERIES / f"frame{i:02d}.dcm")
                                      .pixel_array)
    np.testing.assert_allclose(image.frame_times, [0.0, 37.5, 75.0, 112.5, 150.0])
    assert frame_rate(image) == pytest.approx((1000 / 37.5, True))


def test_series_of_another_series_refused(shared_data: Path, tmp_path: Path) -> None:
    folder = _copy_frames(shared_data, tmp_path / "s", count=4)
    ds = pydicom.dcmread(folder / "frame02.dcm")
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(folder / "frame02.dcm")
    with pytest.raises(InputError, match="frame02.dcm is of another series"):
        read(folder)


def test_series_of_another_slice_location_refused(shared_data: Path, tmp_path: Path) -> None:
    # Sunnybrook keeps all slices of a patient in one series: the basal frame differs by SliceLocation only
    folder = _copy_frames(shared_data, tmp_path / "s", count=3)
    shutil.copy(shared_data / OTHER_SERIES / "frame03.dcm", folder / "frame03.dcm")
    with pytest.raises(InputError, match="frame03.dcm is of another slice location"):
        read(folder)


def test_series_missing_frame_refused(shared_data: Path, tmp_path: Path) -> None:
    folder = _copy_frames(shared_data, tmp_path / "s", count=5)
    (folder / "frame02.dcm").unlink()
    with pytest.raises(InputError, match="missing .* InstanceNumber 102 is followed by 104"):
        read(folder)


def test_series_frames_of_different_sizes_refused(shared_data: Path, tmp_path: Path) -> None:
    folder = _copy_frames(shared_data, tmp_path / "s", count=3)
    ds = pydicom.dcmread(folder / "frame01.dcm")
    ds.set_pixel_data(np.ascontiguousarray(ds.pixel_array[:128]), "MONOCHROME2", 16)
    ds.save_as(folder / "frame01.dcm")
    with pytest.raises(InputError, match="frame size"):
        read(folder)


def test_series_round_trip_keeps_trigger_times(cine: object, tmp_path: Path) -> None:
    write_sequence(cine, tmp_path / "out")
    files = sorted((tmp_path / "out").glob("*.dcm"))
    assert len(files) == 6
    headers = [pydicom.dcmread(f) for f in files]
    assert [float(ds.TriggerTime) for ds in headers] == [18.75 + 37.5 * i for i in range(6)]
    assert len({ds.SeriesInstanceUID for ds in headers}) == 1
    back = read(tmp_path / "out")
    np.testing.assert_array_equal(back.pixels, cine.pixels)
    assert back.frame_times == cine.frame_times


def test_series_from_array_gets_one_series_and_distinct_instances(cine: object, tmp_path: Path) -> None:
    bare = cine.with_pixels(cine.pixels)
    bare.metadata = {}
    write_sequence(bare, tmp_path / "out")
    headers = [pydicom.dcmread(f) for f in sorted((tmp_path / "out").glob("*.dcm"))]
    assert len({ds.SeriesInstanceUID for ds in headers}) == 1
    assert len({ds.SOPInstanceUID for ds in headers}) == 6
    back = read(tmp_path / "out")
    np.testing.assert_array_equal(back.pixels, cine.pixels)
    np.testing.assert_allclose(back.frame_times, cine.frame_times)


@pytest.mark.parametrize("name", ["multi.dcm", pytest.param("video.mkv", marks=needs_ffmpeg), "pngs", "seq.nii.gz"])
def test_round_trip_keeps_pixels_order_and_timing(cine: object, tmp_path: Path, name: str) -> None:
    dest = tmp_path / name
    write_sequence(cine, dest, folder_format="png")
    back = read_sequence(dest)
    assert back.pixels.dtype == cine.pixels.dtype
    np.testing.assert_array_equal(back.pixels, cine.pixels)
    np.testing.assert_allclose(back.frame_times, cine.frame_times)


def test_npy_sequence_has_no_timing_and_assumes_default_rate(cine: object, tmp_path: Path) -> None:
    write_sequence(cine, tmp_path / "seq.npy")
    back = read_sequence(tmp_path / "seq.npy")
    np.testing.assert_array_equal(back.pixels, cine.pixels)
    assert back.frame_times is None and frame_rate(back) == (DEFAULT_FPS, False)


def test_4d_nifti_slice_choice(cine: object, tmp_path: Path) -> None:
    data = np.stack([np.moveaxis(cine.pixels, 0, -1), np.moveaxis(cine.pixels[::-1], 0, -1)], axis=2)  # (X,Y,2,T)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((1.0, 1.0, 8.0, 0.0375))
    nib.save(img, tmp_path / "cine4d.nii.gz")
    back = read_sequence(tmp_path / "cine4d.nii.gz", z=1)
    np.testing.assert_array_equal(back.pixels, cine.pixels[::-1])
    np.testing.assert_allclose(back.frame_times, cine.frame_times)
    with pytest.raises(InputError, match="choose one with z"):
        read_sequence(tmp_path / "cine4d.nii.gz")


@needs_ffmpeg
def test_single_frame_video_refused_where_a_sequence_is_required(cine: object, tmp_path: Path) -> None:
    one = cine.with_pixels(cine.pixels[:1])
    one.frame_times = None
    write_sequence(one, tmp_path / "one.mkv")
    assert read(tmp_path / "one.mkv").pixels.shape == (48, 40)
    with pytest.raises(InputError, match="at least 2 frames"):
        read_sequence(tmp_path / "one.mkv")


@needs_ffmpeg
def test_truncated_video_is_an_input_error(cine: object, tmp_path: Path) -> None:
    write_sequence(cine, tmp_path / "v.mkv")
    data = (tmp_path / "v.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[:200])
    with pytest.raises(InputError, match="cut.mkv"):
        read(tmp_path / "cut.mkv")


def test_colour_echo_read_as_luma(shared_data: Path, tmp_path: Path) -> None:
    from pydicom.pixels import pixel_array

    path = shared_data / "video/test/echo_plax_rgb_120fr.dcm"
    with pytest.raises(InputError, match="colour DICOM"):
        read_sequence(path)
    echo = read_sequence(path, luma=True)
    assert echo.pixels.shape == (120, 480, 640) and echo.pixels.dtype == np.uint8 and echo.modality == "US"
    assert frame_rate(echo) == pytest.approx((30.0, True), rel=1e-3)
    for i in (0, 60):
        rgb = pixel_array(path, index=i).astype(np.float64)  # pydicom's own YBR -> RGB conversion
        assert np.abs(rgb @ [0.299, 0.587, 0.114] - echo.pixels[i]).mean() < 1.0
    clip = echo.with_pixels(np.ascontiguousarray(echo.pixels[:3, 200:232, 300:332]))
    clip.frame_times = echo.frame_times[:3]
    write_sequence(clip, tmp_path / "echo.dcm")
    back = read_sequence(tmp_path / "echo.dcm")
    np.testing.assert_array_equal(back.pixels, clip.pixels)
    assert back.photometric == "MONOCHROME2" and back.frame_times == pytest.approx(clip.frame_times)



def test_luma_read_takes_a_slice_and_leaves_grayscale_alone(cine: object, tmp_path: Path) -> None:
    """``read(luma=True)``: one frame of a colour stack with ``slice``; a grayscale DICOM reads as without it."""
    rgb = np.random.default_rng(0).integers(0, 256, (3, 8, 10, 3), dtype=np.uint8)
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID = pydicom.uid.MultiFrameTrueColorSecondaryCaptureImageStorage
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.Modality = "US"
    ds.set_pixel_data(rgb, "RGB", 8)
    ds.save_as(tmp_path / "rgb.dcm", enforce_file_format=True)
    frame = read(tmp_path / "rgb.dcm", luma=True, slice="0:1")
    np.testing.assert_array_equal(frame.pixels, np.rint(rgb[1].astype(np.float64) @ [0.299, 0.587, 0.114]))
    assert frame.frame_times is None and frame.photometric == "MONOCHROME2"
    write_sequence(cine, tmp_path / "gray.dcm")
    np.testing.assert_array_equal(read(tmp_path / "gray.dcm", luma=True).pixels, read(tmp_path / "gray.dcm").pixels)


FRAME_CODEC = {"arch": "seed", "preset": "fast", "fit_steps": 10, "fit_qat_steps": 0, "default_width": 8,
               "threads": 1}


def _small_stack(cine: object, times: tuple[float, ...] | None) -> object:
    from medinr.io.common import make_image

    return make_image(np.ascontiguousarray(cine.pixels[:4, :16, :16]), source_format="npy", frame_times=times)


@pytest.mark.parametrize("times", [(0.0, 33.25, 70.125, 100.001), (10.0, 50.0, 90.0, 130.0)])
def test_frame_times_survive_encode_and_decode(cine: object, times: tuple[float, ...]) -> None:
    from medinr.codec import decode, describe, encode

    data = encode(_small_stack(cine, times), **FRAME_CODEC)
    assert data[4:6] == bytes([1, 10]) and read_container(data).payloads(Tag.TIMING)
    assert decode(data).frame_times == pytest.approx(times, abs=5e-4)
    info = describe(data)
    fps = 3000.0 / (times[-1] - times[0])
    assert info["frames"] == 4 and not info["fps_assumed"] and info["fps"] == pytest.approx(fps, rel=1e-5)
    assert info["mbps"] == pytest.approx(8 * len(data) * fps / 4 / 1e6, rel=1e-5)


def test_sequence_without_times_has_no_timing_and_info_says_the_rate_is_assumed(cine: object,
                                                                                   tmp_path: Path) -> None:
    from click.testing import CliRunner

    from medinr.cli import main
    from medinr.codec import decode, encode

    data = encode(_small_stack(cine, None), **FRAME_CODEC)
    assert not read_container(data).payloads(Tag.TIMING) and decode(data).frame_times is None
    (tmp_path / "s.minr").write_bytes(data)
    out = CliRunner().invoke(main, ["info", str(tmp_path / "s.minr")]).output
    assert "30 fps assumed" in out and f"{8 * len(data) * 30 / 4 / 1e6:.4g} Mbps at 30 fps" in out


def test_info_shows_the_rate_of_a_timed_sequence(cine: object, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from medinr.cli import main
    from medinr.codec import encode

    (tmp_path / "s.minr").write_bytes(encode(_small_stack(cine, cine.frame_times[:4]), **FRAME_CODEC))
    out = CliRunner().invoke(main, ["info", str(tmp_path / "s.minr")]).output
    assert "26.67 fps\n" in out and "Mbps at 26.67 fps" in out and "assumed" not in out
