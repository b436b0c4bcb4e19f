"""Installed meta-learned inits: per-scale assembly, digests, manifest checks, and the decoder's refusal of
a stream made with another init."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from medinr.archs import get_arch
from medinr.codec import decode, describe, encode
from medinr.errors import InitError
from medinr.meta import inits
from medinr.meta.inits import InitFile, load_init, random_init, read_init_file, write_manifest
from medinr.models.seed import SeedConfig

BASE = SeedConfig(scales=3, hidden=24)


def _meta_file(name: str = "seed-cxr", shift: float = 0.01, widths: tuple[int, ...] = (24,)) -> InitFile:
    """A stand-in for a trained init: the random init of 3 scales, moved by ``shift``."""
    params = {w: [p + shift for p in random_init("seed", SeedConfig(scales=3, hidden=w)).params] for w in widths}
    return InitFile.from_training(name, "seed", "cxr", BASE, params, {"note": "test"})


def _install(directory: Path, init: InitFile) -> Path:
    path = directory / f"{init.name}.pt"
    init.save(path)
    write_manifest(directory, {init.name: "test"})
    return path


def test_per_scale_assembly_and_digest(init_dir: Path) -> None:
    meta = _meta_file()
    _install(init_dir, meta)
    small, big = SeedConfig(scales=2, hidden=24), SeedConfig(scales=5, hidden=24)
    a, b = load_init("seed-cxr", "seed", small), load_init("seed-cxr", "seed", big)
    rand = random_init("seed", big)
    for p_small, p_big, p_meta, p_rand in zip(a.params, b.params, meta.params[24], rand.params):
        assert torch.equal(p_small, p_meta[:2])
        assert torch.equal(p_big[:3], p_meta) and torch.equal(p_big[3:], p_rand[3:])
    assert a.digest != b.digest != rand.digest
    assert load_init("seed-cxr", "seed", big).digest == b.digest


def test_file_round_trip_keeps_record(tmp_path: Path) -> None:
    meta = _meta_file(widths=(16, 24))
    meta.save(tmp_path / "x.pt")
    back = read_init_file(tmp_path / "x.pt")
    assert back.record == {"note": "test"} and back.base_config == meta.base_config and back.scales == 3
    assert all(torch.equal(x, y) for w in (16, 24) for x, y in zip(back.params[w], meta.params[w]))


def test_missing_name_and_uncovered_width(init_dir: Path) -> None:
    with pytest.raises(InitError, match="no initialisation named 'seed-mri'"):
        load_init("seed-mri", "seed", BASE)
    _install(init_dir, _meta_file())
    with pytest.raises(InitError, match="no parameters for this seed configuration"):
        load_init("seed-cxr", "seed", SeedConfig(scales=3, hidden=16))
    with pytest.raises(InitError, match="no parameters"):
        load_init("seed-cxr", "seed", SeedConfig(scales=3, hidden=24, omega0=5.0))


def test_corrupt_file_is_refused(init_dir: Path) -> None:
    path = _install(init_dir, _meta_file())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InitError, match="corrupt"):
        load_init("seed-cxr", "seed", BASE)
    garbage = init_dir / "garbage.pt"
    garbage.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(InitError, match="corrupt"):  # without the manifest's SHA-256: the content check
        read_init_file(garbage)


def test_missing_file_and_corrupt_manifest(init_dir: Path) -> None:
    path = _install(init_dir, _meta_file())
    path.unlink()
    with pytest.raises(InitError, match="missing"):
        load_init("seed-cxr", "seed", BASE)
    (init_dir / inits.MANIFEST).write_text("{not json")
    with pytest.raises(InitError, match="manifest .* is corrupt"):
        load_init("seed-cxr", "seed", BASE)


def test_other_format_version_is_refused(init_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inits, "FORMAT_VERSION", 2)
    _meta_file().save(init_dir / "future.pt")
    monkeypatch.setattr(inits, "FORMAT_VERSION", 1)
    with pytest.raises(InitError, match="format version 2; this medinr reads version 1"):
        read_init_file(init_dir / "future.pt")


def test_default_init_uses_meta_init_only_where_it_applies(init_dir: Path) -> None:
    seed = get_arch("seed")
    assert seed.default_init(BASE, "cxr").name == "random"  # nothing installed
    _install(init_dir, _meta_file())
    assert seed.default_init(SeedConfig(scales=6, hidden=24), "cxr").name == "seed-cxr"
    assert seed.default_init(SeedConfig(scales=6, hidden=32), "cxr").name == "random"
    assert seed.default_init(BASE, "generic").name == "random"
    assert seed.default_init(BASE, "mri").name == "random"


def test_stream_refuses_to_decode_with_another_init(init_dir: Path, shared_data: Path) -> None:
    import imagecodecs

    pixels = imagecodecs.imread(shared_data / "cxr" / "test" / "00000001_000.png")[400:432, 400:432]
    _install(init_dir, _meta_file(shift=0.01))
    data = encode(np.ascontiguousarray(pixels), modality="cxr", arch="seed", preset="fast", fit_steps=10,
                  fit_qat_steps=0)
    assert describe(data)["init"]["name"] == "seed-cxr" and decode(data).pixels.shape == (32, 32)
    _install(init_dir, _meta_file(shift=0.02))  # same name, other parameters
    with pytest.raises(InitError, match="differs from the one this file was encoded with"):
        decode(data)


@pytest.mark.parametrize("modality", ["cxr", "mri", "cine"])
def test_shipped_inits_serve_the_default_width(modality: str) -> None:
    from medinr.meta.evaluate import default_seed_config

    config = replace(default_seed_config(), scales=8)
    init = get_arch("seed").default_init(config, modality)
    assert init.name == {"cxr": "seed-cxr", "mri": "seed-mri", "cine": "seed-mri"}[modality]
    assert all(torch.isfinite(p).all() for p in init.params)
    assert inits.installed_inits()[init.name]["command"].startswith("nice -n 10 python -m medinr.meta.ship")


@pytest.mark.parametrize("family", ["cxr", "mri"])
def test_shipped_grid_networks_serve_the_image_config_the_encoder_plans(family: str) -> None:
    """The shipped ``grid-<family>`` files predate ``GridConfig.static``: a field added later is taken at its
    default, so images keep their learned networks (and older files keep decoding)."""
    from medinr.archs.grid import GridCodec
    from medinr.config import preset_config
    from medinr.ratecontrol import RateTarget

    config = GridCodec().plan(256, 256, preset_config("balanced"), RateTarget("quality"), None, family)
    assert inits.modality_init("grid", family, config).name == f"grid-{family}"
    assert "static" not in inits.read_installed(f"grid-{family}").base_config
    assert inits.modality_init("grid", family, replace(config, upsampling="bilinear")).name == "random"


def test_a_config_field_added_later_matches_only_at_its_default() -> None:
    from medinr.models.grid import GridConfig

    config = GridConfig(levels=3, hidden=8, dims=3)
    params = {8: list(random_init("grid", config).params)}
    old = InitFile.from_training("grid-video-cine", "grid", "cine", config, params, {})
    old = replace(old, base_config={k: v for k, v in old.base_config.items() if k != "static"})
    assert old.covers("grid", config) and not old.covers("grid", replace(config, static=1))
