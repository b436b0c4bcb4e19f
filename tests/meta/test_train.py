"""meta_train end to end on a tiny budget: a readable init file, bit-exact resume, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medinr.errors import InputError, MedinrError
from medinr.meta.inits import read_init_file
from medinr.meta.train import meta_train

TINY = {"algorithm": "fomaml", "task_size": 16, "support_pixels": 64, "query_pixels": 64, "tasks_per_batch": 2,
        "inner_steps": 1, "widths": (8,), "val_tasks": 2, "val_every": 2, "val_fit_steps": 3, "summary_steps": (3,)}


def test_meta_train_writes_init_and_resumes_bit_exactly(cine_folder: Path, tmp_path: Path) -> None:
    kw = {**TINY, "val_paths": [cine_folder.parent / "SCD0000101_apical"]}
    seen = []
    straight = meta_train("cine", [cine_folder], tmp_path / "a.pt", steps=4, progress=lambda *a: seen.append(a), **kw)
    assert [s[0] for s in seen] == [1, 2, 3, 4] and "val_psnr" in seen[1][2]
    init = read_init_file(straight.output)
    assert init.name == "seed-mri" and init.scales == 3 and set(init.params) == {8}
    assert init.record["arguments"]["steps"] == 4 and set(straight.summary[8][3]) == {"meta", "random"}
    assert len(straight.val_series) == 1 and "SCD0000101_apical" in straight.val_series[0]

    meta_train("cine", [cine_folder], tmp_path / "b.pt", steps=2, **kw)
    resumed = meta_train("cine", [cine_folder], tmp_path / "b.pt", steps=4, resume=True, **kw)
    assert resumed.history == straight.history
    again = read_init_file(resumed.output)
    assert all(torch.equal(x, y) for x, y in zip(again.params[8], init.params[8]))

    with pytest.raises(MedinrError, match="other arguments .*inner_lr"):
        meta_train("cine", [cine_folder], tmp_path / "b.pt", steps=4, resume=True, **{**kw, "inner_lr": 0.2})


def test_bad_arguments(cine_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no meta-learned init for modality 'ct'"):
        meta_train("ct", [cine_folder], tmp_path / "x.pt", **TINY)
    with pytest.raises(InputError, match="at least two series"):
        meta_train("mri", [cine_folder], tmp_path / "x.pt", **TINY)
    with pytest.raises(InputError, match="unknown meta-learning algorithm"):
        meta_train("mri", [cine_folder], tmp_path / "x.pt", **{**TINY, "algorithm": "sgd"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no usable training images"):
        meta_train("mri", [tmp_path / "empty"], tmp_path / "x.pt", **TINY)
    assert not (tmp_path / "x.pt").exists()
