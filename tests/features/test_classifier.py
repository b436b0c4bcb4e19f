"""The modality classifier behind ``--modality auto``: picks on real training images, the cine/mri rule,
tags before the classifier, and clear errors for a damaged classifier file."""

from __future__ import annotations

import json
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

from medinr.codec import ModalityChoice, detect_modality
from medinr.errors import MedinrError
from medinr.features.classifier import (
    CLASSES,
    DEFAULT_PATH,
    MIN_CONFIDENCE,
    installed_classifier,
    modality_features,
    read_classifier,
    view_of,
)
from medinr.io import read
from medinr.io.common import make_image


@pytest.fixture(scope="module")
def cxr_image(shared_data: Path):
    """The central 1024 px of a training chest X-ray, as an untagged 8-bit image."""
    pixels = imagecodecs.imread(shared_data / "cxr" / "train" / "00870a9c.jpg")[488:1512, 488:1512]
    return make_image(np.ascontiguousarray(pixels), source_format="png")


@pytest.fixture(scope="module")
def mri_slices(shared_data: Path) -> np.ndarray:
    """Three neighbouring axial slices of the Colin27 training volume (stored values)."""
    volume = read(shared_data / "mri" / "train" / "colin27_ch2_1mm.nii.gz").pixels
    return np.ascontiguousarray(volume[89:92])


def test_features_are_a_fixed_length_of_finite_numbers(cxr_image, mri_slices) -> None:
    a, b = modality_features(view_of(cxr_image.pixels)), modality_features(view_of(mri_slices[1]))
    assert a.shape == b.shape == (58,) and np.isfinite(a).all() and not np.allclose(a, b)


def test_picks_cxr_for_a_chest_xray_and_mri_for_a_brain_slice(cxr_image, mri_slices) -> None:
    model = installed_classifier()
    modality, confidence = model.choose(cxr_image)
    assert modality == "cxr" and confidence >= MIN_CONFIDENCE
    slice_image = make_image(mri_slices[1], source_format="nifti")
    assert model.choose(slice_image)[0] == "mri"


def test_a_sequence_of_mr_like_frames_is_cine_but_a_volume_is_mri(mri_slices) -> None:
    model = installed_classifier()
    assert model.choose(make_image(mri_slices, source_format="nifti"))[0] == "mri"
    assert model.choose(make_image(mri_slices, source_format="npy"))[0] == "cine"


def test_detect_modality_prefers_tags_and_says_how_it_chose(cxr_image) -> None:
    choice = detect_modality(cxr_image)
    assert choice.modality == "cxr" and choice.source == "classifier" and choice.confidence >= MIN_CONFIDENCE
    assert "classifier, confidence" in str(choice)
    tagged = make_image(cxr_image.pixels, source_format="dicom", modality="MR")
    assert detect_modality(tagged) == ModalityChoice("mri", "tags")
    assert detect_modality(make_image(cxr_image.pixels, source_format="dicom", modality="US")).modality == "generic"


def test_shipped_classifier_loads_with_its_command() -> None:
    model = read_classifier(DEFAULT_PATH)
    assert model.classes == CLASSES and "medinr.features.classifier train" in model.record["command"]
    assert model.weights.shape == (len(CLASSES), 58)


def test_damaged_classifier_files_are_clear_errors(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text()
    cut = tmp_path / "cut.json"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(MedinrError, match="modality classifier .*cut.json is corrupt"):
        read_classifier(cut)
    blob = json.loads(text)
    blob["weights"] = blob["weights"][:1]
    shapes = tmp_path / "shapes.json"
    shapes.write_text(json.dumps(blob))
    with pytest.raises(MedinrError, match="corrupt"):
        read_classifier(shapes)
    blob = json.loads(text)
    blob["version"] = 99
    other = tmp_path / "other.json"
    other.write_text(json.dumps(blob))
    with pytest.raises(MedinrError, match="format version 99"):
        read_classifier(other)
    with pytest.raises(MedinrError, match="missing"):
        read_classifier(tmp_path / "absent.json")
