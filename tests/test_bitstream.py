"""The .minr container: header round trip and every way a stream can be damaged."""

from __future__ import annotations

import struct
import zlib

import pytest

from medinr.bitstream import FORMAT_MAJOR, MAGIC, Header, Tag, read_container, write_container
from medinr.errors import BitstreamError


def _header(**changes) -> Header:
    fields = dict(height=32, width=48, frames=2, dtype="int16", bits_stored=12, signed=True,
                  photometric="MONOCHROME1", modality="mri", value_min=-2048.0, value_max=2047.0,
                  norm_mean=1.5, norm_std=100.25, rescale_slope=1.0, rescale_intercept=-1024.0, arch="seed",
                  arch_config=b"\x01\x02\x03", init_name="random", init_hash=bytes(range(8)))
    fields.update(changes)
    return Header(**fields)


def _stream() -> bytes:
    return write_container(_header(), [(Tag.FRAME, b"frame-one"), (Tag.FRAME, b"frame-two-payload")])


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


def test_every_truncation_is_rejected() -> None:
    data = _stream()
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            read_container(data[:cut])


def test_every_single_bit_flip_is_detected() -> None:
    data = _stream()
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
