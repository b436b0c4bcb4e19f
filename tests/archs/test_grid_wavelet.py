"""The ``grid-wavelet`` architecture: round trips (bpp, PSNR, no target; 8 and 12 bit, sides not a multiple of the
level unit), the wavelet start point, thread-independent decoding, the format version, bad payloads, the CLI."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import medinr
from medinr.archs import get_arch
from medinr.archs.grid import (
    INTERPOLATED,
    INTERPOLATED_MINOR,
    LATENT_HEADROOM,
    MAGNITUDES_MINOR,
    SYMMETRIC_MINOR,
    WAVELET_MINOR,
    _coarsening_at,
    _FrameFit,
)
from medinr.bitstream import NAMED_MINOR, Tag, read_container
from medinr.cli import main
from medinr.config import preset_config
from medinr.errors import BitstreamError
from medinr.meta.inits import load_init
from medinr.metrics import psnr
from medinr.models.grid import GridConfig
from medinr.preprocess import Normalisation
from medinr.ratecontrol import RateTarget

FAST = {"arch": "grid-wavelet", "preset": "fast", "grid_steps": 2, "grid_net_step_search": (0,)}


@pytest.fixture(scope="module")
def crop(shared_data) -> np.ndarray:
    """A 44 x 58 crop: 2 wavelet levels, and 58 px is not a multiple of their 4 px unit, so the frame is padded."""
    pixels = medinr.read(shared_data / "cxr" / "train" / "0a7faa2a.jpg").pixels
    return np.ascontiguousarray(pixels[800:844, 800:858])


@pytest.fixture(scope="module")
def encoded(crop) -> bytes:
    return medinr.encode(crop, bpp=2.0, **FAST)


def _frame_flags(data: bytes) -> tuple[int, int]:
    """(the frames' minor: the lowest version whose readers decode them, coarsening byte) of a one-frame grid file;
    the container is stamped that or 1.10, its header's, whichever is later."""
    container = read_container(data)
    codec = get_arch("grid-wavelet")
    config = codec.config_from_bytes(container.header.arch_config)
    payload = container.payloads(Tag.FRAME)[0]
    minor = codec.content_minor(config, [payload])
    assert container.minor == max(minor, NAMED_MINOR)
    return minor, payload[_coarsening_at(payload, len(load_init("random", "grid", config).params))]


def _minor_of(base: int, coarsening: int) -> int:
    return INTERPOLATED_MINOR if coarsening & INTERPOLATED else base


def test_round_trip_at_the_bpp_target_with_wavelet_latents(crop, encoded) -> None:
    decoded = medinr.decode(encoded).pixels
    assert decoded.shape == crop.shape and decoded.dtype == crop.dtype
    assert psnr(crop, decoded) > 28
    assert abs(8 * len(encoded) / crop.size - 2.0) < 0.1
    container = read_container(encoded)
    assert _frame_flags(encoded)[0] == SYMMETRIC_MINOR
    config = get_arch("grid-wavelet").config_from_bytes(container.header.arch_config)
    assert config.wavelet and config.symmetric and config.levels == 2
    assert not config.context_magnitudes  # a file this small pays for no magnitude inputs


def test_the_periodic_extension_is_still_written_on_request_for_older_readers(crop) -> None:
    """``grid_upsampling="cdf97"`` writes the 1.6-1.8 periodic transform; both decode to the same quality class."""
    data = medinr.encode(crop, bpp=2.0, grid_upsampling="cdf97", **FAST)
    minor, coarsening = _frame_flags(data)
    assert minor == _minor_of(WAVELET_MINOR, coarsening)
    config = get_arch("grid-wavelet").config_from_bytes(read_container(data).header.arch_config)
    assert config.wavelet and not config.symmetric
    assert psnr(crop, medinr.decode(data).pixels) > 28


def test_the_plan_reads_magnitudes_only_where_the_budget_pays_for_them() -> None:
    codec, cfg = get_arch("grid-wavelet"), preset_config("fast")
    small = codec.plan(128, 128, cfg, RateTarget("bpp", 0.5), 128 * 128 * 0.5 / 8)
    large = codec.plan(128, 128, cfg, RateTarget("bpp", 2.0), 128 * 128 * 2.0 / 8)
    assert not small.context_magnitudes and large.context_magnitudes
    assert codec.plan(256, 256, cfg, RateTarget("psnr", 40.0), None).context_magnitudes
    assert not codec.plan(64, 64, cfg, RateTarget("psnr", 40.0), None).context_magnitudes


@pytest.mark.parametrize(("magnitudes", "minor"), [(True, MAGNITUDES_MINOR), (False, WAVELET_MINOR)])
def test_a_context_reading_magnitudes_is_format_1_7(shared_data, magnitudes, minor) -> None:
    pixels = medinr.read(shared_data / "cxr" / "train" / "0a7faa2a.jpg").pixels
    square = np.ascontiguousarray(pixels[700:828, 700:828])
    data = medinr.encode(square, bpp=1.0, grid_context_magnitudes=magnitudes, grid_upsampling="cdf97", **FAST)
    container = read_container(data)
    assert _frame_flags(data)[0] == _minor_of(minor, _frame_flags(data)[1])
    assert get_arch("grid-wavelet").config_from_bytes(container.header.arch_config).context_magnitudes == magnitudes
    assert psnr(square, medinr.decode(data).pixels) > 28


def test_a_smooth_frame_interpolates_its_approximation_band_as_format_1_8(shared_data,
                                                                         decode_on_one_and_two_threads) -> None:
    """A 256 px chest X-ray at a low rate: the 8 x 8 approximation band is interpolated (its context network reads
    no parent), the file is stamped 1.8 and decodes on one and two threads alike; the same payload with the flag
    cleared reads as a 1.7 one (its minor is the payload's, not the config's)."""
    pixels = medinr.read(shared_data / "cxr" / "train" / "0a7faa2a.jpg").pixels
    square = np.ascontiguousarray(pixels[600:1112:2, 600:1112:2])
    data = medinr.encode(square, bpp=0.1, grid_upsampling="cdf97", **FAST)
    minor, coarsening = _frame_flags(data)
    assert coarsening & INTERPOLATED and minor == INTERPOLATED_MINOR
    one, two = decode_on_one_and_two_threads(data)
    np.testing.assert_array_equal(one, two)
    assert psnr(square, one) > 25
    container = read_container(data)
    codec = get_arch("grid-wavelet")
    config = codec.config_from_bytes(container.header.arch_config)
    payload = bytearray(container.payloads(Tag.FRAME)[0])
    payload[_coarsening_at(bytes(payload), len(load_init("random", "grid", config).params))] &= ~INTERPOLATED
    assert codec.content_minor(config, [bytes(payload)]) == (MAGNITUDES_MINOR if config.context_magnitudes
                                                             else WAVELET_MINOR)


def test_psnr_target_is_reached_and_no_target_decodes(crop) -> None:
    # the target needs a real fit: two steps of a random init move the synthesis' output layer off zero, and λ
    # is steered to the target only after the first steps
    reached = medinr.decode(medinr.encode(crop, psnr=34.0, **{**FAST, "grid_steps": 300})).pixels
    assert psnr(crop, reached) >= 34.0
    decoded = medinr.decode(medinr.encode(crop, **FAST)).pixels
    assert decoded.shape == crop.shape and psnr(crop, decoded) > 25.0


def test_twelve_bit_round_trip(crop) -> None:
    twelve = (crop.astype(np.uint16) * 16 + np.arange(crop.shape[1], dtype=np.uint16) % 16).astype(np.uint16)
    decoded = medinr.decode(medinr.encode(twelve, bpp=2.0, modality="cxr", **FAST)).pixels
    assert decoded.dtype == np.uint16 and psnr(twelve, decoded) > 28


def test_start_point_meets_the_rate_and_codes_the_frame(crop) -> None:
    """Before any training, the dead-zone coefficients at the chosen step reconstruct the frame at a sensible
    error, and their entropy is the budget's (less the context model's expected saving)."""
    config = GridConfig(levels=3, hidden=4, upsampling="cdf97")
    fit = _FrameFit(crop, Normalisation.of(crop), config, load_init("random", "grid", config),
                    preset_config("fast", arch="grid-wavelet").grid)
    fit.start(RateTarget("bpp", 2.0), 2.0 * crop.size)
    assert [tuple(z.shape) for z in fit.latents] == config.level_shapes(*crop.shape)
    assert fit.start_bpp == pytest.approx(2.0, rel=0.15)
    with torch.no_grad():
        rec = fit.model.synthesize([torch.round(z) for z in fit.latents], crop.shape)
    assert float((rec - fit.target).pow(2).mean()) < 0.05 * float(fit.target.var())


def _started_fit(crop: np.ndarray, bpp: float) -> _FrameFit:
    config = GridConfig(levels=3, hidden=4, upsampling="cdf97", context_magnitudes=True)
    fit = _FrameFit(crop, Normalisation.of(crop), config, load_init("random", "grid", config),
                    preset_config("fast", arch="grid-wavelet").grid)
    fit.start(RateTarget("bpp", bpp), bpp * crop.size)
    return fit


def test_low_rate_start_takes_lambda_from_the_step(crop) -> None:
    """At a low rate the dead zone zeroes most subbands and the start's error falls under q²/12; λ then follows the
    step (as a quality target's does), not that error."""
    for bpp, share in ((0.2, 1.0), (0.05, 0.6)):
        fit = _started_fit(crop, bpp)
        q = float(fit.model.gain[0])
        assert fit.lam == pytest.approx(share * 2 * np.log(2) * q * q / 12, rel=1e-6)


def test_step_share_falls_log_linearly_to_its_low_rate_value() -> None:
    """Full rule from 0.2 bpp up and for other targets, the share at 0.08 bpp and below, log-linear between."""
    from medinr.archs.grid import step_share

    assert step_share(RateTarget("bpp", 0.5)) == step_share(RateTarget("psnr", 40.0)) == 1.0
    assert step_share(RateTarget("bpp", 0.02)) == step_share(RateTarget("bpp", 0.08)) == pytest.approx(0.6)
    assert step_share(RateTarget("bpp", (0.08 * 0.2) ** 0.5)) == pytest.approx(0.6**0.5)


def test_entropy_model_refit_lowers_the_rounded_latents_rate_and_nothing_else(crop) -> None:
    """The refit trains only the context network and level biases, on the rounded latents."""
    fit = _started_fit(crop, 1.0)
    rounded = [torch.round(z.detach()) for z in fit.latents]
    latents = [z.detach().clone() for z in fit.latents]
    context = {id(p) for p in fit.model.entropy_parameters()}
    others = [(p, p.detach().clone()) for p in fit.model.parameters() if id(p) not in context]
    with torch.no_grad():
        before = float(fit.model.rate_bits(rounded))
    fit.refit_context()
    with torch.no_grad():
        after = float(fit.model.rate_bits(rounded))
    assert after < 0.98 * before
    assert all(torch.equal(z, z0) for z, z0 in zip(fit.latents, latents))
    assert all(torch.equal(p, p0) for p, p0 in others)


def test_high_rate_start_keeps_every_subband_within_the_latent_range(crop) -> None:
    """At 8 bpp one step for all subbands would put the approximation (2x larger a level) past MAX_ABS_LATENT;
    its step is raised instead, and the start still codes the frame almost exactly."""
    config = GridConfig(levels=2, hidden=4, upsampling="cdf97")
    fit = _FrameFit(crop, Normalisation.of(crop), config, load_init("random", "grid", config),
                    preset_config("fast", arch="grid-wavelet").grid)
    fit.start(RateTarget("bpp", 8.0), 8.0 * crop.size)
    latents = fit.integer_latents()
    assert max(int(np.abs(z).max()) for z in latents) <= LATENT_HEADROOM
    assert float(fit.model.gain[-1]) > float(fit.model.gain[0])  # the approximation's step was raised
    with torch.no_grad():
        rec = fit.model.synthesize([torch.from_numpy(z.astype(np.float32)) for z in latents], crop.shape)
    assert float((rec - fit.target).pow(2).mean()) < 1e-3 * float(fit.target.var())


def test_decode_identical_on_one_and_two_threads(encoded, decode_on_one_and_two_threads) -> None:
    one, two = decode_on_one_and_two_threads(encoded)
    np.testing.assert_array_equal(one, two)


def test_corrupted_or_mislabelled_payload_is_a_clear_error(encoded) -> None:
    container = read_container(encoded)
    header = container.header
    codec = get_arch("grid-wavelet")
    config = codec.config_from_bytes(header.arch_config)
    init = load_init(header.init_name, "grid", config)
    norm = Normalisation(header.norm_mean, header.norm_std, header.value_min, header.value_max)
    payload = container.payloads(Tag.FRAME)[0]
    for bad in (payload[:3], payload[:len(init.params) + 4], payload[:-1]):
        with pytest.raises(BitstreamError):
            codec.decode_frame(bad, config, init, norm, np.dtype(header.dtype), (header.height, header.width))
    with pytest.raises(ValueError, match="needs wavelet latents"):
        codec.config_from_bytes(GridConfig(levels=3).to_bytes())


def test_cli_encodes_and_decodes_with_arch_grid_wavelet(crop, tmp_path) -> None:
    source = tmp_path / "crop.npy"
    np.save(source, crop[:40, :40])
    minr, out = tmp_path / "crop.minr", tmp_path / "decoded.npy"
    runner = CliRunner()
    result = runner.invoke(main, ["encode", str(source), "-o", str(minr), "--arch", "grid-wavelet", "--preset",
                                  "fast", "--steps", "2", "--bpp", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    info = runner.invoke(main, ["info", str(minr), "--json"])
    assert info.exit_code == 0 and '"arch": "grid-wavelet"' in info.output and '"cdf97-symmetric"' in info.output
    assert runner.invoke(main, ["decode", str(minr), "-o", str(out), "--quiet"]).exit_code == 0
    assert np.load(out).shape == (40, 40)


def test_the_shipped_wavelet_inits_are_the_default_of_their_modality_families() -> None:
    """``grid-wavelet-cxr`` for X-rays, ``grid-wavelet-mri`` for MR and cine (one family), random elsewhere and for
    frames under 256 px (fewer wavelet levels than the inits were learned for)."""
    codec, cfg = get_arch("grid-wavelet"), preset_config("fast")
    for modality, name in [("cxr", "grid-wavelet-cxr"), ("mri", "grid-wavelet-mri"), ("cine", "grid-wavelet-mri"),
                           ("generic", "random")]:
        config = codec.plan(512, 512, cfg, RateTarget("bpp", 0.05), 512 * 512 * 0.05 / 8, modality)
        assert codec.default_init(config, modality).name == name
    assert config.context_magnitudes is False  # a random init's magnitudes do not pay at this budget
    small = codec.plan(128, 128, cfg, RateTarget("bpp", 1.0), 128 * 128 / 8, "cxr")
    assert codec.default_init(small, "cxr").name == "random"
    # the inits were learned with the periodic transform; the edge extension changes no tensor, so they serve both
    periodic_cfg = replace(cfg, grid=replace(cfg.grid, upsampling="cdf97"))
    for options in (cfg, periodic_cfg):
        config = codec.plan(512, 512, options, RateTarget("bpp", 0.05), 512 * 512 * 0.05 / 8, "cxr")
        assert config.symmetric == (options is cfg) and codec.default_init(config, "cxr").name == "grid-wavelet-cxr"


def test_a_learned_init_serves_bpp_targets_up_to_twice_its_learned_range() -> None:
    """``grid-wavelet-cxr`` was learned at 0.05-0.6 bpp: targets up to 1.2 bpp start from it, higher ones (where it
    measured worse than the random init) and none from the random one; PSNR targets keep it."""
    codec, cfg = get_arch("grid-wavelet"), preset_config("fast")
    config = codec.plan(512, 512, cfg, RateTarget("bpp", 0.5), 512 * 512 * 0.5 / 8, "cxr")
    assert codec.default_init(config, "cxr", 1.2).name == "grid-wavelet-cxr"
    assert codec.default_init(config, "cxr", 1.3).name == "random"
    assert codec.default_init(config, "cxr").name == "grid-wavelet-cxr"
    high = codec.plan(512, 512, cfg, RateTarget("bpp", 0.01), 512 * 512 * 0.01 / 8, "generic")
    assert codec.plan(512, 512, cfg, RateTarget("bpp", 0.01), 512 * 512 * 0.01 / 8, "cxr") != high  # learned: kept
    assert codec.plan(512, 512, cfg, RateTarget("bpp", 4.0), 512 * 512 * 4.0 / 8, "cxr") == \
        codec.plan(512, 512, cfg, RateTarget("bpp", 4.0), 512 * 512 * 4.0 / 8, "generic")
