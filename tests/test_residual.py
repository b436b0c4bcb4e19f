"""Near-lossless and lossless modes: exact round trips, the error bound, the INR side information,
the section format and the refusals, on small real crops."""

from __future__ import annotations

import numpy as np
import pytest

import medinr
from medinr.archs import get_arch
from medinr.bitstream import Tag, read_container, write_container
from medinr.codec import _header_for, describe
from medinr.config import preset_config
from medinr.errors import BitstreamError, InputError, RateControlError
from medinr.preprocess import Normalisation
from medinr.residual import Residual, encode_near_lossless, residual_of
from medinr.residual.coder import (
    alphabet_size,
    decode_stack,
    detokenise,
    encode_stack,
    tile_for,
    token_bits,
    tokenise,
)

TINY_FIT = {"preset": "fast", "fit_steps": 15, "fit_qat_steps": 2}


@pytest.fixture(scope="module")
def mr(shared_data) -> medinr.MedicalImage:
    return medinr.read(shared_data / "mri" / "test" / "emri_small_head_12bit_10fr.dcm")


@pytest.fixture(scope="module")
def crops(shared_data, mr) -> dict[str, medinr.MedicalImage]:
    """Real crops at every depth and signedness the tests need."""
    cxr = medinr.read(shared_data / "cxr" / "test" / "txv_512_00000001_000.png").pixels[220:252, 220:252]
    cine = medinr.read(shared_data / "cine" / "train" / "SCD0000101_mid" / "frame00.dcm")
    dwi = medinr.read(shared_data / "mri" / "test" / "dipy_S0_10slices.nii.gz", slice="2:5").pixels[40:72, 40:72]
    wide = dwi.astype(np.uint32) * 16 + cxr % 16  # real 12-bit MR values spread over 16 bits
    signed16 = cine.pixels[100:132, 100:132].astype(np.int32) * 8 - 2000
    return {
        "uint8": medinr.MedicalImage(np.ascontiguousarray(cxr), bits_stored=8),
        "int8": medinr.MedicalImage((cxr.astype(np.int16) - 128).astype(np.int8), bits_stored=8, signed=True),
        "uint12_stack": mr.with_pixels(np.ascontiguousarray(mr.pixels[3:6, 16:48, 16:48])),
        "uint16": medinr.MedicalImage(wide.astype(np.uint16), bits_stored=16),
        "int16": medinr.MedicalImage(signed16.astype(np.int16), bits_stored=16, signed=True),
    }


@pytest.mark.parametrize("kind", ["uint8", "int8", "uint12_stack", "uint16", "int16"])
def test_lossless_round_trip_is_exact(crops, kind) -> None:
    image = crops[kind]
    decoded = medinr.decode(medinr.encode(image, max_error=0))
    assert decoded.pixels.dtype == image.pixels.dtype and decoded.pixels.shape == image.pixels.shape
    np.testing.assert_array_equal(decoded.pixels, image.pixels)


@pytest.mark.parametrize("delta", [1, 2, 4])
@pytest.mark.parametrize("kind", ["uint8", "uint12_stack", "int16"])
def test_near_lossless_bound_holds_on_every_pixel(crops, kind, delta) -> None:
    image = crops[kind]
    data = medinr.encode(image, max_error=delta)
    error = np.abs(medinr.decode(data).pixels.astype(np.int64) - image.pixels.astype(np.int64))
    assert error.max() <= delta
    assert error.max() > 0  # a real near-lossless file, not a lossless one
    assert len(data) < len(medinr.encode(image, max_error=0))


def test_values_at_the_dtype_limits_survive(crops) -> None:
    pixels = crops["int16"].pixels.copy()
    pixels[0, :4] = [-32768, 32767, -32768, 32767]
    data = medinr.encode(medinr.MedicalImage(pixels, bits_stored=16, signed=True), max_error=3)
    error = np.abs(medinr.decode(data).pixels.astype(np.int64) - pixels)
    assert error.max() <= 3


