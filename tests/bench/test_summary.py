"""The README summary renders every codec of every data set with its BD numbers."""

from __future__ import annotations

from medinr.bench.summary import markdown


def test_summary_lists_codecs_and_bd_rates() -> None:
    bd = {"bd_rate_percent": {"mean": -12.5}, "bd_psnr_db": {"mean": 0.7}, "images_with_bd_rate": 3,
          "bd_rate_window_percent": {"mean": -20.0, "count": 2}, "mean_curves": {"bd_rate_percent": -11.0}}
    codec = {"images": 3, "results": {"bpp": [0.5, 1.0], "psnr": [35.0, 40.0]}}
    doc = {"config": {"datasets": ["cxr-test"], "codecs": ["medinr", "jpeg2000"], "crop": 256, "preset": "fast"},
           "machine": {"cpus": 2}, "elapsed_seconds": 120,
           "datasets": {"cxr-test": {"images": ["a", "b", "c"],
                                     "codecs": [{"name": "medinr", **codec}, {"name": "jpeg2000", **codec}],
                                     "bd_vs_anchor": {"anchor": "jpeg2000", "per_codec": {"medinr": bd}}}}}
    text = markdown(doc, "results.json")
    assert "| medinr | 3 | 0.500, 1.000 | 35.00, 40.00 | -12.5 (3 img) | -20.0 (2 img) | +0.70 | -11.0 |" in text
    assert "BD-rate % inside 35-50 dB" in text
    assert "| jpeg2000 | 3 |" in text and "anchor" in text
