"""The benchmark runner on sequences: a 4-frame, 32 px cine clip coded whole by video codecs and frame by frame
by an image codec, measured in video units, with BD-rates against every sequence anchor; still images refused
by the video codecs, a missing ffmpeg reported, the report's cine table and the README summary."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from medinr.bench import runner
from medinr.bench.datasets import BenchItem, load_item, resolve
from medinr.bench.report import write_report
from medinr.bench.runner import flicker_at, make_config, run_bench
from medinr.bench.schema import validate
from medinr.bench.summary import markdown
from medinr.errors import MedinrError

FFMPEG = shutil.which("ffmpeg") is not None
#: x265 (the default sequence anchor) where ffmpeg is installed; per-frame JPEG 2000 always
ANCHORS = ["x265-veryslow", "jpeg2000-frames"] if FFMPEG else ["jpeg2000-frames"]
SEED_VIDEO = "medinr:seed-video:fast"


@pytest.fixture(scope="module")
def video_run(tmp_path_factory, shared_data: Path) -> tuple[Path, dict]:
    """medinr seed-video (20 steps), per-frame JPEG 2000 (video and image codec) and x265 (when ffmpeg is
    there) on the first 4 frames of a training cine series cut to 32 px, plus a chest X-ray crop."""
    out = tmp_path_factory.mktemp("video-bench") / "results.json"
    codecs = [SEED_VIDEO, "jpeg2000-frames", "jpeg2000"] + (["x265"] if FFMPEG else [])
    cfg = make_config(codecs=codecs, sequence_bpps=[0.5, 2.0], fit_steps=20, sequence_frames=4, crop=32,
                      rate_points=4, threads=1)
    specs = [str(shared_data / "cine" / "train" / "SCD0000101_mid"),
             str(shared_data / "cxr" / "test" / "txv_512_00000001_000.png")]
    return out, run_bench(specs, cfg, out=out)


def test_sequence_points_are_measured_in_video_units(video_run) -> None:
    path, document = video_run
    assert validate(json.loads(path.read_text())) == []
    clip = document["images"][0]
    assert clip["kind"] == "sequence" and clip["shape"] == [4, 32, 32] and clip["frames"] == 4
    assert not clip["fps_assumed"] and 10 < clip["fps"] < 60  # from the series' trigger times
    assert set(clip["codecs"]) == {SEED_VIDEO, "jpeg2000-frames", "jpeg2000", *ANCHORS}
    for name, entry in clip["codecs"].items():
        assert entry["status"] == "done", (name, entry["reason"])
        for point in entry["points"]:
            assert point["mbps"] == pytest.approx(point["bpp"] * 32 * 32 * clip["fps"] / 1e6)
            assert len(point["psnr_per_frame"]) == len(point["ms_ssim_per_frame"]) == 4
            assert point["psnr_mean_frames"] == pytest.approx(np.mean(point["psnr_per_frame"]))
            assert point["ms_ssim"] == pytest.approx(np.mean(point["ms_ssim_per_frame"]), abs=1e-5)
            assert point["temporal_flicker"] >= 0 and point["fps"] == clip["fps"]
            assert point["encode_seconds_per_frame"] == pytest.approx(point["encode_seconds"] / 4)
            assert point["decode_ms_per_frame"] == pytest.approx(250 * point["decode_seconds"])
    assert [p["rate"] for p in clip["codecs"][SEED_VIDEO]["points"]] == [0.5, 2.0]
    assert "first 4 frames, then centre crop 32 x 32" in document["preprocessing"]


def test_video_codecs_refuse_still_images(video_run) -> None:
    _, document = video_run
    still = document["images"][1]
    assert still["kind"] == "image" and still["codecs"]["jpeg2000"]["status"] == "done"
    for name in [SEED_VIDEO, "jpeg2000-frames", *ANCHORS]:
        assert still["codecs"][name]["status"] == "unsupported"
        assert "codes sequences" in still["codecs"][name]["reason"]


def test_sequences_have_bd_rates_against_every_anchor(video_run) -> None:
    _, document = video_run
    clip = document["images"][0]
    assert clip["anchor"] == ANCHORS[0] and list(clip["bd_vs_anchors"]) == ANCHORS
    assert set(clip["bd_vs_anchors"]["jpeg2000-frames"]) == set(clip["codecs"]) - {"jpeg2000-frames"}
    assert clip["bd_vs_anchor"] == clip["bd_vs_anchors"][ANCHORS[0]]
    for bpp, flicker, anchor_flicker in clip["flicker_vs_anchor"][SEED_VIDEO]:
        anchor = clip["codecs"][ANCHORS[0]]["points"]
        assert anchor_flicker == flicker_at(anchor, bpp) and flicker >= 0
    sequences, images = document["datasets"]["SCD0000101_mid"], document["datasets"]["files"]
    assert sequences["kind"] == "sequences" and images["kind"] == "images"
    assert [bd["anchor"] for bd in sequences["bd_vs_anchors"]] == ANCHORS
    assert images["bd_vs_anchor"]["anchor"] == document["bd_rate_vs_anchor"]["anchor"] == "jpeg2000"
    results = {c["name"]: c["results"] for c in sequences["codecs"]}
    assert len(results[SEED_VIDEO]["mbps"]) == 2 and len(results[SEED_VIDEO]["temporal_flicker"]) == 2
    assert "mbps" not in {c["name"]: c["results"] for c in images["codecs"]}["jpeg2000"]


def test_flicker_at_interpolates_in_log_rate() -> None:
    points = [{"bpp": 0.5, "temporal_flicker": 4.0}, {"bpp": 2.0, "temporal_flicker": 2.0}]
    assert flicker_at(points, 1.0) == pytest.approx(3.0)
    assert flicker_at(points, 0.1) is None and flicker_at(points, 4.0) is None


def test_report_has_the_cine_table_and_summary_the_cine_rows(video_run, tmp_path) -> None:
    path, document = video_run
    page = write_report(path, tmp_path / "report")
    text = page.read_text()
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert "rd_SCD0000101-mid.png" in sources
    assert all((page.parent / s).is_file() for s in sources)
    assert "Cine table" in text and "decode ms / frame" in text and "from the source's timing" in text
    assert "codes sequences" in text  # the still image the video codecs refused
    summary = markdown(document, "results.json")
    assert "**SCD0000101_mid** (1 sequences, first 4 frames" in summary and "Mbps (same points)" in summary
    assert f"| {SEED_VIDEO} | 1 | " in summary


def test_npy_stack_as_a_sequence_without_timing_and_volumes_sampled(shared_data: Path, tmp_path: Path) -> None:
    from medinr.io import read

    stack = read(shared_data / "cine" / "train" / "SCD0000201_mid").pixels[:5, 96:128, 96:128]
    np.save(tmp_path / "clip.npy", stack)
    assert resolve([str(tmp_path / "clip.npy")])[0].sequence is False  # sampled as slices by default
    (item,) = resolve([str(tmp_path / "clip.npy")], frames="sequence")
    assert item.sequence
    volume = resolve([str(shared_data / "mri" / "test" / "dipy_S0_10slices.nii.gz")], frames="sequence")
    assert len(volume) == 3 and not any(i.sequence for i in volume)  # a NIfTI volume is sampled, not a sequence
    cfg = make_config(codecs=["jpeg2000-frames"], sequence_frames=3, rate_points=2)
    document = run_bench([item], cfg)
    (record,) = document["images"]
    assert record["shape"] == [3, 32, 32] and record["fps_assumed"] and record["fps"] == 30.0
    point = record["codecs"]["jpeg2000-frames"]["points"][0]
    assert point["fps_assumed"] and point["mbps"] == pytest.approx(point["bpp"] * 32 * 32 * 30 / 1e6)


def test_timed_multi_frame_dicom_is_a_sequence_with_video_codecs(shared_data: Path, tmp_path: Path) -> None:
    """A multi-frame DICOM with a FrameTime (an echo-like loop) is one sequence when video codecs run, sampled
    otherwise; one without timing (a volume) stays sampled; a colour still reads as its luma."""
    import pydicom

    from medinr.io import read
    from medinr.io.sequence import write_sequence

    cine = read(shared_data / "cine" / "train" / "SCD0000201_mid")
    clip = cine.with_pixels(np.ascontiguousarray(cine.pixels[:5, 96:128, 96:128]))
    clip.frame_times = cine.frame_times[:5]
    write_sequence(clip, tmp_path / "loop.dcm")
    assert pydicom.dcmread(tmp_path / "loop.dcm").get("FrameTime") is not None
    (item,) = resolve([str(tmp_path / "loop.dcm")], series_as_sequences=True)
    assert item.sequence
    assert len(resolve([str(tmp_path / "loop.dcm")])) == 3  # image codecs only: sampled
    volume = resolve([str(shared_data / "mri" / "test" / "emri_small_head_12bit_10fr.dcm")], series_as_sequences=True)
    assert len(volume) == 3 and not any(i.sequence for i in volume)
    ds = pydicom.dcmread(tmp_path / "loop.dcm")
    rgb = np.repeat(clip.pixels[:1, :, :, None].clip(0, 255).astype(np.uint8), 3, axis=-1)
    rgb[..., 0] = 255 - rgb[..., 0]  # colour, not grey
    ds.set_pixel_data(rgb[0], "RGB", 8)
    for keyword in ("FrameTime", "FrameIncrementPointer", "NumberOfFrames"):
        ds.pop(keyword, None)
    ds.save_as(tmp_path / "colour.dcm", enforce_file_format=True)
    (still,) = resolve([str(tmp_path / "colour.dcm")], series_as_sequences=True)
    expected = np.rint(rgb[0].astype(np.float64) @ [0.299, 0.587, 0.114])
    np.testing.assert_array_equal(load_item(still).pixels, expected)


def test_anchors_and_missing_ffmpeg(shared_data: Path, monkeypatch) -> None:
    sequence = BenchItem("clip", "cine", tuple(str(p) for p in sorted(
        (shared_data / "cine" / "train" / "SCD0000101_mid").glob("*.dcm"))[:3]), sequence=True)
    still = BenchItem("still", "cxr", (str(shared_data / "cxr" / "test" / "txv_512_00000001_000.png"),))
    with pytest.raises(MedinrError, match="sequences need a BD-rate anchor"):
        run_bench([sequence], make_config(codecs=["x264-medium", "nerv"]))
    with pytest.raises(MedinrError, match="anchor 'jpeg2000' is not among the codecs"):
        run_bench([still], make_config(codecs=["x265", "jpeg"]))
    monkeypatch.setattr("medinr.io.sequence.shutil.which", lambda tool: None)
    entry = runner.run_unit(sequence, "x265-veryslow", make_config(crop=16), False)["entry"]
    assert entry["status"] == "unavailable" and "ffmpeg" in entry["reason"]
    assert not runner._finished(entry)  # --resume runs it again once ffmpeg is installed