def test_stack_beats_frame_by_frame_through_the_previous_frame(mr) -> None:
    stack = mr.with_pixels(np.ascontiguousarray(mr.pixels[:4, 16:48, 16:48]))
    joint = len(medinr.encode(stack, max_error=0))
    single = sum(len(medinr.encode(np.ascontiguousarray(f), max_error=0)) for f in stack.pixels)
    assert joint < single


def _with_inr(image: medinr.MedicalImage, delta: int) -> bytes:
    """A file whose residual uses a (tiny) seed INR as side information."""
    frames = image.frame_stack()
    norm = Normalisation.of(frames)
    cfg = preset_config("fast", fit_steps=15, fit_qat_steps=2)
    chosen = encode_near_lossless(frames, norm, delta, "generic", get_arch("seed"), cfg, (1.0,), require_inr=True)
    header = _header_for(image, norm, "generic", "seed", chosen.config.to_bytes(), chosen.init)
    return write_container(header, chosen.sections)


@pytest.mark.parametrize("delta", [0, 2])
def test_inr_side_information_round_trip(crops, delta) -> None:
    image = crops["uint12_stack"].with_pixels(crops["uint12_stack"].pixels[:1, :24, :24].copy())
    data = _with_inr(image, delta)
    container = read_container(data)
    assert residual_of(container).predicted and len(container.payloads(Tag.FRAME)) == 1
    error = np.abs(medinr.decode(data).pixels.astype(np.int64) - image.pixels[0])
    assert error.max() <= delta


def test_encoder_keeps_the_smaller_file_when_an_inr_is_offered(crops) -> None:
    image = crops["uint8"].with_pixels(crops["uint8"].pixels[:24, :24].copy())
    frames = image.frame_stack()
    cfg = preset_config("fast", fit_steps=15, fit_qat_steps=2)
    chosen = encode_near_lossless(frames, Normalisation.of(frames), 0, "generic", get_arch("seed"), cfg, (0.5,))
    assert set(chosen.sizes) == {"none", "inr@0.5bpp"}
    residual = Residual.from_bytes(chosen.sections[-1][1])
    kept = "none" if not residual.predicted else "inr@0.5bpp"
    assert chosen.sizes[kept] == min(chosen.sizes.values())


def test_rate_distortion_quantised_file_promises_no_bound(crops) -> None:
    image = crops["uint8"]
    frames = image.frame_stack()
    chosen = encode_near_lossless(frames, Normalisation.of(frames), 3, "generic", get_arch("seed"),
                                  preset_config("fast"), rdo=1.0)
    residual = Residual.from_bytes(chosen.sections[-1][1])
    assert not residual.bounded and residual.error_bound is None and chosen.format_minor == 4
    header = _header_for(image, Normalisation.of(frames), "generic", "seed", chosen.config.to_bytes(), chosen.init)
    data = write_container(header, chosen.sections, chosen.format_minor)
    assert describe(data)["max_error"] is None and describe(data)["mode"] == "lossy (predictive, no network)"
    assert medinr.decode(data).pixels.shape == image.pixels.shape


def test_describe_reports_the_mode(crops) -> None:
    image = crops["uint8"]
    assert describe(medinr.encode(image, max_error=0))["mode"] == "lossless"
    info = describe(medinr.encode(image, max_error=2))
    assert info["mode"] == "near-lossless" and info["max_error"] == 2 and info["residual_bytes"] > 0
    assert info["parameters"] == 0 and info["config"] is None  # no INR in this file


def test_refusals(crops, shared_data) -> None:
    floats = np.load(shared_data / "mri" / "test" / "dipy_t1_coronal_slice.npy")[100:116, 100:116]
    with pytest.raises(InputError, match="integer"):
        medinr.encode(np.ascontiguousarray(floats), max_error=0)
    with pytest.raises(RateControlError, match="max error"):
        medinr.encode(crops["uint8"], max_error=1, bpp=1.0)
    with pytest.raises(RateControlError, match="max error"):
        medinr.encode(crops["uint8"], max_error=-1)


