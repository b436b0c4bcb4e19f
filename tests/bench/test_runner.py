"""Benchmark runner: schema-valid results, unsupported inputs reported, BD-rate of a codec against itself
is zero, resume skips finished entries, codec names."""

from __future__ import annotations

import copy
import json

import pytest

from medinr.bench import runner
from medinr.bench.runner import bd_summary, make_config, parse_medinr, run_bench, sweep_points
from medinr.bench.schema import RESULTS_SCHEMA, validate
from medinr.bench.spiht import Spiht
from medinr.errors import InputError, MedinrError


def test_results_validate_against_the_schema(bench_run) -> None:
    path, _ = bench_run
    assert validate(json.loads(path.read_text())) == []
    broken = json.loads(path.read_text())
    del broken["images"][0]["codecs"]["jpeg2000"]["points"][0]["bpp"]
    broken["images"][1]["codecs"]["jpeg"]["status"] = "skipped"
    problems = validate(broken, RESULTS_SCHEMA)
    assert any("missing 'bpp'" in p for p in problems) and any("'skipped'" in p for p in problems)


def test_records_hold_metrics_models_and_unsupported_inputs(bench_run) -> None:
    _, document = bench_run
    cxr, cine = document["images"]
    medinr = cxr["codecs"]["medinr:seed:fast"]
    assert medinr["status"] == "done" and len(medinr["points"]) == 2
    point = medinr["points"][0]
    assert point["model"]["parameters"] > 0 and point["model"]["model_bytes"] > 0
    assert point["lpips"] == "unavailable" or isinstance(point["lpips"], float)
    assert "bitstream_b64" in point  # first image of its data set: kept for the report's visual comparison
    assert cine["codecs"]["jpeg"]["status"] == "unsupported" and cine["codecs"]["jpeg"]["points"] == []
    assert "16" in cine["codecs"]["jpeg"]["reason"]
    assert cine["shape"] == [64, 64] and cine["signed"] is True
    names = [c["name"] for c in document["codecs"]]
    assert names == ["medinr:seed:fast", "jpeg2000", "spiht", "jpeg"]
    assert document["codecs"][3]["unsupported"] == 1
    assert "crop 64 x 64" in document["preprocessing"]


def test_bd_rate_of_a_codec_against_itself_is_zero(bench_run) -> None:
    _, document = bench_run
    curve = [(p["bpp"], p["psnr"]) for p in document["images"][0]["codecs"]["spiht"]["points"]]
    same = bd_summary(curve, curve)
    assert same["bd_rate_percent"] == pytest.approx(0.0, abs=1e-9)
    assert same["bd_psnr_db"] == pytest.approx(0.0, abs=1e-9)
    assert same["bd_rate_overlap_psnr_db"][0] < same["bd_rate_overlap_psnr_db"][1]
    per_set = document["datasets"]["files"]["bd_vs_anchor"]["per_codec"]["spiht"]
    assert per_set["images_with_bd_rate"] == 2 and per_set["mean_curves"]["bd_rate_percent"] is not None


def test_resume_skips_finished_entries(bench_run, tmp_path, monkeypatch, shared_data) -> None:
    path, document = bench_run
    out = tmp_path / "results.json"
    partial = copy.deepcopy(json.loads(path.read_text()))
    partial["images"][1]["codecs"]["spiht"]["status"] = "error"  # a failed entry is run again
    out.write_text(json.dumps(partial))
    calls = []
    real = runner.run_unit

    def counting(item, name, *args, **kwargs):
        calls.append((item.id, name))
        return real(item, name, *args, **kwargs)

    monkeypatch.setattr(runner, "run_unit", counting)
    cfg = make_config(codecs=["medinr:seed:fast", "jpeg2000", "spiht", "jpeg", "jpegls"], medinr_bpps=[1.0, 2.0],
                      fit_steps=20, crop=64, rate_points=4, threads=1)
    specs = [p for r in document["images"] for p in r["paths"]]
    resumed = run_bench(specs, cfg, out=out, resume=True)
    assert sorted(calls) == sorted([(r["id"], "jpegls") for r in document["images"]]
                                   + [(document["images"][1]["id"], "spiht")])
    assert resumed["images"][0]["codecs"]["medinr:seed:fast"] == document["images"][0]["codecs"]["medinr:seed:fast"]
    assert validate(json.loads(out.read_text())) == []
    cfg.crop = 48
    with pytest.raises(InputError, match="crop 64 -> 48"):
        run_bench(specs, cfg, out=out, resume=True)


