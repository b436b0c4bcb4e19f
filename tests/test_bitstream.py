"""The .minr container: header round trip, the TIMING section and versions, and every way a stream can be
damaged."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from medinr.bitstream import (FORMAT_MAJOR, MAGIC, Header, Tag, read_container, read_timing, timing_section,
                              write_container)
from medinr.errors import BitstreamError

IRREGULAR_MS = (0.0, 33.25, 70.125, 100.001)


def _header(**changes) -> Header:
    fields = dict(height=32, width=48, frames=2, dtype="int16", bits_stored=12, signed=True,
                  photometric="MONOCHROME1", modality="mri", value_min=-2048.0, value_max=2047.0,
                  norm_mean=1.5, norm_std=100.25, rescale_slope=1.0, rescale_intercept=-1024.0, arch="seed",
                  arch_config=b"\x01\x02\x03", init_name="random", init_hash=bytes(range(8)))
    fields.update(changes)
    return Header(**fields)


def _stream(timing: bool = False) -> bytes:
    extra = [(Tag.TIMING, timing_section(IRREGULAR_MS[:2]))] if timing else []
    return write_container(_header(), [*extra, (Tag.FRAME, b"frame-one"), (Tag.FRAME, b"frame-two-payload")])


def test_header_round_trip_keeps_every_field() -> None:
    header = _header()
    assert Header.from_bytes(header.to_bytes()) == header


def test_container_round_trip() -> None:
    container = read_container(_stream())
    assert container.header == _header()
    assert container.payloads(Tag.FRAME) == [b"frame-one", b"frame-two-payload"]


def test_wrong_magic_is_rejected() -> None:
    with pytest.raises(BitstreamError, match="magic"):
        read_container(b"PNG!" + _stream()[4:])


def test_unknown_major_version_is_rejected() -> None:
    data = bytearray(_stream())
    data[4] = FORMAT_MAJOR + 1
    with pytest.raises(BitstreamError, match="version"):
        read_container(bytes(data))


@pytest.mark.parametrize("timing", [False, True])
def test_every_truncation_is_rejected(timing: bool) -> None:
    data = _stream(timing)
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            read_container(data[:cut])


@pytest.mark.parametrize("timing", [False, True])
def test_every_single_bit_flip_is_detected(timing: bool) -> None:
    data = _stream(timing)
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        with pytest.raises(BitstreamError):
            read_container(bytes(damaged))


def test_trailing_garbage_is_rejected() -> None:
    with pytest.raises(BitstreamError, match="after the end"):
        read_container(_stream() + b"\x00")


def _forged(header_bytes: bytes) -> bytes:
    chunk = bytes([int(Tag.HEADER), len(header_bytes)]) + header_bytes
    end = bytes([int(Tag.END), 0])
    return (MAGIC + bytes([FORMAT_MAJOR, 0]) + chunk + struct.pack("<I", zlib.crc32(chunk))
            + end + struct.pack("<I", zlib.crc32(end)))


@pytest.mark.parametrize("changes", [dict(height=0), dict(frames=5000), dict(dtype="complex64"),
                                     dict(photometric="RGB"), dict(norm_std=0.0), dict(value_min=5.0, value_max=1.0)])
def test_forged_headers_with_valid_crc_are_rejected(changes) -> None:
    with pytest.raises(BitstreamError):
        read_container(_forged(_header(**changes).to_bytes()))


def test_oversized_image_is_rejected_before_allocation() -> None:
    with pytest.raises(BitstreamError, match="maximum"):
        read_container(_forged(_header(height=65535, width=65535, frames=4000).to_bytes()))


# sizes: mode byte, then zig-zag varints of µs (0 -> 1 byte, 5000 -> 2 bytes, 37500 -> 3 bytes)
@pytest.mark.parametrize("times, size", [((0.0, 37.5, 75.0, 112.5), 1 + 1 + 3), ((5.0, 5.5), 1 + 2 + 2),
                                         (IRREGULAR_MS, 1 + 1 + 3 * 3)])
def test_timing_round_trip_to_a_microsecond(times, size) -> None:
    payload = timing_section(times)
    assert len(payload) == size  # an even interval is one value, whatever the frame count
    assert read_timing(payload, len(times)) == pytest.approx(times, abs=5e-4)


def test_even_timing_stays_one_value_for_long_sequences() -> None:
    assert len(timing_section([33.367 * i for i in range(1000)])) == len(timing_section([0.0, 33.367]))


@pytest.mark.parametrize("times", [(0.0,), (0.0, float("nan")), (0.0, float("inf")), (0.0, 2.0**40)])
def test_unstorable_timing_is_refused(times) -> None:
    with pytest.raises(ValueError, match="frame times"):
        timing_section(times)


def test_version_is_the_lowest_that_knows_every_section() -> None:
    assert _stream()[4:6] == bytes([1, 1])  # images without timing: what a 1.1 writer made
    data = _stream(timing=True)
    assert data[4:6] == bytes([1, 2])
    assert write_container(_header(), [], content_minor=3)[4:6] == bytes([1, 3])  # an architecture's frames
    assert read_container(data).payloads(Tag.TIMING) == [timing_section(IRREGULAR_MS[:2])]


def _sections_stream(minor: int, sections: list[tuple[Tag, bytes]]) -> bytes:
    """A stream with valid CRCs written by hand at format 1.``minor``."""
    out = bytearray(MAGIC + bytes([FORMAT_MAJOR, minor]))
    for tag, payload in [(Tag.HEADER, _header().to_bytes()), *sections, (Tag.END, b"")]:
        chunk = bytes([int(tag), len(payload)]) + payload
        out += chunk + struct.pack("<I", zlib.crc32(chunk))
    return bytes(out)


def test_timing_section_in_an_older_version_is_rejected() -> None:
    with pytest.raises(BitstreamError, match="TIMING section in a format 1.1 file"):
        read_container(_sections_stream(1, [(Tag.TIMING, timing_section(IRREGULAR_MS[:2]))]))


@pytest.mark.parametrize("payload, frames, match", [
    (b"", 2, "mode"), (b"\x02\x00\x00", 2, "mode"),  # no mode byte, unknown mode
    (timing_section(IRREGULAR_MS), 3, "trailing"), (timing_section(IRREGULAR_MS), 5, "truncated"),
    (timing_section((0.0, 1.0)) + b"\x00", 2, "trailing"), (timing_section((0.0, 1.0)), 1, "1-frame"),
    (b"\x00" + b"\xff" * 6 + b"\x7f" + b"\x00", 2, "out of range"),
])
def test_malformed_timing_with_valid_crc_is_rejected(payload, frames, match) -> None:
    with pytest.raises(BitstreamError, match=match):
        read_timing(payload, frames)


OLD_FILE = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "seed_lossy_mr_2fr_meta_hash.minr"


def test_format_1_1_stack_without_timing_still_decodes() -> None:
    from medinr.codec import decode, describe

    data = OLD_FILE.read_bytes()  # a 2-frame stack written by the 1.1 encoder (fuzz corpus)
    assert data[4:6] == bytes([1, 1])
    image = decode(data)
    assert image.pixels.shape == (2, 16, 16) and image.frame_times is None
    assert describe(data)["fps_assumed"] is True


def test_decoder_rejects_a_timing_section_that_does_not_fit_the_header() -> None:
    from medinr.codec import decode

    container = read_container(OLD_FILE.read_bytes())
    sections = [(Tag.TIMING, timing_section(IRREGULAR_MS)), *container.sections]  # 4 times, 2 frames
    with pytest.raises(BitstreamError, match="timing section"):
        decode(write_container(container.header, sections))
