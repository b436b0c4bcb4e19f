"""``medinr bench --ablation``: every arm measured on a tiny crop, extra init arms matched by modality,
the README table, the CLI's JSON and its refusal of a malformed --ablation-inits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from medinr.bench.ablation import markdown, run_ablation
from medinr.cli import main
from medinr.meta.inits import INIT_DIR

TINY = {"per_set": 1, "crop": 40, "bpps": (1.0, 2.0), "fit_steps": 8, "steps": (4, 8), "reference_steps": 16,
        "budgets": (4, 8, 16, 32)}


@pytest.fixture(scope="module")
def xray_folder(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data") / "cxr-sample"  # the set's name says the family, as cxr-test does
    folder.mkdir()
    shutil.copy(shared_data / "cxr" / "train" / "00870a9c.jpg", folder)
    return folder


def test_every_arm_is_measured_and_extra_inits_match_the_family(xray_folder: Path) -> None:
    inits = {"other": [INIT_DIR / "seed-cxr.pt", INIT_DIR / "seed-mri.pt"], "mri-only": [INIT_DIR / "seed-mri.pt"]}
    doc = run_ablation([str(xray_folder)], inits=inits, **TINY)
    arms = [r["variant"] for r in doc["rows"]]
    assert arms == ["random", "reptile", "other", "reptile+sparsity", "reptile+edge"]  # no mri-only arm on an X-ray
    for row in doc["rows"]:
        assert set(row["psnr"]) == {4, 8} and row["psnr"][8] > 10 and len(row["points"]) == 2
        assert row["family"] == "cxr" and row["encode_seconds"] > 0
    reptile, other = doc["rows"][1], doc["rows"][2]
    assert reptile["psnr"] == other["psnr"]  # the same file (seed-cxr) fits identically
    table = markdown(doc)
    assert table.count("\n") == 1 + len(arms) and "| reptile+edge |" in table


def test_cli_writes_json_and_rejects_bad_init_spec(xray_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ablation.json"
    bad = CliRunner().invoke(main, ["bench", str(xray_folder), "--ablation", "--ablation-inits", "maml",
                                    "--out", str(out)])
    assert bad.exit_code == 2 and "NAME=FILE" in bad.output and not out.exists()
