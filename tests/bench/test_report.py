"""The HTML report renders from a real results file: the page exists and every image it references exists."""

from __future__ import annotations

import re

import pytest

from medinr.bench.report import write_report
from medinr.errors import InputError


def test_report_renders_with_all_referenced_images(bench_run, tmp_path) -> None:
    path, _ = bench_run
    page = write_report(path, tmp_path / "report")
    text = page.read_text()
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert {"rd_files.png", "bars_files.png", "visual_files.png"} <= set(sources)
    assert all((page.parent / s).is_file() and (page.parent / s).stat().st_size > 1000 for s in sources)
    assert "BD-rate" in text and "unsupported on 1 image(s)" in text and "coordnet" in text


def test_report_refuses_other_json(tmp_path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"name": "not results"}')
    with pytest.raises(InputError, match="not a medinr bench results file"):
        write_report(bad, tmp_path / "out")
