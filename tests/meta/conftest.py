"""Fixtures of the meta-learning tests: small real crops and a private init folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medinr.io import read
from medinr.meta import inits
from medinr.meta.tasks import normalise, resize


@pytest.fixture(scope="module")
def cine_folder(shared_data: Path) -> Path:
    """One cine slice: 20 frames of 256x256 int16 DICOM."""
    return shared_data / "cine" / "train" / "SCD0000101_mid"


@pytest.fixture(scope="module")
def mri_crop(cine_folder: Path) -> torch.Tensor:
    """A z-scored 16x16 view of the heart region of a cine frame."""
    frame = read(cine_folder / "frame00.dcm").pixels
    return normalise(resize(frame[64:192, 64:192].astype(np.float64), 16))


@pytest.fixture
def init_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that stands in for the installed inits."""
    monkeypatch.setattr(inits, "INIT_DIR", tmp_path)
    return tmp_path
