"""The grid architecture: codec round trips, exact context coding, thread-independent decoding, bad payloads."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import medinr
from medinr.archs import get_arch
from medinr.archs import grid as grid_arch
from medinr.archs.grid import (
    LR_NET_KNEE_BPP,
    MIN_STEP_SHARE,
    MIN_STEPS,
    NET_RESCUE_STEPS,
    STEER_RANGE,
    _FrameFit,
    noisy_steps,
    steps_for,
    training_bands,
)
from medinr.bitstream import Tag, read_container
from medinr.cli import main
from medinr.config import preset_config
from medinr.entropy import context
from medinr.entropy.context import decode_levels, encode_levels
from medinr.errors import BitstreamError
from medinr.meta.inits import load_init
from medinr.metrics import psnr
from medinr.models.grid import GridConfig, GridModel, upsample
from medinr.preprocess import Normalisation
from medinr.ratecontrol import RateTarget

FAST = {"arch": "grid", "preset": "fast", "grid_steps": 2, "grid_net_step_search": (0,)}


@pytest.fixture(scope="module")
def crop(shared_data) -> np.ndarray:
    pixels = medinr.read(shared_data / "cxr" / "train" / "0a7faa2a.jpg").pixels
    return np.ascontiguousarray(pixels[800:848, 800:856])


@pytest.fixture(scope="module")
def encoded(crop) -> bytes:
    return medinr.encode(crop, bpp=3.0, **FAST)


def test_round_trip_shape_dtype_quality(crop, encoded):
    decoded = medinr.decode(encoded).pixels
    assert decoded.shape == crop.shape and decoded.dtype == crop.dtype
    assert psnr(crop, decoded) > 25


def test_psnr_target_and_no_target(crop):
    for kwargs in ({"psnr": 30.0}, {}):
        decoded = medinr.decode(medinr.encode(crop, **kwargs, **FAST)).pixels
        assert decoded.shape == crop.shape and psnr(crop, decoded) > 20


def test_context_coding_round_trips_exactly():
    config = GridConfig(levels=3)
    model = GridModel(config)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # a context network that actually varies means and scales
        model.context[2].copy_(torch.randn(model.context[2].shape, generator=gen) * 0.3)
        model.level_bias[:, 1] = torch.tensor([1.0, 2.0, 3.0])
    rng = np.random.default_rng(0)
    levels = [np.rint(rng.laplace(0, 2.0 ** (s + 1), shape)).astype(np.int64)
              for s, shape in enumerate(config.level_shapes(37, 29))]
    data = encode_levels(levels, model.exact_predictor())
    decoded = decode_levels(data, [z.shape for z in levels], model.exact_predictor())
    for a, b in zip(levels, decoded):
        np.testing.assert_array_equal(a, b)


def test_large_passes_are_table_coded_at_the_per_symbol_coders_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 160 x 200 level's passes (16,000 symbols) are table-coded: exact round trip, at most 1 % over the
    per-symbol Laplace coder's size (here 1.3 % under it), and not decodable as a 1.2 stream (the flag matters);
    the smaller levels stay per-symbol."""
    config = GridConfig(levels=3)
    model = GridModel(config)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        model.context[2].copy_(torch.randn(model.context[2].shape, generator=gen) * 0.3)
        model.level_bias[:, 1] = torch.tensor([1.0, 2.0, 3.0])
    rng = np.random.default_rng(1)
    levels = [np.rint(rng.laplace(0, 2.0 ** s, shape)).astype(np.int64)
              for s, shape in enumerate(config.level_shapes(160, 200))]
    shapes = [z.shape for z in levels]
    data = encode_levels(levels, model.exact_predictor())
    for a, b in zip(levels, decode_levels(data, shapes, model.exact_predictor())):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(Exception):  # noqa: B017 (a garbled stream may fail in any way, or decode other values)
        legacy_reading = decode_levels(data, shapes, model.exact_predictor(), tables=False)
        assert all(np.array_equal(a, b) for a, b in zip(levels, legacy_reading))
    monkeypatch.setattr(context, "TABLE_MIN_SYMBOLS", 10**9)
    per_symbol = encode_levels(levels, model.exact_predictor())
    assert per_symbol != data and len(data) <= 1.01 * len(per_symbol)
    for a, b in zip(levels, decode_levels(per_symbol, shapes, model.exact_predictor(), tables=False)):
        np.testing.assert_array_equal(a, b)


