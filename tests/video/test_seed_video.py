"""seed-video on a tiny real cine clip: round trip through the real container (frame times included, and
kept by every sequence writer), single-frame refusal, corrupted streams, and the temporal-consistency term
(zero on a static sequence, positive on flicker)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from medinr.archs.seed import _model_from
from medinr.archs.video import VIDEO_DEFAULT_WIDTH
from medinr.codec import decode, describe, encode_report
from medinr.errors import BitstreamError, InputError
from medinr.fit import FitConfig
from medinr.io import read
from medinr.meta.inits import random_init
from medinr.models.seed import SeedConfig
from medinr.video.fit import SequenceFitter, temporal_consistency_loss
from medinr.video.metrics import temporal_flicker

TINY = {"arch": "seed-video", "preset": "fast", "fit_steps": 30, "fit_qat_steps": 4, "default_width": 8,
        "threads": 1}


@pytest.fixture(scope="module")
def clip(shared_data: Path) -> object:
    image = read(shared_data / "cine/train/SCD0000101_mid")
    small = image.with_pixels(np.ascontiguousarray(image.pixels[:4, 112:144, 112:144]))
    small.frame_times = image.frame_times[:4]
    return small


@pytest.fixture(scope="module")
def coded(clip: object) -> object:
    return encode_report(clip, **TINY)


def test_round_trip_decodes_what_the_encoder_measured(clip: object, coded: object) -> None:
    decoded = decode(coded.data)
    assert decoded.pixels.shape == (4, 32, 32) and decoded.pixels.dtype == np.int16
    np.testing.assert_array_equal(decoded.pixels, coded.decoded.pixels)
    info = describe(coded.data)
    assert info["arch"] == "seed-video" and info["config"]["coord_dims"] == 3
    assert len(info["frame_payload_bytes"]) == 1  # one representation for the whole sequence
    assert coded.metrics["psnr"] > 15  # 30 steps: far from converged, but clearly fitted


@pytest.mark.parametrize("name", ["series", "multi.dcm", "seq.nii.gz",
                                  pytest.param("video.mkv", marks=pytest.mark.skipif(
                                      shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is not installed"))])
def test_decoded_sequence_keeps_its_frame_times_in_every_writer(clip: object, coded: object, tmp_path: Path,
                                                                name: str) -> None:
    from medinr.io.sequence import read_sequence, write_sequence

    decoded = decode(coded.data)  # no METADATA section (not kept by default): the times come from TIMING
    assert decoded.metadata == {} and decoded.frame_times == clip.frame_times == (0.0, 37.5, 75.0, 112.5)
    write_sequence(decoded, tmp_path / name)
    back = read_sequence(tmp_path / name)
    np.testing.assert_array_equal(back.pixels, decoded.pixels)
    np.testing.assert_allclose(back.frame_times, clip.frame_times)


def test_single_frame_refused(clip: object) -> None:
    with pytest.raises(InputError, match="at least 2 frames"):
        encode_report(clip.with_pixels(clip.pixels[:1]), **TINY)


@pytest.mark.parametrize("where", [-5, -40, 60])
def test_corrupted_video_stream_is_a_bitstream_error(coded: object, where: int) -> None:
    data = bytearray(coded.data)
    data[where] ^= 0x5A
    with pytest.raises(BitstreamError):
        decode(bytes(data))


def test_truncated_video_stream_is_a_bitstream_error(coded: object) -> None:
    with pytest.raises(BitstreamError):
        decode(coded.data[:-7])


def test_temporal_loss_is_zero_on_a_static_sequence(clip: object) -> None:
    source = torch.from_numpy(np.repeat(clip.pixels[:1], 4, axis=0).astype(np.float32))
    static_error = source + torch.randn(source.shape[1:])  # wrong, but the same in every frame
    assert temporal_consistency_loss(static_error, source) == 0
    assert temporal_flicker(source.numpy(), static_error.numpy()) == 0
    flicker = source + torch.randn(source.shape)
    assert temporal_consistency_loss(flicker, source) > 0.5
    assert temporal_flicker(source.numpy(), flicker.numpy()) > 0.5


def _fitter_losses(stack: np.ndarray) -> tuple[float, float]:
    """(loss with, loss without) the temporal term, for a network that ignores t, on every point."""
    config = SeedConfig(scales=3, hidden=8, coord_dims=3)
    params = list(random_init("seed", config).params)
    per_axis = 2 * config.freqs_per_band
    params[0] = params[0].clone()
    params[0][:, :per_axis] = 0  # first-layer weights of the t axis: the output is the same in every frame
    losses = []
    for weight in (1.0, 0.0):
        fit = FitConfig(batch_pixels=2 * stack.size)  # every point (and its neighbour) in one batch
        fitter = SequenceFitter(_model_from(config, params), stack, fit, temporal_weight=weight)
        losses.append(float(fitter._loss(None, 0.0)))
    return losses[0], losses[1]


def test_sequence_fitter_temporal_term_vanishes_on_a_static_sequence(clip: object) -> None:
    frame = ((clip.pixels[0] - clip.pixels.mean()) / clip.pixels.std()).astype(np.float32)
    with_term, without = _fitter_losses(np.repeat(frame[None], 4, axis=0))
    assert without > 0 and with_term == pytest.approx(without, rel=1e-6)
    flickering = np.stack([frame + (0.5 if i % 2 else -0.5) for i in range(4)]).astype(np.float32)
    with_term, without = _fitter_losses(flickering)
    assert with_term > without + 0.5  # the changes are +-1 per frame, the static network's 0


def test_plan_sizes_the_network_from_the_sequence_budget() -> None:
    from medinr.archs import get_arch
    from medinr.config import preset_config
    from medinr.ratecontrol import RateTarget

    arch, cfg = get_arch("seed-video"), preset_config("fast")
    small = arch.plan(128, 128, cfg, RateTarget("bpp", 0.1), 2_000)
    large = arch.plan(128, 128, cfg, RateTarget("bpp", 1.0), 200_000)
    assert small.coord_dims == large.coord_dims == 3 and small.hidden < large.hidden == 128
    assert arch.plan(128, 128, cfg, RateTarget("quality"), None).hidden == VIDEO_DEFAULT_WIDTH
    assert arch.plan(128, 128, preset_config("fast", default_width=12), RateTarget("quality"), None).hidden == 12


def test_refinement_filter_fit_recovers_a_known_filter(clip: object) -> None:
    from medinr.models.video import REFINE_STEP, fit_refinement, refine

    pred = ((clip.pixels - clip.pixels.mean()) / clip.pixels.std()).astype(np.float32)
    assert not fit_refinement(pred, pred).any()  # nothing to correct: every coefficient is zero
    known = np.zeros(28)
    known[4], known[13], known[22], known[27] = 0.25, -0.5, 0.25, 0.125  # temporal [1, -2, 1] / 4, bias 1/8
    symbols = fit_refinement(pred, refine(pred, known))
    np.testing.assert_allclose(symbols * REFINE_STEP, known, atol=2 * REFINE_STEP)


def test_refined_payload_decodes_and_bad_flags_are_refused(clip: object, coded: object) -> None:
    from medinr.archs.video import REFINE_BYTES, REFINED, reconstruct_sequence
    from medinr.bitstream import Tag, read_container
    from medinr.codec import _arch_and_config
    from medinr.preprocess import Normalisation

    container = read_container(coded.data)
    header = container.header
    arch, config = _arch_and_config(header)
    init = arch.load_init(header.init_name, config)
    norm = Normalisation(header.norm_mean, header.norm_std, header.value_min, header.value_max)
    (payload,) = container.payloads(Tag.FRAME)
    body = payload[1 + (REFINE_BYTES if payload[0] == REFINED else 0):]
    args = (config, init, norm, np.dtype(np.int16), (4, 32, 32))
    plain = reconstruct_sequence(bytes([0]) + body, *args)
    shifted = np.zeros(28, dtype="<i2")
    shifted[-1] = 4096  # bias of one normalised unit
    brighter = reconstruct_sequence(bytes([REFINED]) + shifted.tobytes() + body, *args)
    inside = (plain > norm.value_min) & (plain < norm.value_max - norm.std)
    np.testing.assert_allclose(brighter[inside] - plain[inside], norm.std, atol=1)
    with pytest.raises(BitstreamError, match="flags"):
        reconstruct_sequence(bytes([2]) + body, *args)
    with pytest.raises(BitstreamError, match="refinement"):
        reconstruct_sequence(bytes([REFINED]) + shifted.tobytes()[:10], *args)


def test_clip_tasks_and_the_video_init_meta_trained_on_them(clip: object, shared_data: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from medinr.archs import get_arch
    from medinr.meta import inits
    from medinr.meta.tasks import TaskSampler, load_sources
    from medinr.meta.train import meta_train

    series = [shared_data / "cine/train/SCD0000101_mid", shared_data / "cine/train/SCD0000101_apical"]
    sources, _ = load_sources(series[:1])
    task = TaskSampler(sources, 16, 200, 0, clip_frames=4).task()
    assert task.image.shape == (4, 16, 16) and task.sizes == (4, 16, 16)
    index, values = task.pixels(task.support[:5])
    assert len(index) == 3 and torch.equal(task.image[index], values)

    monkeypatch.setattr(inits, "INIT_DIR", tmp_path)
    result = meta_train("cine", series[:1], tmp_path / "seed-cine.pt", val_paths=series[1:], algorithm="reptile",
                        steps=2, inner_steps=1, inner_lr=0.01, outer_lr=0.1, tasks_per_batch=1, task_size=16,
                        support_pixels=256, query_pixels=256, widths=(8,), val_tasks=1, val_every=2, val_fit_steps=2,
                        summary_steps=(), clip_frames=4)
    assert result.name == "seed-cine" and result.config.coord_dims == 3
    inits.write_manifest(tmp_path)
    arch = get_arch("seed-video")
    covered = SeedConfig(scales=4, hidden=8, coord_dims=3)
    assert arch.default_init(covered, "cine").name == "seed-cine"
    assert arch.default_init(covered, "mri").name == arch.default_init(replace(covered, hidden=16), "cine").name \
        == "random"
    coded = encode_report(clip, modality="cine", **TINY)  # 32 px: 4 bands, the 4th from the random init
    assert describe(coded.data)["init"]["name"] == "seed-cine"
    np.testing.assert_array_equal(decode(coded.data).pixels, coded.decoded.pixels)


def test_shipped_cine_video_init_serves_its_width_at_every_size() -> None:
    from medinr.archs import get_arch
    from medinr.meta import inits

    arch = get_arch("seed-video")
    for scales in (5, 6, 7):  # 64 px clips take its first bands, 256 px ones one random band beyond them
        init = arch.default_init(SeedConfig(scales=scales, hidden=48, coord_dims=3), "cine")
        assert init.name == "seed-cine" and all(torch.isfinite(p).all() for p in init.params)
    assert inits.installed_inits()["seed-cine"]["command"] == \
        "nice -n 10 python -m medinr.meta.ship cine --data /work/shared/data"
