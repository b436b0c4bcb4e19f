"""Learned ``grid`` networks: the init file of a band-less config, the codec's choice of it, a Reptile step."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from medinr.archs.grid import GridCodec
from medinr.archs.grid_video import GridVideoCodec
from medinr.bitstream import read_container
from medinr.codec import decode, encode
from medinr.config import preset_config
from medinr.errors import InitError, InputError
from medinr.io import read, write
from medinr.io.common import make_image
from medinr.meta.grid import VIDEO_TASK, WAVELET_TASK, meta_train_grid
from medinr.meta.inits import InitFile, load_init, random_init, read_init_file, write_manifest
from medinr.models.grid import GridConfig
from medinr.ratecontrol import RateTarget

CONFIG = GridConfig(levels=5, hidden=16, upsampling="bicubic")


def _install(directory: Path, shift: float = 0.01) -> InitFile:
    params = [p + shift for p in random_init("grid", CONFIG).params]
    init = InitFile.from_training("grid-cxr", "grid", "cxr", CONFIG, {CONFIG.hidden: params}, {"note": "test"})
    init.save(directory / "grid-cxr.pt")
    write_manifest(directory, {"grid-cxr": "test"})
    return init


def test_grid_init_file_round_trip_and_assembly(init_dir: Path) -> None:
    _install(init_dir)
    back = read_init_file(init_dir / "grid-cxr.pt")
    assert back.scales == 1 and back.covers("grid", CONFIG) and not back.covers("grid", GridConfig(levels=4, hidden=16, upsampling="bicubic"))
    init = load_init("grid-cxr", "grid", CONFIG)
    rand = random_init("grid", CONFIG)
    assert all(torch.allclose(p, r + 0.01) for p, r in zip(init.params, rand.params)) and init.digest != rand.digest


def test_codec_uses_the_learned_init_and_keeps_the_network_for_bpp_targets(init_dir: Path) -> None:
    _install(init_dir)
    codec, cfg = GridCodec(), preset_config("fast", arch="grid", grid_hidden=16, grid_levels=5)
    assert codec.default_init(CONFIG, "cxr").name == "grid-cxr"
    assert codec.default_init(CONFIG, "mri").name == "random"
    tight = 0.1 * 64 * 64 / 8  # a budget the random init's network would be narrowed for
    assert codec.plan(64, 64, cfg, RateTarget("bpp", 0.1), tight, "cxr").hidden == 16
    assert codec.plan(64, 64, cfg, RateTarget("bpp", 0.1), tight, "mri").hidden < 16


def test_stream_made_with_learned_init_round_trips(init_dir: Path, shared_data: Path) -> None:
    _install(init_dir)
    crop = read(shared_data / "cxr" / "train" / "00870a9c.jpg").pixels[200:264, 200:264]
    data = encode(crop, bpp=1.0, preset="fast", arch="grid", modality="cxr", grid_hidden=16, grid_levels=5, grid_steps=10)
    decoded = decode(data).pixels
    assert decoded.shape == crop.shape and np.abs(decoded.astype(int) - crop).mean() < 20


def test_an_init_file_keeps_its_network_for_bpp_targets(tmp_path: Path, shared_data: Path) -> None:
    """``encode --init FILE`` plans with the file's init: a tight budget narrows a random network, not a learned one."""
    _install(tmp_path)
    crop = read(shared_data / "cxr" / "train" / "00870a9c.jpg").pixels[200:264, 200:264]
    options = dict(bpp=0.5, preset="fast", arch="grid", modality="mri", grid_hidden=16, grid_levels=5, grid_steps=5)
    data = encode(crop, init_file=tmp_path / "grid-cxr.pt", **options)
    assert decode(data, init_file=tmp_path / "grid-cxr.pt").pixels.shape == crop.shape
    assert len(data) <= 1.05 * 0.5 * crop.size / 8  # the budget is met (rate control's 5 %) with the wider network
    hidden = [GridConfig.from_bytes(read_container(d).header.arch_config).hidden for d in (data, encode(crop, **options))]
    assert hidden[0] == 16 > hidden[1]


