"""Named data sets, folders, globs and files become benchmark items by stated rules; loading crops/resizes."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from medinr.bench import datasets
from medinr.bench.datasets import BenchItem, load_item, resolve, sample_indices
from medinr.errors import InputError


@pytest.fixture()
def data_env(shared_data, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ENV, str(shared_data))
    return shared_data


def test_sample_rule_takes_three_slices_in_the_middle_sixty_percent() -> None:
    assert sample_indices(10, "sample") == [2, 5, 7]
    assert sample_indices(181, "sample") == [36, 90, 144]
    assert sample_indices(2, "sample") == [0, 1]
    assert sample_indices(4, "all") == [0, 1, 2, 3]
    assert sample_indices(20, "stack") == []
    with pytest.raises(InputError, match="frame rule"):
        sample_indices(5, "middle")


def test_named_sets_resolve_volumes_multiframe_and_cine(data_env) -> None:
    mri = {item.id: item for item in resolve(["mri-test"])}
    assert mri["mri-test/dipy_S0_10slices.nii.gz[2:5]"].select == "2:5"  # NIfTI: slices of the third axis
    assert mri["mri-test/emri_small_head_12bit_10fr.dcm[0:7]"].select == "0:7"  # multi-frame DICOM: frames
    assert "mri-test/dipy_t1_coronal_slice.npy" in mri
    cine = resolve(["cine-test"])
    assert [i.id for i in cine[:3]] == [f"cine-test/SCD0000401_basal[{i}]" for i in (4, 10, 15)]
    frames = [pydicom.dcmread(i.paths[0], stop_before_pixels=True).TriggerTime for i in cine[:3]]
    assert frames == sorted(frames)  # sequence frames are ordered by trigger time
    stacked = resolve(["cine-test"], frames="stack")
    assert len(stacked) == 2 and len(stacked[0].paths) == 20
    assert {i.dataset for i in resolve(["cxr-test", "cine-test"])} == {"cxr-test", "cine-test"}


def test_folders_globs_and_files(data_env) -> None:
    folder = resolve([str(data_env / "mri" / "test")], frames="all")
    assert sum("emri" in i.id for i in folder) == 10
    globbed = resolve([str(data_env / "cxr" / "test" / "txv_512_*.png")])
    assert [i.id for i in globbed] == ["txv_512_00000001_000.png", "txv_512_00027426_000.png"]
    single = resolve([str(data_env / "mri" / "test" / "emri_small_head_12bit_10fr.dcm")], slice_spec="0:3")
    assert [(i.select, i.dataset) for i in single] == [("0:3", "files")]


def test_clear_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "absent"))
    with pytest.raises(InputError, match="MEDINR_DATA"):
        resolve(["cxr-test"])
    with pytest.raises(InputError, match="not a named data set"):
        resolve(["no-such-set"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no readable images"):
        resolve([str(tmp_path)])


def test_load_stacks_sequences_and_applies_resize_then_crop(data_env) -> None:
    item = resolve(["cine-test"], frames="stack")[0]
    image = load_item(item, crop=48)
    assert image.pixels.shape == (20, 48, 48) and image.signed
    assert image.frame_times is not None and list(image.frame_times) == sorted(image.frame_times)
    png = BenchItem("x", "files", (str(data_env / "cxr" / "test" / "00000001_000.png"),))
    small = load_item(png, resize=128, crop=100)
    assert small.pixels.shape == (100, 100) and small.pixels.dtype == np.uint8
    full = load_item(png)
    assert full.pixels.shape == (1024, 1024)
    assert abs(float(small.pixels.mean()) - float(full.pixels[112:912, 112:912].mean())) < 3.0
