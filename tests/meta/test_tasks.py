"""Task sampling: series grouping, held-back split, and well-formed normalised tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medinr.errors import InputError
from medinr.meta.tasks import TaskSampler, find_series, load_sources, split_sources


def test_series_grouping(cine_folder: Path, shared_data: Path) -> None:
    assert [len(files) for files in find_series([cine_folder]).values()] == [20]  # one SeriesInstanceUID
    assert len(find_series([shared_data / "cxr" / "train"])) == 20  # JPEGs stand alone
    sources, _ = load_sources([cine_folder.parent])  # one series per sub-folder
    assert len(sources) == 9 and all(s.frames.shape == (20, 256, 256) for s in sources)
    train, val = split_sources(sources, 0.2, seed=0)
    assert len(val) == 2 and not {s.name for s in train} & {s.name for s in val}


def test_tasks_are_normalised_with_disjoint_pixel_sets(cine_folder: Path) -> None:
    sources, _ = load_sources([cine_folder / "frame00.dcm", cine_folder / "frame10.dcm"])
    sampler = TaskSampler(sources, 32, support_pixels=100, seed=3, query_pixels=200)
    for task in sampler.tasks(4):
        assert task.image.shape == (32, 32)
        assert abs(float(task.image.mean())) < 1e-4 and float(task.image.std(unbiased=False)) == pytest.approx(1, 1e-4)
        assert len(task.support) == 100 and len(task.query) == 200
        assert not set(task.support.tolist()) & set(task.query.tolist())
    again = TaskSampler(sources, 32, support_pixels=100, seed=3, query_pixels=200).task()
    assert torch.equal(again.image, TaskSampler(sources, 32, 100, seed=3, query_pixels=200).task().image)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="no usable training images"):
        load_sources([tmp_path])
    with pytest.raises(InputError, match="no such file or folder"):
        load_sources([tmp_path / "absent"])