def test_a_wavelet_init_file_encodes_and_decodes(tmp_path: Path, shared_data: Path) -> None:
    """``encode --init FILE --arch grid-wavelet`` (a file from ``meta.grid --wavelet``, here at other task bpps):
    the plan runs with the file's init (it once failed in ``grid-wavelet``'s plan), the stream names it, decodes with
    it and not without it."""
    out = tmp_path / "grid-wavelet-cxr.pt"
    meta_train_grid("cxr", [shared_data / "cxr" / "train"], out, steps=1, inner_steps=2, val_crops=0,
                    kind=WAVELET_TASK, task_bpps=(0.05, 0.1))
    assert list(read_init_file(out).record["task_bpps"]) == [0.05, 0.1]
    crop = read(shared_data / "cxr" / "train" / "00870a9c.jpg").pixels[600:856, 600:856]
    data = encode(crop, init_file=out, bpp=0.5, preset="fast", arch="grid-wavelet", modality="cxr", grid_steps=2)
    assert read_container(data).header.init_name == "grid-wavelet-cxr"
    assert decode(data, init_file=out).pixels.shape == crop.shape
    with pytest.raises(InitError):
        decode(data)


def test_training_goes_on_from_an_installed_init_or_a_file(tmp_path: Path, shared_data: Path) -> None:
    """``--from``: the outer loop starts at that init's networks (no step taken here: the file holds them as they
    were); a file that is not an init is an InitError."""
    out = tmp_path / "grid-wavelet-cxr.pt"
    meta_train_grid("cxr", [shared_data / "cxr" / "train"], out, steps=0, val_crops=0, kind=WAVELET_TASK,
                    start="grid-wavelet-cxr")
    config = WAVELET_TASK.codec.plan(256, 256, preset_config("balanced", arch="grid"), RateTarget("quality"), None)
    went_on = read_init_file(out)
    assert went_on.record["started_from"] == "grid-wavelet-cxr"
    for ours, theirs in zip(went_on.init_for(config).params, load_init("grid-wavelet-cxr", "grid", config).params):
        assert torch.equal(ours, theirs)
    (tmp_path / "junk.pt").write_bytes(b"not an init")
    with pytest.raises(InitError):
        meta_train_grid("cxr", [shared_data / "cxr" / "train"], tmp_path / "x.pt", steps=0, val_crops=0,
                        kind=WAVELET_TASK, start=str(tmp_path / "junk.pt"))


def test_reptile_moves_the_networks_not_the_gains(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "grid-cxr.pt"
    meta_train_grid("cxr", [shared_data / "cxr" / "train"], out, steps=1, inner_steps=3, val_crops=0)
    learned = read_init_file(out)
    config = GridCodec().plan(256, 256, preset_config("balanced", arch="grid"), RateTarget("quality"), None)
    trained, rand = learned.init_for(config).params, random_init("grid", config).params
    assert torch.equal(trained[0], rand[0])  # gain: per image, not learned
    assert any(not torch.equal(a, b) for a, b in zip(trained[1:], rand[1:]))


def test_batched_reptile_in_worker_processes_moves_the_networks(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "grid-cxr.pt"
    result = meta_train_grid("cxr", [shared_data / "cxr" / "train"], out, steps=1, inner_steps=2, val_crops=0,
                             workers=2)
    learned = read_init_file(out)
    assert result.steps == 1 and "batched" in learned.record["algorithm"]
    config = GridCodec().plan(256, 256, preset_config("balanced", arch="grid"), RateTarget("quality"), None)
    assert any(not torch.equal(a, b) for a, b in zip(learned.init_for(config).params[1:],
                                                     random_init("grid", config).params[1:]))


def test_video_tasks_train_grid_video_networks_that_the_video_codec_picks(init_dir: Path, shared_data: Path) -> None:
    meta_train_grid("cine", [shared_data / "cine" / "train"], init_dir / "grid-video-cine.pt", steps=1,
                    inner_steps=2, val_crops=0, kind=VIDEO_TASK)
    write_manifest(init_dir, {"grid-video-cine": "test"})
    config = GridVideoCodec().plan(128, 128, preset_config("balanced", arch="grid-video"), RateTarget("quality"), None)
    assert config.dims == 3 and read_init_file(init_dir / "grid-video-cine.pt").covers("grid", config)
    assert GridVideoCodec().default_init(config, "cine").name == "grid-video-cine"
    assert GridVideoCodec().default_init(config, "cxr").name == "random"
    assert GridVideoCodec().default_init(replace(config, levels=7), "cine").name == "random"  # 256 px clips


def test_training_images_smaller_than_a_task_are_a_clear_error(tmp_path: Path) -> None:
    for i in range(2):  # two series, so the validation split works; both far smaller than a 256 px task
        write(make_image(np.random.default_rng(i).integers(0, 255, (64, 64)).astype(np.uint8),
                         source_format="array"), tmp_path / f"{i}.png")
    with pytest.raises(InputError, match="no usable 256 px crop"):
        meta_train_grid("cxr", [tmp_path], tmp_path / "out.pt", steps=1, inner_steps=1, val_crops=0)
    assert not (tmp_path / "out.pt").exists()
