"""grid-mc on a tiny real cine clip: round trip through the real container (decode equals what the encoder
measured, frame 0 intra, bpp target met), thread-independent decoding, the CLI, bad payloads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from medinr.archs import get_arch
from medinr.archs.motion import INTER, MODES, frame_modes, reconstruct_sequence
from medinr.bitstream import Tag, read_container
from medinr.cli import main
from medinr.codec import decode, describe, encode_report
from medinr.errors import BitstreamError
from medinr.io import read
from medinr.preprocess import Normalisation

TINY = {"arch": "grid-mc", "preset": "fast", "grid_steps": 30, "threads": 1}
BPP = 3.0


@pytest.fixture(scope="module")
def clip(shared_data: Path) -> object:
    image = read(shared_data / "cine/train/SCD0000101_mid")
    return image.with_pixels(np.ascontiguousarray(image.pixels[:3, 104:144, 104:144]))


@pytest.fixture(scope="module")
def coded(clip: object) -> object:
    return encode_report(clip, bpp=BPP, **TINY)


def _parts(data: bytes) -> tuple[bytes, tuple]:
    """The FRAME payload and the decoder's other arguments."""
    container = read_container(data)
    h = container.header
    codec = get_arch(h.arch)
    config = codec.config_from_bytes(h.arch_config)
    norm = Normalisation(h.norm_mean, h.norm_std, h.value_min, h.value_max)
    return container.payloads(Tag.FRAME)[0], (config, codec.load_init(h.init_name, config), norm, np.dtype(h.dtype),
                                              (h.frames, h.height, h.width))


def test_round_trip_decodes_what_the_encoder_measured(clip, coded) -> None:
    decoded = decode(coded.data).pixels
    assert decoded.shape == (3, 40, 40) and decoded.dtype == clip.pixels.dtype
    np.testing.assert_array_equal(decoded, coded.decoded.pixels)
    assert abs(coded.metrics["bpp"] - BPP) <= 0.05 * BPP and not coded.warnings
    assert coded.metrics["psnr"] > 25
    info = describe(coded.data)
    assert info["arch"] == "grid-mc" and len(info["frame_payload_bytes"]) == 1
    modes = frame_modes(_parts(coded.data)[0], 3)
    assert modes[0] == "intra" and set(modes) <= set(MODES)
    assert {"inter", "skip"} & set(modes[1:])  # motion compensation used, so the tests below decode its paths


def test_decode_identical_on_one_and_two_threads(coded) -> None:
    before = torch.get_num_threads()
    try:
        one, two = [(torch.set_num_threads(n), decode(coded.data).pixels)[1] for n in (1, 2)]
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_truncated_or_corrupted_payload_raises_bitstream_error(coded) -> None:
    payload, args = _parts(coded.data)
    np.testing.assert_array_equal(reconstruct_sequence(payload, *args), coded.decoded.pixels)
    bad_mode = bytearray(payload)
    bad_mode[1] = INTER  # frame 0 must be intra
    for bad in (b"", payload[:1], payload[:40], payload[:-1], payload + b"\0", bytes([0]) + payload[1:],
                bytes(bad_mode)):
        with pytest.raises(BitstreamError):
            reconstruct_sequence(bad, *args)
    with pytest.raises(BitstreamError):
        decode(coded.data[:-7])


def test_cli_encodes_and_decodes_with_arch_grid_mc(clip, tmp_path: Path) -> None:
    source, minr, out = tmp_path / "clip.npy", tmp_path / "clip.minr", tmp_path / "decoded.npy"
    np.save(source, clip.pixels[:2, :32, :32])
    runner = CliRunner()
    encoded = runner.invoke(main, ["encode", str(source), "-o", str(minr), "--arch", "grid-mc", "--preset", "fast",
                                   "--bpp", "4", "--steps", "30", "--quiet"])
    assert encoded.exit_code == 0, encoded.output
    info = runner.invoke(main, ["info", str(minr), "--json"])
    assert info.exit_code == 0 and '"arch": "grid-mc"' in info.output
    assert runner.invoke(main, ["decode", str(minr), "-o", str(out), "--quiet"]).exit_code == 0
    np.testing.assert_array_equal(np.load(out), decode(minr.read_bytes()).pixels)
