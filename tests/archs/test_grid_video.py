"""grid-video ((x, y, t) latent grids) on a tiny real cine clip: codec and CLI round trips, thread-independent
decoding, header dims checks, causal 3D context coding, single-frame refusal, bad payloads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from medinr.archs import get_arch
from medinr.archs.grid import _FrameFit, strided_frames
from medinr.bitstream import Tag, read_container
from medinr.cli import main
from medinr.codec import decode, describe, encode_report
from medinr.config import preset_config
from medinr.entropy.context import anchors, decode_levels, encode_levels
from medinr.errors import BitstreamError, InputError
from medinr.io import read
from medinr.meta.inits import random_init
from medinr.models.grid import (
    GridConfig,
    GridModel,
    context_features,
    temporal_frames,
    temporal_spectrum,
)
from medinr.preprocess import Normalisation
from medinr.ratecontrol import RateTarget

TINY = {"arch": "grid-video", "preset": "fast", "video_steps": 4, "threads": 1}


@pytest.fixture(scope="module")
def clip(shared_data: Path) -> object:
    image = read(shared_data / "cine/train/SCD0000101_mid")
    return image.with_pixels(np.ascontiguousarray(image.pixels[:4, 112:144, 112:144]))


@pytest.fixture(scope="module")
def coded(clip: object) -> object:
    return encode_report(clip, bpp=3.0, **TINY)


def test_round_trip_decodes_what_the_encoder_measured(clip: object, coded: object) -> None:
    decoded = decode(coded.data)
    assert decoded.pixels.shape == (4, 32, 32) and decoded.pixels.dtype == clip.pixels.dtype
    np.testing.assert_array_equal(decoded.pixels, coded.decoded.pixels)
    info = describe(coded.data)
    assert info["arch"] == "grid-video" and info["config"]["dims"] == 3
    assert len(info["frame_payload_bytes"]) == 1  # one representation for the whole sequence
    assert abs(coded.metrics["bpp"] - 3.0) < 0.15 and coded.metrics["psnr"] > 25


def test_decode_identical_on_one_and_two_threads(coded: object) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = decode(coded.data).pixels
        torch.set_num_threads(2)
        two = decode(coded.data).pixels
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_config_dims_must_match_the_architecture() -> None:
    flat, video = GridConfig(levels=3), GridConfig(levels=3, dims=3)
    assert get_arch("grid-video").config_from_bytes(video.to_bytes()) == video
    with pytest.raises(ValueError, match="grid needs 2-axis"):
        get_arch("grid").config_from_bytes(video.to_bytes())
    with pytest.raises(ValueError, match="grid-video needs 3-axis"):
        get_arch("grid-video").config_from_bytes(flat.to_bytes())
    with pytest.raises(ValueError):
        GridConfig.from_bytes(GridConfig(dims=4).to_bytes())


def test_level_shapes_keep_frames_on_the_finest_level_then_halve() -> None:
    assert GridConfig(levels=4, dims=3).level_shapes(5, 32, 30) == [(5, 32, 30), (3, 16, 15), (2, 8, 8), (1, 4, 4)]
    assert GridConfig(levels=2).level_shapes(32, 30) == [(32, 30), (16, 15)]


def test_context_features_are_causal_in_3d() -> None:
    """First-pass features never read the level being coded, second-pass ones read only its anchors."""
    rng = np.random.default_rng(1)
    parent = torch.from_numpy(rng.integers(-3, 4, (2, 3, 4)).astype(np.float64))
    level = torch.from_numpy(rng.integers(-3, 4, (3, 5, 7)).astype(np.float64))
    first = torch.from_numpy(anchors(tuple(level.shape)))
    changed = level.clone()
    changed[~first] += 10  # only second-pass values differ
    for checker_pass in (0, 1):
        np.testing.assert_array_equal(context_features(level, parent, checker_pass),
                                      context_features(changed, parent, checker_pass))
    assert not torch.equal(context_features(level, parent, 1), context_features(level * 0, parent, 1))
    assert context_features(level, parent).shape == (9 + 6 + 1, level.numel())


def test_3d_context_coding_round_trips_exactly() -> None:
    model = GridModel(GridConfig(levels=3, dims=3))
    with torch.no_grad():  # a context network that actually varies means and scales
        model.context[2].normal_(0, 0.3, generator=torch.Generator().manual_seed(3))
        model.level_bias[:, 1] = torch.arange(1.0, 4.0)
    rng = np.random.default_rng(0)
    shapes = model.config.level_shapes(5, 19, 13)
    levels = [np.rint(rng.laplace(0, 2.0 ** (s + 1), shape)).astype(np.int64) for s, shape in enumerate(shapes)]
    decoded = decode_levels(encode_levels(levels, model.exact_predictor()), shapes, model.exact_predictor())
    assert [z.shape for z in decoded] == shapes
    np.testing.assert_array_equal(np.concatenate([z.ravel() for z in decoded]),
                                  np.concatenate([z.ravel() for z in levels]))


def test_static_grids_have_one_frame_their_own_parents_and_start_coarse_to_fine() -> None:
    config = GridConfig(levels=3, dims=3, static=2)
    assert GridConfig.from_bytes(config.to_bytes()) == config
    assert config.level_shapes(6, 16, 12)[3:] == [(1, 16, 12), (1, 8, 6)]
    assert config.parents() == [1, 2, None, 4, None]
    assert config.statics() == [3, 4, None] and config.coarse_to_fine() == [2, 4, 1, 3, 0]
    with pytest.raises(ValueError):  # more static grids than levels
        GridConfig.from_bytes(GridConfig(levels=2, dims=3, static=3).to_bytes())


def test_static_grids_are_planned_except_for_the_lowest_bpp_targets() -> None:
    from medinr.archs.grid_video import STATIC_FROM_BPP

    codec, cfg = get_arch("grid-video"), preset_config("balanced", video_static_levels=2)

    def static(target: RateTarget) -> int:
        return codec.plan(128, 128, cfg, target, None if target.value is None else 1e4, "cine").static

    assert codec.plan(128, 128, preset_config("balanced"), RateTarget("quality"), None, "cine").static == 0
    assert static(RateTarget("bpp", STATIC_FROM_BPP)) == cfg.video.static_levels == 2
    assert static(RateTarget("bpp", 0.9 * STATIC_FROM_BPP)) == 0
    assert static(RateTarget("psnr", 30.0)) == static(RateTarget("quality")) == 2
    assert codec.plan(8, 8, preset_config("balanced", video_static_levels=7), RateTarget("quality"), None).static == 2


def test_context_coding_with_static_grids_round_trips_exactly() -> None:
    model = GridModel(GridConfig(levels=3, dims=3, static=2))
    with torch.no_grad():
        model.context[2].normal_(0, 0.3, generator=torch.Generator().manual_seed(3))
    rng = np.random.default_rng(0)
    shapes = model.config.level_shapes(5, 19, 13)
    levels = [np.rint(rng.laplace(0, 2.0, shape)).astype(np.int64) for shape in shapes]
    parents = model.config.parents()
    data = encode_levels(levels, model.exact_predictor(), parents)
    decoded = decode_levels(data, shapes, model.exact_predictor(), parents=parents)
    for z, ref in zip(decoded, levels):
        np.testing.assert_array_equal(z, ref)
    assert data != encode_levels(levels, model.exact_predictor())  # the parents are used


def test_a_still_sequence_starts_with_its_detail_in_the_static_grids(clip: object) -> None:
    still = np.repeat(clip.pixels[:1], 4, axis=0)
    norm = Normalisation.of(still)
    config = GridConfig(levels=4, dims=3, static=2)
    fit = _FrameFit(still, norm, config, random_init("grid", config), preset_config("fast").grid)
    fit.start(RateTarget("bpp", 1.0), float(still.size))
    latents = [z.detach() for z in fit.latents]
    assert not latents[0].any() and not latents[1].any()  # nothing moves
    assert latents[4].abs().sum() > 0 and latents[5].abs().sum() > 0


def test_the_temporal_transform_is_orthonormal_and_leaves_single_frames_alone() -> None:
    z = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(0))
    spectrum = temporal_spectrum(z)
    torch.testing.assert_close(temporal_frames(spectrum), z)
    torch.testing.assert_close(spectrum.pow(2).sum(), z.pow(2).sum())  # the same error in either domain
    torch.testing.assert_close(spectrum[0], z.sum(0) / 5**0.5)  # frequency 0: what every frame shares
    single = torch.randn(1, 3, 4)
    assert temporal_spectrum(single) is single and temporal_frames(single) is single


def test_temporal_configs_round_trip_and_are_refused_for_frames() -> None:
    config = GridConfig(levels=3, dims=3, static=1, temporal=True, context_magnitudes=True)
    assert GridConfig.from_bytes(config.to_bytes()) == config
    assert GridConfig(levels=3, dims=3).to_bytes()[5] == GridConfig().to_bytes()[5]  # flag off: the old byte
    with pytest.raises(ValueError):
        GridConfig.from_bytes(GridConfig(dims=2, temporal=True).to_bytes())


def test_a_still_sequence_starts_with_its_latents_in_frequency_zero(clip: object) -> None:
    still = np.repeat(clip.pixels[:1], 4, axis=0)
    config = GridConfig(levels=4, dims=3, temporal=True)
    fit = _FrameFit(still, Normalisation.of(still), config, random_init("grid", config), preset_config("fast").grid)
    fit.start(RateTarget("bpp", 1.0), float(still.size))
    moving = [z.detach()[1:] for z in fit.latents if z.shape[0] > 1]
    assert moving and all(float(z.abs().max()) < 1e-4 for z in moving)
    assert fit.latents[0].detach()[0].abs().sum() > 0
    # the start's rate is that of the spectra it codes, not of the repeated frames
    framewise = _FrameFit(still, Normalisation.of(still), replace(config, temporal=False), fit.init, fit.opts)
    gains = fit.model.gain.detach()
    assert fit._pyramid(gains)[1] < 0.5 * framewise._pyramid(gains)[1]


@pytest.mark.parametrize(("temporal", "scales", "minor"), [(True, True, 12), (True, False, 11), (False, True, 10)])
def test_the_temporal_options_set_the_config_and_the_format_version(clip: object, temporal: bool, scales: bool,
                                                                    minor: int) -> None:
    coded = encode_report(clip, bpp=3.0, video_temporal=temporal, video_frequency_scales=scales, **TINY)
    config = describe(coded.data)["config"]
    assert config["temporal"] is temporal and config["frequency_scales"] is (temporal and scales)
    assert coded.data[5] == minor
    np.testing.assert_array_equal(decode(coded.data).pixels, coded.decoded.pixels)


def test_frequency_scales_need_a_temporal_config() -> None:
    config = GridConfig(levels=3, dims=3, temporal=True, frequency_scales=True)
    assert GridConfig.from_bytes(config.to_bytes()) == config
    assert config.init_fields() == GridConfig(levels=3, dims=3).init_fields()
    with pytest.raises(ValueError):
        GridConfig.from_bytes(replace(config, temporal=False).to_bytes())
    shapes = config.level_shapes(4, 16, 16)
    assert config.frequency_counts(shapes) == [4, 2, 0]  # a level of one frame has none
    assert replace(config, frequency_scales=False).frequency_counts(shapes) == [0, 0, 0]


def test_a_still_sequence_starts_with_its_moving_frequencies_scaled_down(clip: object) -> None:
    still = np.repeat(clip.pixels[:1], 4, axis=0)
    config = GridConfig(levels=3, dims=3, temporal=True, frequency_scales=True)
    fit = _FrameFit(still, Normalisation.of(still), config, random_init("grid", config), preset_config("fast").grid)
    fit.start(RateTarget("bpp", 1.0), float(still.size))
    bias = fit.model.slice_bias
    assert bias[2] is None and bias[0].shape == (4,) and bias[1].shape == (2,)
    assert all(float(b[1:].max()) < float(b[0]) - 2 for b in bias[:2])  # only frequency 0 holds anything


def test_static_grids_round_trip_through_the_codec(clip: object) -> None:
    coded = encode_report(clip, bpp=3.0, video_static_levels=1, **TINY)
    assert describe(coded.data)["config"]["static"] == 1
    np.testing.assert_array_equal(decode(coded.data).pixels, coded.decoded.pixels)
    assert coded.metrics["psnr"] > 25


def test_single_frame_refused(clip: object) -> None:
    with pytest.raises(InputError, match="at least 2 frames"):
        encode_report(clip.with_pixels(clip.pixels[:1]), bpp=3.0, **TINY)


def test_corrupted_or_truncated_payload_raises_bitstream_error(coded: object) -> None:
    container = read_container(coded.data)
    header = container.header
    payload = container.payloads(Tag.FRAME)[0]
    codec = get_arch("grid-video")
    config = codec.config_from_bytes(header.arch_config)
    init = codec.load_init(header.init_name, config)
    norm = Normalisation(header.norm_mean, header.norm_std, header.value_min, header.value_max)
    for bad in (payload[:3], payload[:len(init.params) + 4], payload[:-1]):
        with pytest.raises(BitstreamError):
            codec.decode_frame(bad, config, init, norm, np.dtype(header.dtype), header.shape)
    with pytest.raises(BitstreamError):
        codec.decode_frame(payload, config, init, norm, np.dtype(header.dtype), header.shape[1:])
    for where in (-5, -40, len(coded.data) // 2):
        flipped = bytearray(coded.data)
        flipped[where] ^= 0x5A
        with pytest.raises(BitstreamError):
            decode(bytes(flipped))


def test_cli_encodes_and_decodes_with_arch_grid_video(clip: object, tmp_path: Path) -> None:
    source = tmp_path / "clip.npy"
    np.save(source, clip.pixels)
    minr, out = tmp_path / "clip.minr", tmp_path / "decoded.npy"
    runner = CliRunner()
    encoded = runner.invoke(main, ["encode", str(source), "-o", str(minr), "--arch", "grid-video", "--preset",
                                   "fast", "--steps", "4", "--bpp", "3", "--quiet"])
    assert encoded.exit_code == 0, encoded.output
    info = runner.invoke(main, ["info", str(minr), "--json"])
    assert info.exit_code == 0 and '"arch": "grid-video"' in info.output and '"static": 0' in info.output
    assert runner.invoke(main, ["decode", str(minr), "-o", str(out), "--quiet"]).exit_code == 0
    assert np.load(out).shape == (4, 32, 32)
    still = tmp_path / "still.minr"
    assert runner.invoke(main, ["encode", str(source), "-o", str(still), "--arch", "grid-video", "--preset", "fast",
                                "--steps", "4", "--bpp", "3", "--static-grids", "2", "--quiet"]).exit_code == 0
    assert '"static": 2' in runner.invoke(main, ["info", str(still), "--json"]).output


def test_temporal_weight_makes_the_reconstruction_follow_the_source_changes(clip: object) -> None:
    """With the temporal-consistency term, the decoded clip's frame-to-frame changes are closer to the source's."""
    from medinr.video.metrics import temporal_flicker

    flicker = [temporal_flicker(clip.pixels, decode(encode_report(clip, bpp=1.0, **{**TINY, "video_steps": 40},
                                                                  grid_temporal_weight=w).data).pixels)
               for w in (0.0, 4.0)]
    assert flicker[1] < flicker[0]


def test_synthesis_of_chosen_frames_equals_those_frames_of_the_whole_sequence() -> None:
    """Training on a frame subset synthesises exactly those frames (time-resized levels included)."""
    config = GridConfig(levels=4, dims=3)
    torch.manual_seed(0)
    model = GridModel(config)
    size = (6, 24, 24)
    latents = [torch.randn(shape) for shape in config.level_shapes(*size)]
    frames = torch.tensor([1, 4])
    with torch.no_grad():
        whole = model.synthesize(latents, size)
        part = model.synthesize(latents, size, frames)
    assert part.shape == (2, 24, 24)
    torch.testing.assert_close(part, whole[frames], rtol=0, atol=1e-5)


@pytest.mark.parametrize(("frames", "stride"), [(10, 4), (3, 4), (5, 2)])
def test_frame_stride_covers_every_frame_once_per_cycle(frames: int, stride: int) -> None:
    cycle = [strided_frames(step, frames, stride) for step in range(min(stride, frames))]
    torch.testing.assert_close(torch.cat(cycle).sort().values, torch.arange(frames))
    assert strided_frames(7, frames, 1) is None


def test_rate_on_strided_frames_averages_to_the_whole_sequence_rate() -> None:
    """The frame-subset rate of a training step is unbiased: over a stride's cycle of offsets it averages to the
    whole sequence's rate; and contexts evaluated beforehand give the rate of evaluating them anew."""
    config = GridConfig(levels=3, dims=3)
    torch.manual_seed(0)
    model = GridModel(config)
    latents = [torch.round(3 * torch.randn(shape)) for shape in config.level_shapes(8, 16, 16)]
    with torch.no_grad():
        whole = float(model.rate_bits(latents))
        cycle = [float(model.rate_bits(latents, frames=strided_frames(step, 8, 4))) for step in range(4)]
        reused = float(model.rate_bits(latents, model.rate_contexts(latents)))
    assert max(cycle) - min(cycle) > 1e-3 * whole  # the subsets do differ
    assert np.mean(cycle) == pytest.approx(whole, rel=1e-5)
    assert reused == whole


def test_a_temporal_fit_counts_every_frequency_of_a_step_on_strided_frames(clip: object) -> None:
    """A temporal config's latents are frequencies, not frames: a step on some frames still pays the whole levels'
    rate (a subset of frequencies made the rate estimate swing between 0.6 and 1.8 times the target on cine)."""
    config = GridConfig(levels=3, dims=3, temporal=True, frequency_scales=True)
    pixels = clip.pixels
    fit = _FrameFit(pixels, Normalisation.of(pixels), config, random_init("grid", config), preset_config("fast").grid)
    fit.start(RateTarget("bpp", 1.0), float(pixels.size))
    with torch.no_grad():
        whole = float(fit.loss(fit.latents)[2])
        assert float(fit.loss(fit.latents, frames=torch.tensor([1, 3]))[2]) == whole
        framewise = _FrameFit(pixels, Normalisation.of(pixels), replace(config, temporal=False, frequency_scales=False),
                              fit.init, fit.opts)
        framewise.start(RateTarget("bpp", 1.0), float(pixels.size))
        assert float(framewise.loss(framewise.latents, frames=torch.tensor([1, 3]))[2]) != float(
            framewise.loss(framewise.latents)[2])