def test_codec_names_and_sweeps() -> None:
    cfg = make_config(preset="balanced")
    assert parse_medinr("medinr", cfg) == (None, "balanced")
    assert parse_medinr("medinr:seed:fast", cfg) == ("seed", "fast")
    assert parse_medinr("medinr:auto", cfg) == ("auto", "balanced")
    assert parse_medinr("jpeg", cfg) is None
    for bad in ("medinr:nope", "medinr:seed:slow", "medinr::fast"):
        with pytest.raises(MedinrError):
            parse_medinr(bad, cfg)
    for bad in (["coordnet"], ["jpeg9"], ["jpeg", "jpeg"]):
        with pytest.raises(MedinrError):
            runner.validate_config(make_config(codecs=bad, anchor=bad[0]))
    points = sweep_points(Spiht().sweep(8), 3)
    assert len(points) == 3 and points[0] == Spiht().sweep(8)[0] and points[-1] == Spiht().sweep(8)[-1]
    assert make_config(codecs=["x265", "x264-medium"], anchor="x265").codecs == ["x265-veryslow", "x264-medium"]
    quick = make_config(quick=True, crop=128)
    assert quick.quick and quick.crop == 128 and quick.rate_points is None  # baselines keep every point


def test_unreachable_medinr_target_is_skipped_not_an_error(tmp_path, shared_data) -> None:
    """A target under the file's fixed overhead leaves out that point, with a note; the others are measured."""
    cfg = make_config(codecs=["medinr:seed:fast", "jpeg2000"], medinr_bpps=[0.01, 8.0], fit_steps=5, crop=32,
                      threads=1)
    document = run_bench([str(shared_data / "cxr" / "test" / "txv_512_00000001_000.png")], cfg,
                         out=tmp_path / "results.json")
    entry = document["images"][0]["codecs"]["medinr:seed:fast"]
    assert entry["status"] == "done" and [p["rate"] for p in entry["points"]] == [8.0]
    assert any("bpp 0.01 skipped" in n and "impossible" in n for n in entry["notes"])


def test_window_bpps_follow_the_anchor_curve() -> None:
    """``--bpps auto``: log bpp interpolated in PSNR, clamped to the curve, rounded, deduplicated, ascending."""
    points = [{"bpp": b, "psnr": p} for b, p in [(0.8, 45.0), (0.1, 30.0), (0.4, 40.0), (0.2, 35.0), (0.3, 34.0)]]
    assert runner.window_bpps(points, [40.0, 35.0]) == [0.2, 0.4]
    assert runner.window_bpps(points, [37.5]) == [0.283]  # the geometric mean of 0.2 and 0.4
    assert runner.window_bpps(points, [20.0, 25.0, 60.0]) == [0.1, 0.8]  # outside the curve: its ends, once each
    assert runner.window_bpps(points, [30.0, 30.2, 35.0]) == [0.1, 0.2]  # 0.1 and 0.102 count as one
    with pytest.raises(runner.UnsupportedInput, match="two finite points"):
        runner.window_bpps([{"bpp": 0.5, "psnr": float("inf")}, {"bpp": 0.4, "psnr": 40.0}], [40.0])


def test_auto_targets_come_from_the_anchor_on_each_image(tmp_path, shared_data) -> None:
    """medinr's targets are where the anchor of the same run gives the window's PSNRs on that image."""
    cfg = make_config(codecs=["medinr:seed:fast", "jpeg2000"], medinr_window=[30.0, 35.0], fit_steps=5, crop=64,
                      threads=1)
    document = run_bench([str(shared_data / "cxr" / "test" / "txv_512_00000001_000.png")], cfg,
                         out=tmp_path / "results.json")
    record = document["images"][0]
    expected = runner.window_bpps(record["codecs"]["jpeg2000"]["points"], [30.0, 35.0])
    entry = record["codecs"]["medinr:seed:fast"]
    assert [p["rate"] for p in entry["points"]] == expected and len(expected) == 2
    assert any("dB on this image" in n for n in entry["notes"])
    cine = runner.run_unit(runner.resolve([str(shared_data / "cine" / "test" / "SCD0000401_mid" / "frame00.dcm")])[0],
                           "medinr:seed:fast", make_config(codecs=["medinr:seed:fast", "jpeg"], anchor="jpeg",
                                                           medinr_window=[35.0], fit_steps=5), False)["entry"]
    assert cine["status"] == "unsupported" and "takes the targets from jpeg" in cine["reason"]
    for bad in ([], [0.0]):
        with pytest.raises(MedinrError, match="window"):
            runner.validate_config(make_config(codecs=["jpeg2000"], medinr_window=bad))
    with pytest.raises(MedinrError, match="anchor must be a baseline"):
        runner.validate_config(make_config(codecs=["medinr:seed:fast"], anchor="medinr:seed:fast",
                                           medinr_window=[40.0]))
