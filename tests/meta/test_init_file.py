"""``medinr encode/decode --init FILE``: a stream made from a user's init file decodes with that file only;
missing, corrupt or other-version init files are one-line errors (exit 2) that leave no output behind."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from medinr.cli import main
from medinr.config import preset_config
from medinr.meta.evaluate import default_seed_config
from medinr.meta.inits import FileInitCodec, InitFile, random_init, read_init_file

FAST = ["--preset", "fast", "--steps", "20", "--quiet"]


def _user_init(path: Path, shift: float, widths: tuple[int, ...] = (24,)) -> Path:
    """A stand-in for a ``medinr meta-train`` output: the random init of the default network, moved by ``shift``."""
    config = replace(default_seed_config(), scales=3)
    params = {w: [p + shift for p in random_init("seed", replace(config, hidden=w)).params] for w in widths}
    InitFile.from_training("seed-cxr", "seed", "cxr", config, params, {"note": "test"}).save(path)
    return path


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, shared_data: Path) -> Path:
    """A 32x32 chest X-ray crop encoded from the user init ``mine.pt`` (beside it: ``other.pt``)."""
    root = tmp_path_factory.mktemp("init")
    crop = imagecodecs.imread(shared_data / "cxr" / "train" / "00870a9c.jpg")[900:932, 900:932]
    imagecodecs.imwrite(root / "crop.png", np.ascontiguousarray(crop))
    _user_init(root / "mine.pt", 0.01)
    _user_init(root / "other.pt", 0.02)
    result = run("encode", root / "crop.png", "-o", root / "crop.minr", "--init", root / "mine.pt", *FAST)
    assert result.exit_code == 0, result.output
    return root


def test_round_trip_with_the_init_file_and_info_names_it(encoded: Path) -> None:
    result = run("decode", encoded / "crop.minr", "-o", encoded / "out.npy", "--init", encoded / "mine.pt")
    assert result.exit_code == 0, result.output
    assert np.load(encoded / "out.npy").shape == (32, 32)
    info = json.loads(run("info", encoded / "crop.minr", "--json").output)
    assert info["arch"] == "seed" and info["init"]["name"] == "seed-cxr"
    mine = read_init_file(encoded / "mine.pt").init_for(replace(default_seed_config(), scales=info["config"]["scales"]))
    assert info["init"]["digest"] == mine.digest.hex()


@pytest.mark.parametrize("init", [None, "other.pt"])
def test_decoding_without_that_init_fails_cleanly(encoded: Path, init: str | None) -> None:
    out = encoded / f"refused-{init}.npy"
    result = run("decode", encoded / "crop.minr", "-o", out, *(["--init", encoded / init] if init else []))
    assert result.exit_code == 2 and "differs from the one this file was encoded with" in result.output
    assert "--init FILE" in result.output and len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_bad_init_files_are_one_line_errors_and_write_nothing(encoded: Path) -> None:
    (encoded / "junk.pt").write_bytes(b"PK\x03\x04junk")
    torch.save({"format": "medinr-init", "version": 99}, encoded / "future.pt")
    cases = {"absent.pt": "missing or unreadable", "junk.pt": "is corrupt", "future.pt": "format version 99"}
    for name, message in cases.items():
        out = encoded / f"bad-{name}.minr"
        result = run("encode", encoded / "crop.png", "-o", out, "--init", encoded / name, *FAST)
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and not out.exists()
        decoded = run("decode", encoded / "crop.minr", "-o", encoded / "bad.npy", "--init", encoded / name)
        assert decoded.exit_code == 2 and message in decoded.output and not (encoded / "bad.npy").exists()


def test_encoder_widths_are_limited_to_the_file_widths(tmp_path: Path) -> None:
    path = _user_init(tmp_path / "narrow.pt", 0.0, widths=(12, 16))
    codec = FileInitCodec(None, read_init_file(path), path)
    cfg = codec.encoder_config(preset_config("fast"))
    assert cfg.widths == (12, 16) and cfg.default_width == 16