def test_constant_level_round_trips():
    model = GridModel(GridConfig(levels=2))
    levels = [np.full((6, 6), 3, dtype=np.int64), np.zeros((3, 3), dtype=np.int64)]
    decoded = decode_levels(encode_levels(levels, model.exact_predictor()), [(6, 6), (3, 3)], model.exact_predictor())
    np.testing.assert_array_equal(decoded[0], levels[0])


def test_decode_identical_on_one_and_two_threads(encoded, decode_on_one_and_two_threads):
    one, two = decode_on_one_and_two_threads(encoded)
    np.testing.assert_array_equal(one, two)


def test_corrupted_payload_raises_bitstream_error(encoded):
    container = read_container(encoded)
    header = container.header
    payload = container.payloads(Tag.FRAME)[0]
    codec = get_arch("grid")
    config = codec.config_from_bytes(header.arch_config)
    init = load_init(header.init_name, "grid", config)
    norm = Normalisation(header.norm_mean, header.norm_std, header.value_min, header.value_max)
    for bad in (payload[:3], payload[:len(init.params) + 4], payload[:-1]):
        with pytest.raises(BitstreamError):
            codec.decode_frame(bad, config, init, norm, np.dtype(header.dtype), (header.height, header.width))
    flipped = bytearray(encoded)
    flipped[len(flipped) // 2] ^= 0x40
    with pytest.raises(BitstreamError):
        medinr.decode(bytes(flipped))


def test_config_bytes_round_trip_and_rejects_garbage():
    config = GridConfig(levels=5, hidden=12, layers=1, refine=0, context_hidden=4, upsampling="bilinear")
    assert GridConfig.from_bytes(config.to_bytes()) == config
    assert config.to_bytes() == bytes([5, 12, 1, 0, 4, 0, 2])  # the 1.3 format's bytes
    with pytest.raises(ValueError):
        GridConfig.from_bytes(bytes([0, 16, 2, 4, 8, 0, 2]))
    with pytest.raises(ValueError):  # static grids belong to (t, y, x) grids only
        GridConfig.from_bytes(bytes([5, 12, 1, 0, 4, 0, 2 | 1 << 4]))


def test_cli_encodes_and_decodes_with_arch_grid(crop, tmp_path):
    source = tmp_path / "crop.npy"
    np.save(source, crop[:32, :32])
    minr, out = tmp_path / "crop.minr", tmp_path / "decoded.npy"
    runner = CliRunner()
    encoded = runner.invoke(main, ["encode", str(source), "-o", str(minr), "--arch", "grid", "--preset", "fast",
                                   "--bpp", "4", "--quiet"])
    assert encoded.exit_code == 0, encoded.output
    info = runner.invoke(main, ["info", str(minr), "--json"])
    assert info.exit_code == 0 and '"arch": "grid"' in info.output
    assert runner.invoke(main, ["decode", str(minr), "-o", str(out), "--quiet"]).exit_code == 0
    assert np.load(out).shape == (32, 32)


def _small_fit(frame: np.ndarray, **options) -> _FrameFit:
    """A 4-level, 8-wide grid fit of ``frame`` from the random init, with ``fast``'s options and ``options``."""
    config = GridConfig(levels=4, hidden=8, upsampling="bicubic")
    return _FrameFit(frame, Normalisation.of(frame), config, load_init("random", "grid", config),
                     preset_config("fast", arch="grid", **options).grid)


def _spy_learning_rates(monkeypatch: pytest.MonkeyPatch) -> list[list[float]]:
    """The learning rate of each parameter group of every optimiser that training creates from now on."""
    learning_rates: list[list[float]] = []

    class SpyAdam(grid_arch._Adam):
        def __init__(self, groups, *args, **kwargs) -> None:
            learning_rates.append([lr for _, lr in groups])
            super().__init__(groups, *args, **kwargs)

    monkeypatch.setattr(grid_arch, "_Adam", SpyAdam)
    return learning_rates


def test_lambda_steering_stays_within_its_range_of_the_start(crop) -> None:
    """An unreachable target pushes λ one way every step; it stops at STEER_RANGE times the start's."""
    fit = _small_fit(crop)
    target = RateTarget("bpp", 0.01)
    fit.start(target, 8.0)
    start = fit.lam
    for _ in range(500):
        fit._steer(target, 8.0, 1.0, 5.0, 0.05)  # 5 bpp against an 8-bit budget: always "too many bits"
    assert fit.lam == pytest.approx(start * STEER_RANGE)
    for _ in range(1000):
        fit._steer(target, 8.0, 1.0, 1e-6, 0.05)  # always "too few"
    assert fit.lam == pytest.approx(start / STEER_RANGE)


def test_networks_learn_slower_above_the_rate_knee(crop, monkeypatch) -> None:
    """The start pyramid's expected latent rate meets a bpp target's latent budget; the networks train at lr_net up
    to LR_NET_KNEE_BPP and at lr_net * knee / rate above it (the latents' learning rate never changes)."""
    learning_rates = _spy_learning_rates(monkeypatch)
    rates = []
    for bpp in (0.5, 3.0):
        fit = _small_fit(crop, grid_steps=2)
        target = RateTarget("bpp", bpp)
        fit.start(target, crop.size * bpp)
        fit.train(target, crop.size * bpp, None)
        rates.append(fit.start_bpp)
    assert rates == [pytest.approx(0.5, rel=0.1), pytest.approx(3.0, rel=0.1)]
    opts = fit.opts
    assert learning_rates[0] == [opts.lr_latent, pytest.approx(opts.lr_net)]
    assert learning_rates[1] == [opts.lr_latent, pytest.approx(opts.lr_net * LR_NET_KNEE_BPP / rates[1])]


def test_the_context_network_reads_rounded_latents_in_the_noise_phase_too(crop, monkeypatch) -> None:
    """Training evaluates the context (the Laplace parameters) from the rounded latents, as the decoder does, while
    the rate is measured on the noisy ones: a context network that learned on noisy neighbours extrapolated on the
    rounded ones (a 512 px cxr/train proxy at 0.3 bpp, ``balanced``, ended at 0.17 bpp and 30.8 dB)."""
    inputs = []
    original = GridModel.rate_contexts
    monkeypatch.setattr(GridModel, "rate_contexts", lambda self, latents, rows=None:
                        inputs.append([z.detach().clone() for z in latents]) or original(self, latents, rows))
    fit = _small_fit(crop, grid_steps=20)
    target = RateTarget("bpp", 1.0)
    fit.start(target, crop.size * 1.0)
    fit.train(target, crop.size * 1.0, None)
    assert len(inputs) >= steps_for(20, crop.size) > noisy_steps(steps_for(20, crop.size), fit.opts) > 0
    assert all(torch.equal(z, torch.round(z)) for latents in inputs for z in latents)


@pytest.mark.parametrize("broken", [False, True])
def test_a_network_its_quantisation_breaks_gets_finer_steps(crop, broken, monkeypatch) -> None:
    """The payload search tries the preset's network step factors; only where each leaves the decoded error far over
    the unquantised networks' does it add finer ones, an octave at a time."""
    factors = []
    original = _FrameFit.network
    monkeypatch.setattr(_FrameFit, "network", lambda self, log2_factor, curvature:
                        factors.append(log2_factor) or original(self, log2_factor, curvature))
    fit = _small_fit(crop, grid_steps=20)
    target = RateTarget("bpp", 1.0)
    fit.start(target, crop.size * 1.0)
    fit.train(target, crop.size * 1.0, None)
    if broken:
        monkeypatch.setattr(_FrameFit, "_mse", lambda self, data: 1e6)
    fit.choose_payload(target, crop.size / 8)
    base = fit._network_log2_step()
    expected = [base + k / 8 for k in fit.opts.net_step_search]
    if broken:
        expected += [base + (min(fit.opts.net_step_search) - 8 * (i + 1)) / 8 for i in range(NET_RESCUE_STEPS)]
    assert factors == pytest.approx(expected)


def test_straight_through_phase_is_capped() -> None:
    opts = preset_config("balanced", arch="grid", grid_straight_through_steps=60).grid
    assert [noisy_steps(n, opts) for n in (50, 200, 600)] == [35, 140, 540]


def test_step_count_follows_the_pixels_down_to_a_share_of_the_preset() -> None:
    assert steps_for(600, 256 * 256) == 600 and steps_for(600, 128 * 128) == 900  # the reference; smaller: more
    assert steps_for(600, 200 * 200) == 900 and steps_for(200, 64 * 64) == 300  # small frames: at most 1.5x
    assert steps_for(600, 512 * 512) == 300 and steps_for(1200, 1024 * 1024) == 300  # larger: by the side's ratio
    assert steps_for(600, 700 * 700) == round(600 * 256 / 700)
    for pixels in (4000 * 4000, 8000 * 8000):  # very large frames: never below the share
        assert steps_for(1200, pixels) == round(MIN_STEP_SHARE * 1200) == 150
    assert steps_for(300, 1024 * 1024) == steps_for(300, 2000 * 2000) == MIN_STEPS == 150  # nor below MIN_STEPS
    assert steps_for(4, 2000 * 2000) == 4  # a tiny step count is kept


@pytest.mark.parametrize("config", [GridConfig(levels=3, hidden=4, upsampling="cdf97", context_magnitudes=True),
                                    GridConfig(levels=4, hidden=8, upsampling="bicubic")])
def test_a_band_counts_the_rate_of_its_share_of_every_level(config) -> None:
    """A frame trained in bands: the bands' latent rows partition every level, and each band's rate (under contexts
    evaluated on those rows alone) is that of the same rows in the whole frame's, so a cycle over the bands counts
    every latent once."""
    frame = np.random.default_rng(5).integers(0, 256, (1100, 40)).astype(np.uint8)
    fit = _FrameFit(frame, Normalisation.of(frame), config, load_init("random", "grid", config),
                    preset_config("fast", arch="grid").grid)
    rng = np.random.default_rng(6)
    fit.latents = [torch.from_numpy(rng.integers(-6, 7, shape).astype(np.float32))
                   for shape in config.level_shapes(*frame.shape)]
    with torch.no_grad():
        for p in fit.model.entropy_parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.5, p.shape)))
        whole = fit.model.rate_contexts(fit.latents)
        bands = training_bands(frame.shape[0], fit.opts.band_rows)
        assert bands is not None and len(bands) == 2
        rows = [fit._latent_rows((*band, 0, frame.shape[1])) for band in bands]
        for level, z in enumerate(fit.latents):
            assert rows[0][level][0] == 0 and rows[0][level][1] == rows[1][level][0]
            assert rows[1][level][1] == z.shape[0]
        for band_rows in rows:
            local = fit.model.rate_contexts(fit.latents, band_rows)
            for out, full, (top, bottom) in zip(local, whole, band_rows):
                torch.testing.assert_close(out, full[:, top:bottom])
        total = sum(float(fit.model.rate_bits(fit.latents, rows=band_rows)) for band_rows in rows)
        assert total == pytest.approx(float(fit.model.rate_bits(fit.latents)), rel=1e-5)
    assert fit._latent_rows(None) is None


