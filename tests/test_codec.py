"""End-to-end codec on small real crops: exact shape/dtype/range, rate control, errors, decoder agreement."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import medinr
from medinr.bitstream import Tag, read_container, write_container
from medinr.codec import (
    RateWarning,
    _best_within_budget,
    _fill_budget,
    _uniform_delta_below,
    describe,
    encode_report,
)
from medinr.config import AUTO_ARCH
from medinr.errors import BitstreamError, InitError, InputError, RateControlError
from medinr.metrics import psnr
from medinr.residual import residual_of

QUICK = dict(preset="fast", arch="seed", fit_steps=40, fit_qat_steps=5)


@pytest.fixture(scope="module")
def cxr_crop(shared_data) -> np.ndarray:
    image = medinr.read(shared_data / "cxr" / "test" / "txv_512_00000001_000.png")
    return np.ascontiguousarray(image.pixels[200:248, 200:248])


@pytest.fixture(scope="module")
def mr_stack(shared_data) -> medinr.MedicalImage:
    image = medinr.read(shared_data / "mri" / "test" / "emri_small_head_12bit_10fr.dcm")
    return image.with_pixels(np.ascontiguousarray(image.pixels[3:5, 16:48, 16:48]))


def test_8bit_round_trip_keeps_shape_dtype_and_range(cxr_crop) -> None:
    decoded = medinr.decode(medinr.encode(cxr_crop, **QUICK))
    assert decoded.pixels.shape == cxr_crop.shape and decoded.pixels.dtype == np.uint8
    assert cxr_crop.min() <= decoded.pixels.min() and decoded.pixels.max() <= cxr_crop.max()
    assert psnr(cxr_crop, decoded.pixels) > 18  # a fit, not noise


def test_12bit_dicom_stack_round_trip(mr_stack) -> None:
    decoded = medinr.decode(medinr.encode(mr_stack, **QUICK))
    assert decoded.pixels.shape == mr_stack.pixels.shape and decoded.pixels.dtype == np.uint16
    assert decoded.bits_stored == 12 and decoded.photometric == mr_stack.photometric


def test_signed_cine_crop_round_trip(shared_data) -> None:
    frame = medinr.read(shared_data / "cine" / "train" / "SCD0000101_mid" / "frame00.dcm")
    pixels = np.ascontiguousarray(frame.pixels[100:132, 100:132]) - 300  # exercise negative values
    image = frame.with_pixels(pixels.astype(np.int16))
    decoded = medinr.decode(medinr.encode(image, **QUICK))
    assert decoded.pixels.dtype == np.int16 and decoded.signed
    assert pixels.min() <= decoded.pixels.min() and decoded.pixels.max() <= pixels.max()


def test_float_image_round_trip(shared_data) -> None:
    pixels = np.load(shared_data / "mri" / "test" / "dipy_t1_coronal_slice.npy")[100:140, 100:140]
    decoded = medinr.decode(medinr.encode(np.ascontiguousarray(pixels), **QUICK))
    assert decoded.pixels.dtype == np.float64 and decoded.pixels.shape == pixels.shape


def test_bpp_target_is_met_on_the_real_file(cxr_crop) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RateWarning)
        data = medinr.encode(cxr_crop, bpp=3.0, **QUICK)
    assert abs(8 * len(data) / cxr_crop.size - 3.0) <= 0.05 * 3.0


def test_higher_bpp_gives_better_quality(cxr_crop) -> None:
    low = encode_report(cxr_crop, bpp=1.5, **QUICK).metrics["psnr"]
    high = encode_report(cxr_crop, bpp=6.0, **QUICK).metrics["psnr"]
    assert high > low


def test_psnr_target_is_reached_or_warned(cxr_crop) -> None:
    result = encode_report(cxr_crop, psnr=22.0, **QUICK)
    assert result.metrics["psnr"] >= 22.0 or result.warnings


def test_report_metrics_come_from_the_real_decoder(cxr_crop) -> None:
    result = encode_report(cxr_crop, **QUICK)
    decoded = medinr.decode(result.data)
    assert result.metrics["psnr"] == pytest.approx(psnr(cxr_crop, decoded.pixels))
    assert result.metrics["bpp"] == 8 * len(result.data) / cxr_crop.size


def test_decode_is_identical_on_one_and_two_threads(cxr_crop, decode_on_one_and_two_threads) -> None:
    one, two = decode_on_one_and_two_threads(medinr.encode(cxr_crop, **QUICK))
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("kwargs,error", [(dict(bpp=0), RateControlError), (dict(bpp=-1), RateControlError),
                                          (dict(psnr=500), RateControlError),
                                          (dict(bpp=1, psnr=30), RateControlError),
                                          (dict(bpp=0.01), RateControlError),
                                          (dict(modality="xray"), InputError)])
def test_impossible_targets_are_refused(cxr_crop, kwargs, error) -> None:
    with pytest.raises(error):
        medinr.encode(cxr_crop, **{**QUICK, **kwargs})


@pytest.mark.parametrize("pixels", [np.zeros((0, 5), np.uint8), np.full((8, 8), np.nan),
                                    np.zeros((8, 8, 3), np.uint8)[None], np.zeros((4, 4), np.int64)])
def test_bad_arrays_are_refused(pixels) -> None:
    with pytest.raises(InputError):
        medinr.encode(pixels, **QUICK)


def test_a_stream_made_with_another_init_refuses_to_decode(cxr_crop) -> None:
    container = read_container(medinr.encode(cxr_crop, **QUICK))
    container.header.init_hash = bytes(8)
    forged = write_container(container.header, container.sections)
    with pytest.raises(InitError, match="differs"):
        medinr.decode(forged)


def test_missing_frame_is_a_bitstream_error(mr_stack) -> None:
    container = read_container(medinr.encode(mr_stack, **QUICK))
    forged = write_container(container.header, container.sections[:1])  # 2-frame header, 1 frame
    with pytest.raises(BitstreamError, match="frame sections"):
        medinr.decode(forged)


def test_corrupted_payload_with_valid_crc_is_a_bitstream_error(cxr_crop) -> None:
    container = read_container(medinr.encode(cxr_crop, **QUICK))
    forged = write_container(container.header, [(Tag.FRAME, b"\x01\x02")])
    with pytest.raises(BitstreamError):
        medinr.decode(forged)


def test_describe_reports_file_size_and_architecture(cxr_crop) -> None:
    data = medinr.encode(cxr_crop, **QUICK)
    info = describe(data)
    assert info["file_bytes"] == len(data) and info["arch"] == "seed" and info["parameters"] > 0
    assert info["bpp"] == pytest.approx(8 * len(data) / cxr_crop.size)


def test_dicom_metadata_travels_when_kept(shared_data) -> None:
    image = medinr.read(shared_data / "mri" / "test" / "emri_small_head_12bit_10fr.dcm")
    image = image.with_pixels(np.ascontiguousarray(image.pixels[:1, :32, :32]))
    decoded = medinr.decode(medinr.encode(image, keep_metadata=True, **QUICK))
    assert decoded.metadata["dicom"].PatientID == image.metadata["dicom"].PatientID


def test_auto_architecture_is_recorded_and_decodes(cxr_crop) -> None:
    data = medinr.encode(cxr_crop, preset="fast", grid_steps=20, modality="cxr")
    assert describe(data)["arch"] == AUTO_ARCH["cxr"] == "grid-wavelet"
    assert medinr.decode(data).pixels.shape == cxr_crop.shape


def test_unknown_architecture_is_refused(cxr_crop) -> None:
    with pytest.raises(medinr.MedinrError, match="architecture"):
        medinr.encode(cxr_crop, arch="transformer")


def test_auto_architecture_codes_a_timed_series_as_one_sequence(shared_data) -> None:
    from dataclasses import replace

    from medinr.config import resolve_arch

    assert resolve_arch("auto", "mri", False, sequence=True) == "grid-video"
    assert resolve_arch("auto", "mri", True, sequence=True) == "seed"  # near-lossless needs the exact predictor
    series = medinr.read(shared_data / "cine" / "train" / "SCD0000101_mid")
    clip = replace(series, pixels=np.ascontiguousarray(series.pixels[:3, 112:144, 112:144]),
                   frame_times=series.frame_times[:3], metadata={})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RateWarning)
        timed = medinr.encode(clip, preset="fast", grid_steps=4, video_steps=4)
        untimed = medinr.encode(replace(clip, frame_times=None), preset="fast", grid_steps=4, modality="mri")
    assert describe(timed)["arch"] == "grid-video" and describe(untimed)["arch"] == AUTO_ARCH["mri"]
    assert medinr.decode(timed).pixels.shape == (3, 32, 32)


@pytest.fixture(scope="module")
def noisy_12bit_crop(shared_data) -> np.ndarray:
    """A 48 px crop of a cxr/train image scaled to 12 bits, with Gaussian noise of 8 values (a detector's)."""
    pixels = medinr.read(shared_data / "cxr" / "train" / "00870a9c.jpg").pixels[1000:1048, 1000:1048]
    noise = np.random.default_rng(0).normal(0, 8, pixels.shape)
    return np.clip(np.round(pixels * (4095 / 255) + noise), 0, 4095).astype(np.uint16)


GRID_AT_TARGET = {"preset": "fast", "grid_steps": 20, "modality": "cxr"}


def _grid_and_auto(pixels: np.ndarray, **target: float) -> tuple[bytes, bytes]:
    """The same target coded with ``auto``'s architecture for cxr and with ``auto`` (which may keep the predictive
    coder's file)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RateWarning)
        return (medinr.encode(pixels, arch=AUTO_ARCH["cxr"], **target, **GRID_AT_TARGET),
                medinr.encode(pixels, **target, **GRID_AT_TARGET))


def test_auto_keeps_the_predictive_file_where_it_beats_grid_at_a_bpp_target(noisy_12bit_crop) -> None:
    crop = noisy_12bit_crop
    grid, auto = _grid_and_auto(crop, bpp=4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RateWarning)
        off = medinr.encode(crop, bpp=4.0, predictive_mode=False, **GRID_AT_TARGET)
    assert residual_of(read_container(auto)) is not None and describe(off)["arch"] == AUTO_ARCH["cxr"]
    assert len(auto) <= 4.0 * crop.size / 8
    assert psnr(crop, medinr.decode(auto).pixels) > psnr(crop, medinr.decode(grid).pixels)


def test_auto_predictive_file_states_its_bound_truthfully(noisy_12bit_crop) -> None:
    """The predictive file ``auto`` keeps is either plainly rounded (its δ bounds every error) or rate-distortion
    quantised (flagged: info reports no bound, format 1.4)."""
    _, auto = _grid_and_auto(noisy_12bit_crop, bpp=4.0)
    section = residual_of(read_container(auto))
    error = np.abs(medinr.decode(auto).pixels.astype(np.int64) - noisy_12bit_crop).max()
    facts = describe(auto)
    if section.bounded:
        assert facts["max_error"] == section.max_error >= error and facts["mode"] == "near-lossless"
    else:
        assert facts["max_error"] is None and facts["mode"].startswith("lossy") and auto[5] == 10


def test_auto_keeps_the_grid_file_where_the_predictive_coder_cannot_match_it(shared_data) -> None:
    image = medinr.read(shared_data / "cxr" / "test" / "txv_512_00000001_000.png")
    grid, auto = _grid_and_auto(np.ascontiguousarray(image.pixels[200:296, 200:296]), bpp=1.0)
    assert auto == grid


def test_auto_takes_the_predictive_file_where_grid_starves(cxr_crop) -> None:
    """48 px at 0.5 bpp (144 bytes): a random-init grid network leaves its latents almost nothing."""
    grid, auto = _grid_and_auto(cxr_crop, bpp=0.5)
    assert residual_of(read_container(auto)) is not None and len(auto) <= len(grid)
    assert psnr(cxr_crop, medinr.decode(auto).pixels) > psnr(cxr_crop, medinr.decode(grid).pixels) + 3


def test_auto_at_a_psnr_target_reaches_it_with_the_smaller_file(noisy_12bit_crop) -> None:
    crop = noisy_12bit_crop
    grid, auto = _grid_and_auto(crop, psnr=45.0)
    assert residual_of(read_container(auto)) is not None and psnr(crop, medinr.decode(auto).pixels) >= 45.0
    assert len(auto) <= len(grid) or psnr(crop, medinr.decode(grid).pixels) < 45.0


def test_uniform_delta_below() -> None:
    """The largest max error whose uniform error δ(δ + 1) / 3 is below (or at most) a mean squared error."""
    assert [_uniform_delta_below(m) for m in (0.0, 0.5, 2 / 3, 0.7, 2.0, 2.1, 4.0)] == [None, 0, 0, 1, 1, 2, 2]
    assert [_uniform_delta_below(m, inclusive=True) for m in (0.0, 2 / 3, 2.0)] == [0, 1, 2]


def _synthetic_coder(error_ratio: float, rdo_rate: float = 0.89, rdo_error: float = 1.3):
    """(bytes, mse) of a 64x64 predictive file: plain rounding at ``error_ratio`` times the uniform estimate and
    8 - log2(2δ + 1) bits a pixel; RDO at factor f scales them by ``rdo_rate``**f and ``rdo_error``**f."""
    import math

    calls: list[tuple[int, float]] = []

    def coded(delta: int, factor: float) -> tuple[int, float]:
        calls.append((delta, factor))
        bpp = max(8.0 - math.log2(2 * delta + 1), 0.2) * rdo_rate**factor
        return int(bpp * 4096 / 8), error_ratio * delta * (delta + 1) / 3 * rdo_error**factor

    return coded, calls


@pytest.mark.parametrize(("error_ratio", "budget_bpp"), [(0.4, 3.3), (1.0, 3.7)])
def test_best_within_budget_keeps_the_least_error_that_fits(error_ratio: float, budget_bpp: float) -> None:
    coded, calls = _synthetic_coder(error_ratio)
    budget = budget_bpp * 4096 / 8
    key = _best_within_budget(coded, rival_mse=40.0, budget=budget, pixels=4096)
    fitting = [(coded(*k)[1], k) for k in set(calls) if coded(*k)[0] <= budget]
    assert key is not None and coded(*key)[0] <= budget and coded(*key)[1] == min(fitting)[0]
    assert any(f > 0 for _, f in set(calls))  # a rate-distortion quantised file was tried next to plain rounding
    if error_ratio < 1:  # the measured error re-aims the first step coarser than the uniform estimate's
        assert calls[1][0] > calls[0][0]


def test_best_within_budget_tries_one_step_coarser_when_the_first_is_a_little_over() -> None:
    """The measured files of a 1024 px X-ray at 1 bpp (1M pixels): δ = 1 is over the budget by 20 %, δ = 2 fits
    and errs less than the rival (the INR file, 45.54 dB over a range of 255)."""
    pixels, budget = 1 << 20, (1 << 20) / 8
    table = {(1, 0.0): (1.198, 0.62), (2, 0.0): (0.917, 1.71), (2, 1.0): (0.85, 2.3)}
    calls: list[tuple[int, float]] = []

    def coded(delta: int, factor: float) -> tuple[int, float]:
        calls.append((delta, factor))
        bpp, mse = table[delta, factor]
        return int(bpp * pixels / 8), mse

    assert _best_within_budget(coded, rival_mse=255**2 / 10**4.554, budget=budget, pixels=pixels) == (2, 0.0)


def test_best_within_budget_gives_up_in_one_pass_when_far_over() -> None:
    coded, calls = _synthetic_coder(1.0)
    assert _best_within_budget(coded, rival_mse=2.0, budget=1.0 * 4096 / 8, pixels=4096) is None
    assert len(calls) == 1


@pytest.mark.parametrize("slope", [0.6, 0.8, 1.0, 1.2])
def test_fill_budget_finds_the_smallest_fitting_max_error_in_few_codings(slope: float) -> None:
    """On a rate that falls ``slope`` bits a pixel per halving of the step 2δ + 1, the smallest δ within the budget,
    with at most four distinct codings."""
    import math

    calls: set[int] = set()

    def bpp_at(delta: int) -> float:
        calls.add(delta)
        return 7.0 - slope * math.log2(2 * delta + 1)

    smallest = next(d for d in range(100) if bpp_at(d) <= 3.0)
    calls.clear()
    assert _fill_budget(bpp_at, 120, 3.0) == smallest and len(calls) <= 4


def _small_xray(shared_data) -> np.ndarray:
    """A 256 px crop of a cxr/train X-ray resized to a quarter."""
    pixels = medinr.read(shared_data / "cxr" / "train" / "19073f37.jpg").pixels
    return np.ascontiguousarray(pixels[::4, ::4][122:378, 122:378])


def test_a_learned_init_too_large_for_a_tiny_budget_gives_way_to_the_random_one(shared_data) -> None:
    """A 256 px X-ray at 0.03 bpp (245 bytes) with networks that train at any budget (``grid_net_min_bytes`` 0):
    the shipped cxr networks' file overshoots it (266 bytes when measured), so the encoder codes it again from the
    random init, whose narrower networks fit; the header still says cxr. (By default a budget this small keeps the
    networks at the init, and the learned init fits: the next test.)"""
    crop = _small_xray(shared_data)
    options = {"bpp": 0.03, "preset": "fast", "modality": "cxr", "arch": "grid-wavelet", "grid_steps": 20,
               "grid_net_min_bytes": 0}
    learned = medinr.encode(crop, **{**options, "bpp": 0.3})
    assert read_container(learned).header.init_name == "grid-wavelet-cxr"  # a budget it fits keeps it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = medinr.encode(crop, **options)
    header = read_container(data).header
    assert header.init_name == "random" and header.modality == "cxr"
    assert 8 * len(data) / crop.size <= 0.03 * 1.05
    assert medinr.decode(data).pixels.shape == crop.shape


def test_a_tiny_budget_keeps_the_learned_networks_as_they_are(shared_data) -> None:
    """The same 245-byte budget with the default options: the networks stay at the shipped cxr init (no deltas to
    pay for), so the learned init fits the budget and is kept."""
    crop = _small_xray(shared_data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = medinr.encode(crop, bpp=0.03, preset="fast", modality="cxr", arch="grid-wavelet", grid_steps=20)
    assert read_container(data).header.init_name == "grid-wavelet-cxr"
    assert 8 * len(data) / crop.size <= 0.03 * 1.05
