"""The command line: real files in, real files out, one-line errors, exit codes, no partial outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

import medinr
from medinr.cli import main
from medinr.errors import MedinrError

FAST = ["--preset", "fast", "--steps", "30", "--quiet"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, shared_data) -> Path:
    """A small 12-bit DICOM (2 frames, 32x32 cut from the real multi-frame MR) and an 8-bit PNG crop."""
    root = tmp_path_factory.mktemp("cli")
    mr = medinr.read(shared_data / "mri" / "test" / "emri_small_head_12bit_10fr.dcm")
    medinr.write(mr.with_pixels(np.ascontiguousarray(mr.pixels[4:6, 16:48, 16:48])), root / "mr.dcm")
    cxr = medinr.read(shared_data / "cxr" / "test" / "txv_512_00000001_000.png")
    medinr.write(cxr.with_pixels(np.ascontiguousarray(cxr.pixels[200:240, 200:240])), root / "cxr.png")
    return root


def run(*args: str) -> click.testing.Result:  # noqa: F821
    return CliRunner().invoke(main, [str(a) for a in args])


def test_encode_info_decode_dicom(workdir) -> None:
    minr = workdir / "mr.minr"
    result = run("encode", workdir / "mr.dcm", "-o", minr, "--bpp", "8", *FAST)  # DICOM attributes: ~5 bpp here
    assert result.exit_code == 0, result.output
    info = run("info", minr, "--json")
    assert info.exit_code == 0 and json.loads(info.output)["shape"] == [2, 32, 32]
    out = workdir / "mr_decoded.dcm"
    assert run("decode", minr, "-o", out, "--quiet").exit_code == 0
    ds = pydicom.dcmread(out)
    source = pydicom.dcmread(workdir / "mr.dcm")
    assert ds.LossyImageCompression == "01" and "DERIVED" in ds.ImageType
    assert ds.SOPInstanceUID != source.SOPInstanceUID and ds.PatientID == source.PatientID
    assert "medinr" in ds.DerivationDescription and float(ds.LossyImageCompressionRatio) > 1
    assert ds.BitsStored == 12 and ds.pixel_array.shape == (2, 32, 32)


def test_decode_to_npy_holds_stored_values_in_source_dtype(workdir) -> None:
    minr = workdir / "cxr.minr"
    assert run("encode", workdir / "cxr.png", "-o", minr, *FAST).exit_code == 0
    assert run("decode", minr, "-o", workdir / "cxr.npy", "--quiet").exit_code == 0
    array = np.load(workdir / "cxr.npy")
    assert array.shape == (40, 40) and array.dtype == np.uint8


def test_encode_json_summary(workdir) -> None:
    result = run("encode", workdir / "cxr.png", "-o", workdir / "j.minr", "--preset", "fast", "--steps", "30",
                 "--json")
    summary = json.loads(result.output)
    assert result.exit_code == 0 and summary["bytes"] == (workdir / "j.minr").stat().st_size


@pytest.mark.parametrize("name,content", [("trunc.minr", None), ("garbage.minr", b"hello world, not medinr")])
def test_bad_minr_fails_cleanly_without_output(workdir, name, content) -> None:
    good = (workdir / "mr.minr").read_bytes() if (workdir / "mr.minr").exists() else None
    if content is None:
        if good is None:
            pytest.skip("needs the encoded file of the first test")
        content = good[: len(good) // 2]
    bad = workdir / name
    bad.write_bytes(content)
    out = workdir / f"{name}.png"
    result = run("decode", bad, "-o", out)
    assert result.exit_code == 3 and "medinr: error:" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_decode_does_not_overwrite_existing_output_on_failure(workdir) -> None:
    out = workdir / "keep.png"
    out.write_bytes(b"precious")
    (workdir / "bad.minr").write_bytes(b"MINR\x01\x00junk")
    assert run("decode", workdir / "bad.minr", "-o", out).exit_code != 0
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("args", [["encode", "missing.png", "-o", "x.minr"],
                                  ["encode", "cxr.png", "-o", "x.png"],
                                  ["encode", "cxr.png", "-o", "x.minr", "--bpp", "-2"],
                                  ["info", "missing.minr"]])
def test_user_errors_exit_non_zero_with_one_line(workdir, args, monkeypatch) -> None:
    monkeypatch.chdir(workdir)
    result = run(*args)
    assert result.exit_code != 0 and result.output.startswith("medinr: error:")
    assert not (workdir / "x.minr").exists() and not (workdir / "x.png").exists()


def test_bench_writes_results_with_bd_rate(workdir) -> None:
    out = workdir / "results.json"
    result = run("bench", workdir / "cxr.png", "--codecs", "medinr:seed:fast,jpeg2000", "--bpps", "2,4",
                 "--fit-steps", "20", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    names = [c["name"] for c in document["codecs"]]
    assert names == ["medinr:seed:fast", "jpeg2000"]
    medinr_results = document["codecs"][0]["results"]
    assert len(medinr_results["bpp"]) == 2 and all(b > 0 for b in medinr_results["bpp"])
    assert "medinr:seed:fast" in document["bd_rate_vs_anchor"]["per_codec"]


def test_bench_auto_bpps_sets_the_psnr_window(workdir, monkeypatch) -> None:
    from medinr.bench import runner

    seen = {}

    def fake_run_bench(specs, cfg, progress=None, out=None, resume=False):
        seen["cfg"] = cfg
        raise MedinrError("stop here")

    monkeypatch.setattr(runner, "run_bench", fake_run_bench)
    result = run("bench", workdir / "cxr.png", "--codecs", "medinr:seed:fast,jpeg2000", "--bpps", "auto", "--quiet")
    assert result.exit_code != 0 and "stop here" in result.output
    assert seen["cfg"].medinr_window == [35.0, 40.0, 45.0, 50.0]


@pytest.mark.parametrize("command", ["encode", "decode", "info", "bench", "meta-train", "demo", "verify", "report"])
def test_every_command_has_help(command) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output


def test_bench_table_shows_video_units_for_sequences(capsys, monkeypatch) -> None:
    from medinr.cli import _print_bench_table

    monkeypatch.setenv("COLUMNS", "160")  # rich's width when the output is not a terminal
    document = json.loads((Path(__file__).resolve().parents[1] / "results" / "quick.json").read_text())
    _print_bench_table(document)
    out = capsys.readouterr().out
    cine = out[out.index("cine-test: mean over 2 sequence(s)"):]
    assert "Mbps" in cine and "flicker" in cine and "Mbps" not in out[:out.index("cine-test: mean over")]


def test_colour_dicom_is_refused_unless_luma_is_asked_for(workdir, shared_data) -> None:
    """A colour echo clip (RGB, cut from the real YBR ultrasound loop): a one-line error naming --luma and no file;
    with --luma its BT.601 luma is coded, and the decoded DICOM is grayscale with the clip's frame time."""
    source = pydicom.dcmread(shared_data / "video" / "test" / "echo_plax_rgb_120fr.dcm")
    rgb = np.ascontiguousarray(source.pixel_array[:3, 200:232, 300:332])
    source.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    source.set_pixel_data(rgb, "RGB", 8)
    clip = workdir / "echo_rgb.dcm"
    source.save_as(clip, enforce_file_format=True)
    minr = workdir / "echo.minr"
    refused = run("encode", clip, "-o", minr, "--bpp", "4", *FAST)
    assert refused.exit_code != 0 and "--luma" in refused.output and not minr.exists()
    coded = run("encode", clip, "-o", minr, "--bpp", "4", "--luma", "--strip-metadata", "--json", "--preset", "fast",
                "--steps", "30")
    assert coded.exit_code == 0, coded.output
    assert json.loads(coded.output)["luma_of"] == "RGB"
    out = workdir / "echo_decoded.dcm"
    assert run("decode", minr, "-o", out, "--quiet").exit_code == 0
    ds = pydicom.dcmread(out)
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1 and "PlanarConfiguration" not in ds
    assert ds.pixel_array.shape == (3, 32, 32) and float(ds.FrameTime) == pytest.approx(float(source.FrameTime))
    luma = np.rint(rgb.astype(np.float64) @ [0.299, 0.587, 0.114])
    assert np.abs(ds.pixel_array - luma).mean() < 4  # a lossy copy of the luma (1.4 grey levels off here)
    assert run("verify", minr, clip, "--luma").exit_code == 0


def test_luma_on_a_file_that_is_not_dicom_is_a_clear_error(workdir) -> None:
    """``--luma`` reads through the same checks as the grayscale reader: a .dcm that is not DICOM is named as such."""
    fake = workdir / "fake.dcm"
    fake.write_bytes(b"not a dicom file")
    minr = workdir / "fake.minr"
    result = run("encode", fake, "-o", minr, "--luma", "--bpp", "1", "--quiet")
    assert result.exit_code == 2 and "not a DICOM file" in result.output and not minr.exists()