def test_training_bands_cover_the_rows_in_bands_of_about_the_given_height() -> None:
    assert training_bands(2000, 512) == [(0, 500), (500, 1000), (1000, 1500), (1500, 2000)]
    assert training_bands(1024, 512) == [(0, 512), (512, 1024)] and training_bands(1001, 512) == [(0, 500), (500, 1001)]
    assert training_bands(700, 512) is None and training_bands(512, 512) is None  # under 1.5 bands: whole frames
    assert training_bands(2000, 0) is None  # off, as in the max preset (quality first)
    assert preset_config("max", arch="grid").grid.band_rows == 0 < preset_config("balanced", arch="grid").grid.band_rows


def test_banded_training_visits_every_band_once_per_cycle(crop, monkeypatch) -> None:
    """Each step synthesises one whole-width band, in a shuffled order that covers all of them every cycle; the
    latents learn faster by the square root of the band count."""
    windows, learning_rates = [], _spy_learning_rates(monkeypatch)
    original = GridModel.synthesize
    monkeypatch.setattr(GridModel, "synthesize", lambda self, latents, size, frames=None, window=None:
                        windows.append(window) or original(self, latents, size, frames, window))
    fit = _small_fit(crop, grid_steps=6, grid_band_rows=16)  # 48 rows: 3 bands
    target = RateTarget("bpp", 1.0)
    fit.start(target, crop.size * 1.0)
    fit.train(target, crop.size * 1.0, None)
    bands = [w for w in windows if w is not None]
    assert len(bands) == steps_for(6, crop.size) and {w[2:] for w in bands} == {(0, crop.shape[1])}
    assert sorted(bands[:3]) == sorted(bands[3:6]) == [(0, 16, 0, 56), (16, 32, 0, 56), (32, 48, 0, 56)]
    assert bands[:3] != bands[3:6] or bands[3:6] != bands[6:9]  # shuffled per cycle
    assert learning_rates[0][0] == pytest.approx(fit.opts.lr_latent * 3**0.5)  # a latent sees the error every 3rd step