def test_header_with_another_shape_is_refused_before_decoding(crops) -> None:
    container = read_container(medinr.encode(crops["uint8"], max_error=0))
    container.header.height *= 2
    with pytest.raises(BitstreamError, match="header says"):
        medinr.decode(write_container(container.header, container.sections))


def test_corrupted_residual_with_valid_crc_is_an_error_not_wrong_pixels(crops) -> None:
    data = medinr.encode(crops["uint8"], max_error=0)
    container = read_container(data)
    sections = []
    for tag, payload in container.sections:
        if tag == Tag.RESIDUAL:
            damaged = bytearray(payload)
            damaged[len(damaged) // 2] ^= 0x04
            payload = bytes(damaged)
        sections.append((tag, payload))
    with pytest.raises(BitstreamError):
        medinr.decode(write_container(container.header, sections))


def test_residual_section_round_trip_and_rejections() -> None:
    section = Residual(3, True, (2, 5, 6), np.array([5, -7]), b"12345678", b"\x01\x02\x03\x04")
    parsed = Residual.from_bytes(section.to_bytes())
    assert (parsed.max_error, parsed.predicted, parsed.shape, parsed.digest, parsed.body) == (
        3, True, (2, 5, 6), b"12345678", b"\x01\x02\x03\x04")
    np.testing.assert_array_equal(parsed.start, [5, -7])
    raw = section.to_bytes()
    for bad in (raw[:6], b"\x07" + raw[1:], raw[:2] + b"\x80" + raw[3:], raw[:3] + b"\x00" + raw[4:]):
        with pytest.raises(BitstreamError):
            Residual.from_bytes(bad)


def test_tiled_section_round_trip_and_rejections() -> None:
    section = Residual(2, False, (1, 600, 40), np.array([9]), b"abcdefgh", b"\x05\x06\x07\x08", tile=150)
    raw = section.to_bytes()
    parsed = Residual.from_bytes(raw)
    assert raw[0] == 1 and section.format_minor == 4 and parsed.tile == 150 and parsed.body == section.body
    untiled = Residual(2, False, (1, 600, 40), np.array([9]), b"abcdefgh", b"\x05\x06\x07\x08")
    assert untiled.to_bytes()[0] == 0 and untiled.format_minor == 1 and Residual.from_bytes(untiled.to_bytes()).tile == 0
    assert raw[7:9] == b"\x96\x01"  # after version, δ, flags, frames, height (2 bytes), width
    zero_tile = raw[:7] + b"\x00" + raw[9:]
    with pytest.raises(BitstreamError, match="tile size 0"):
        Residual.from_bytes(zero_tile)
    with pytest.raises(BitstreamError, match="tile size 8"):
        decode_stack(b"\x00" * 8, (1, 32, 32), 0, 0, 255, np.array([0]), tile=8)


@pytest.mark.parametrize("tile", [16, 23])
def test_tiled_stack_round_trips_with_ragged_tiles(crops, tile) -> None:
    """Tiles that do not divide the frame, with a side prediction and a stack's previous-frame predictors: exact
    decode, the bound held, and a size close to the untiled coder's (each tile predicts from its own samples)."""
    stack = crops["uint12_stack"].pixels.astype(np.int64)[:, :30, :29]
    rng = np.random.default_rng(3)
    side = np.clip(stack + rng.integers(-20, 21, stack.shape), 0, 4095)
    for prediction in (None, side):
        body, start, recon = encode_stack(stack, 2, 0, 4095, prediction, tile)
        untiled, _, _ = encode_stack(stack, 2, 0, 4095, prediction)
        np.testing.assert_array_equal(decode_stack(body, stack.shape, 2, 0, 4095, start, prediction, tile), recon)
        assert np.abs(recon - stack).max() <= 2
        assert body != untiled and len(body) < 1.15 * len(untiled)


def test_rate_distortion_quantisation_trades_the_bound_for_bits(crops) -> None:
    """At the same step, RDO quantisation codes fewer bytes at a larger error and decodes exactly with the
    unchanged decoder; max error 0 (lossless) refuses it."""
    pixels = crops["uint8"].pixels.astype(np.int64)[None]
    sizes, errors = {}, {}
    for delta, rdo in ((2, 0.0), (2, 1.0), (3, 0.0), (3, 1.0)):
        body, start, recon = encode_stack(pixels, delta, 0, 255, rdo=rdo)
        np.testing.assert_array_equal(decode_stack(body, pixels.shape, delta, 0, 255, start), recon)
        sizes[delta, rdo], errors[delta, rdo] = len(body), float(np.mean((recon - pixels) ** 2.0))
    for delta in (2, 3):
        assert sizes[delta, 1.0] < sizes[delta, 0.0] and errors[delta, 1.0] > errors[delta, 0.0]
    with pytest.raises(ValueError, match="lossless"):
        encode_stack(pixels, 0, 0, 255, rdo=1.0)


def test_unbounded_flag_round_trips_and_needs_a_step() -> None:
    section = Residual(3, False, (1, 8, 8), np.array([1]), b"12345678", b"\x01\x02\x03\x04", bounded=False)
    parsed = Residual.from_bytes(section.to_bytes())
    assert not parsed.bounded and parsed.error_bound is None and section.format_minor == 4
    assert Residual(3, False, (1, 8, 8), np.array([1]), b"12345678", b"").error_bound == 3
    lossless = bytearray(section.to_bytes())
    lossless[1] = 0  # δ = 0 with the flag: a lossless section cannot be rate-distortion quantised
    with pytest.raises(BitstreamError, match="flags"):
        Residual.from_bytes(bytes(lossless))


def test_tile_for_splits_only_large_frames() -> None:
    assert [tile_for(n, n) for n in (64, 511, 512, 1000, 2048)] == [0, 0, 128, 143, 128]
    assert tile_for(40, 600) == 150


def test_large_frames_are_coded_in_tiles(shared_data) -> None:
    """A frame 512 samples long is coded in tiles (format 1.4 on; files are 1.10 now); the decode is within the
    bound."""
    pixels = medinr.read(shared_data / "cxr" / "test" / "txv_512_00000001_000.png").pixels[:40]
    data = medinr.encode(medinr.MedicalImage(np.ascontiguousarray(pixels), bits_stored=8), max_error=1)
    assert data[5] == 10 and residual_of(read_container(data)).tile == 128
    decoded = medinr.decode(data).pixels
    assert np.abs(decoded.astype(np.int64) - pixels).max() <= 1


def test_tokens_round_trip_up_to_40_bits() -> None:
    values = np.concatenate([np.arange(300), 2 ** np.arange(4, 41), 2 ** np.arange(4, 41) - 1, [123456789]])
    tokens, nbits, raw = tokenise(values)
    np.testing.assert_array_equal(token_bits(tokens), nbits)
    np.testing.assert_array_equal(detokenise(tokens, raw), values)
    assert tokens.max() < alphabet_size(int(values.max()))


def test_stack_coder_rejects_garbage_without_other_exceptions(crops) -> None:
    pixels = crops["uint8"].pixels.astype(np.int64)[None]
    body, start, recon = encode_stack(pixels, 0, 0, 255)
    np.testing.assert_array_equal(recon, pixels)
    rng = np.random.default_rng(0)
    for size in (0, 4, 64):
        try:
            decode_stack(rng.bytes(size), pixels.shape, 0, 0, 255, start)
        except BitstreamError:
            pass
    with pytest.raises(BitstreamError):
        decode_stack(body[:-1], pixels.shape, 0, 0, 255, start)