@pytest.mark.parametrize(("mode", "context_every", "each_step"), [("bpp", 1, False), ("psnr", 1, False),
                                                                  ("bpp", 2, True)])
def test_banded_training_steers_from_whole_frame_measurements(crop, mode, context_every, each_step,
                                                               monkeypatch) -> None:
    """A band's error and rate are not the frame's: with bands, a target is steered only from the whole-frame
    measurement every STEER_EVERY steps; a bpp target whose rate term is the whole frame's (contexts reused across
    steps: every band's rate is counted) also every rounded step."""
    gains = []
    original = _FrameFit._steer
    monkeypatch.setattr(_FrameFit, "_steer", lambda self, target, bits, mse, bpp, gain:
                        gains.append(gain) or original(self, target, bits, mse, bpp, gain))
    fit = _small_fit(crop, grid_steps=40, grid_band_rows=16, grid_context_every=context_every)
    target, bits = (RateTarget("bpp", 1.0), crop.size * 1.0) if mode == "bpp" else (RateTarget("psnr", 40.0), None)
    fit.start(target, bits)
    fit.train(target, bits, None)
    every = grid_arch.STEER_GAIN * grid_arch.STEER_EVERY
    assert every in gains and (grid_arch.STEER_GAIN in gains) == each_step


def test_calibrated_latent_budget_leaves_room_for_the_coded_network(crop) -> None:
    """The latents' training-rate budget is the frame budget less the real network payload, scaled by how the
    training rate compares with the exact coder's: linear in the budget, with a positive overhead."""
    fit = _small_fit(crop, grid_steps=10)
    target = RateTarget("bpp", 2.0)
    budget = crop.size * 2.0 / 8  # bytes
    fit.start(target, 8 * budget)
    fit.train(target, 8 * budget, None)
    curvature = fit.curvature(fit._network_log2_step())
    low, high = fit.calibrate(budget, curvature), fit.calibrate(budget + 100, curvature)
    ratio = (high - low) / 800  # training-rate bits per real latent bit
    assert 0.7 < ratio < 1.3
    overhead = budget - low / (8 * ratio)  # the coded network, its step bytes and the coarsening byte
    head, _ = fit.network(fit._network_log2_step(), curvature)
    assert overhead == pytest.approx(len(head) + 1, abs=0.5)


def test_units_that_are_off_everywhere_keep_a_step_that_leaves_them_off(crop, monkeypatch) -> None:
    """Hidden units off at every pixel look flat to a small probe; probed again at their implied step, they get one
    that keeps them off in the decoder's network (a single probe's step switches them back on)."""
    fit = _small_fit(crop, grid_steps=10)
    target = RateTarget("bpp", 2.0)
    fit.start(target, crop.size * 2.0)
    fit.train(target, crop.size * 2.0, None)
    with torch.no_grad():
        fit.model.biases[1].fill_(-3.0)  # every second-layer unit off, with an output weight that would show it
        fit.model.weights[2].fill_(0.2)
    latents = [torch.from_numpy(z.astype(np.float32)) for z in fit.integer_latents()]

    def units_on_in_the_decoder() -> int:
        log2_factor = fit._network_log2_step()
        _, model = fit.network(log2_factor, fit.curvature(log2_factor))
        with torch.no_grad():
            f = upsample(latents, crop.shape, model.config.upsampling) * model.gain[:, None, None]
            first = torch.relu(model.weights[0] @ f.reshape(len(latents), -1) + model.biases[0][:, None])
            return int(((model.weights[1] @ first + model.biases[1][:, None]) > 0).sum())

    assert units_on_in_the_decoder() == 0
    monkeypatch.setattr(grid_arch, "PROBE_ROUNDS", 0)
    assert units_on_in_the_decoder() > 0


def test_coarsened_latents_are_requantised_in_closed_loop(crop) -> None:
    """Latents requantised 4x coarser: the finest level takes up the error the coarser levels' requantisation left,
    so the decoder's reconstruction errs about as the finest step alone would, less than with every level divided
    alone (open loop); without coarsening the latents are plainly rounded."""
    fit = _small_fit(crop)
    fit.start(RateTarget("bpp", 3.0), crop.size * 3.0)
    coarsen = 2 * grid_arch.COARSEN_STEPS
    scale = grid_arch.latent_scale(coarsen)
    decoder = grid_arch._model_from(fit.config, list(fit.model.parameters()))
    with torch.no_grad():
        decoder.gain.mul_(scale)

    def error(levels: list[np.ndarray]) -> float:
        with torch.no_grad():
            rec = decoder.synthesize([torch.from_numpy(z.astype(np.float32)) for z in levels], crop.shape)
        return float((rec - fit.target).pow(2).mean())

    open_loop = [torch.round(z.detach() / scale).numpy() for z in fit.latents]
    closed, plain = error(fit.integer_latents(coarsen=coarsen)), error(open_loop)
    finest_step_error = float(fit.model.gain[0] * scale) ** 2 / 12  # uniform rounding error of the finest level
    assert closed < 1.1 * finest_step_error < plain / 1.4
    assert fit.integer_latents()[0].tolist() == torch.round(fit.latents[0].detach()).long().tolist()


def test_level_steps_train_only_with_a_gain_learning_rate(crop) -> None:
    """``gain_lr`` 0 keeps the start's level steps to the bit; a positive one moves them (in the log domain)."""
    gains = []
    for lr in (0.0, 0.02):
        fit = _small_fit(crop, grid_steps=10, grid_gain_lr=lr)
        fit.start(RateTarget("bpp", 2.0), crop.size * 2.0)
        start = fit.model.gain.detach().clone()
        fit.train(RateTarget("bpp", 2.0), crop.size * 2.0, None)
        gains.append((start, fit.model.gain.detach()))
    assert torch.equal(*gains[0])
    assert not torch.allclose(*gains[1]) and bool((gains[1][1] > 0).all())


def test_a_file_slightly_under_a_bpp_budget_keeps_plain_rounding(crop) -> None:
    """Within UNDERSHOOT_KEPT under the budget, the latents are not rounded up to fill it (that flips latents that
    training left at a rounding boundary); further under, they are."""
    fit = _small_fit(crop, grid_steps=10)
    target = RateTarget("bpp", 2.0)
    fit.start(target, crop.size * 2.0)
    fit.train(target, crop.size * 2.0, None)
    plain = len(fit.choose_payload(RateTarget("quality"), None))  # dead zone 0, the training's rounding
    assert len(fit.choose_payload(target, plain / 0.97)) == plain  # the same network: the probes restore it exactly
    assert len(fit.choose_payload(target, plain / 0.8)) > plain


def test_soft_round_goes_from_the_identity_to_rounding_and_is_continuous() -> None:
    from medinr.archs.grid import soft_round

    z = torch.linspace(-3.0, 3.0, 6001, dtype=torch.float64)
    torch.testing.assert_close(soft_round(z, 100.0), z, atol=1e-4, rtol=0)
    near = z[(z - z.round()).abs() < 0.45]
    torch.testing.assert_close(soft_round(near, 0.01), near.round(), atol=1e-3, rtol=0)
    values = soft_round(z, 0.3)
    assert bool((values.diff() >= 0).all()) and float(values.diff().max()) < 0.01  # monotone, no jump at k + 1/2
    torch.testing.assert_close(soft_round(torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64), 0.3),
                               torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64))  # integers are fixed points


@pytest.mark.parametrize(("side", "min_steps", "fine"), [(48, 300, True), (260, 300, False), (260, 4, True)])
def test_soft_rounding_spares_the_full_resolution_level_of_large_frames_in_short_fits(side: int, min_steps: int,
                                                                                      fine: bool, monkeypatch) -> None:
    """Frames over 256x256 px soft-round their finest level only when they train soft_round_fine_min_steps steps."""
    shapes = []
    original = grid_arch.soft_round
    monkeypatch.setattr(grid_arch, "soft_round", lambda z, t: shapes.append(tuple(z.shape)) or original(z, t))
    pixels = (np.add.outer(np.arange(side), np.arange(side)) % 200).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        medinr.encode(pixels, bpp=1.0, preset="fast", arch="grid", modality="cxr", grid_steps=4, grid_levels=3,
                      grid_soft_round_fine_min_steps=min_steps)
    assert shapes and ((side, side) in shapes) == fine  # coarser levels always soft-rounded


def test_networks_stay_at_the_init_under_the_smallest_network_budget(shared_data) -> None:
    """A frame budget under ``net_min_bytes`` and ``net_min_bpp`` trains the latents alone: every network tensor
    keeps the init's values except what the start sets (the level steps and the per-level entropy biases), and the
    context network is not refitted; over either, the networks train."""
    frame = np.ascontiguousarray(medinr.read(shared_data / "cxr" / "train" / "0a7faa2a.jpg").pixels[600:856, 600:856])
    config = GridConfig(levels=4, hidden=4, upsampling="cdf97-symmetric")
    init = load_init("random", "grid", config)
    moved = []
    for budget, min_bpp in ((1200, 0.16), (1400, 0.16), (1200, 0.1)):  # 1200 bytes: 0.146 bpp
        options = {"grid_steps": 10, "grid_net_min_bytes": 1300, "grid_net_min_bpp": min_bpp}
        fit = _FrameFit(frame, Normalisation.of(frame), config, init,
                        preset_config("fast", arch="grid-wavelet", **options).grid)
        target = RateTarget("bpp", 8 * budget / frame.size)
        fit.start(target, 8.0 * budget)
        fit.train(target, 8.0 * budget, None, budget)
        moved.append({name for (name, p), q in zip(fit.model.named_parameters(), init.params) if not torch.equal(p, q)})
    assert moved[0] == {"gain", "level_bias"}
    assert {"weights.0", "refine.0", "context.0"} <= moved[1] & moved[2]
