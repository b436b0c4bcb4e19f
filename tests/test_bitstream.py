"""The .minr container: header round trip, the TIMING section and versions, and every way a stream can be
damaged."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import pytest

from medinr.bitstream import (
    ARCH_NAMES,
    COMPACT_MINOR,
    FORMAT_MAJOR,
    INIT_NAMES,
    MAGIC,
    MODALITY_NAMES,
    NAMED_MINOR,
    Header,
    Tag,
    read_container,
    read_timing,
    timing_section,
    write_container,
)
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


def _forged(header_bytes: bytes, minor: int = 0) -> bytes:
    """A stream around given header bytes with valid CRCs, at format 1.``minor`` (legacy header and END section
    before 1.5)."""
    compact = minor >= COMPACT_MINOR
    chunk = bytes([int(Tag.HEADER), len(header_bytes)]) + header_bytes
    end = bytes([int(Tag.END), 0])
    start = MAGIC + bytes([FORMAT_MAJOR, minor]) + chunk + struct.pack("<I", zlib.crc32(chunk))
    return start + (bytes([int(Tag.END)]) if compact else end + struct.pack("<I", zlib.crc32(end)))


INVALID = [{"height": 0}, {"frames": 5000}, {"norm_std": 0.0}, {"value_min": 5.0, "value_max": 1.0},
           {"value_max": float("inf")}, {"rescale_slope": float("nan")}]


@pytest.mark.parametrize("changes", [*INVALID, {"dtype": "complex64"}, {"photometric": "RGB"}])
def test_forged_legacy_headers_with_valid_crc_are_rejected(changes) -> None:
    with pytest.raises(BitstreamError):
        read_container(_forged(_header(**changes).to_bytes(0)))


@pytest.mark.parametrize("minor", [COMPACT_MINOR, NAMED_MINOR])
@pytest.mark.parametrize("changes", INVALID)
def test_forged_compact_headers_with_valid_crc_are_rejected(changes, minor: int) -> None:
    with pytest.raises(BitstreamError):
        read_container(_forged(_header(**changes).to_bytes(minor), minor))


@pytest.mark.parametrize("minor", [COMPACT_MINOR, NAMED_MINOR])
@pytest.mark.parametrize("field", ["dtype", "photometric"])
def test_compact_header_with_an_unknown_enum_code_is_rejected(field: str, minor: int) -> None:
    raw = bytearray(_header().to_bytes(minor))
    position = {"dtype": 3, "photometric": 6}[field]  # after 3 one-byte varints (and bits_stored, signed)
    assert raw[position] == {"dtype": 3, "photometric": 1}[field]  # int16, MONOCHROME1
    raw[position] = 200
    with pytest.raises(BitstreamError, match=f"unknown {field} code 200"):
        read_container(_forged(bytes(raw), minor))


def test_named_header_with_an_unknown_name_code_is_rejected() -> None:
    raw = bytearray(_header().to_bytes(NAMED_MINOR))
    assert raw[7] == 2  # the modality, after the photometric byte: "mri"
    raw[7] = 200
    with pytest.raises(BitstreamError, match="unknown modality code 200"):
        read_container(_forged(bytes(raw), NAMED_MINOR))


def test_every_architecture_modality_and_shipped_init_has_a_name_code() -> None:
    """Each is one byte in a header (importing the codec registers every architecture)."""
    from medinr.archs import ARCH_CODECS
    from medinr.codec import MODALITIES
    from medinr.meta.inits import installed_inits

    assert set(ARCH_CODECS) <= set(ARCH_NAMES)
    assert set(MODALITIES) - {"auto"} <= set(MODALITY_NAMES)
    assert {"random", *installed_inits()} <= set(INIT_NAMES)


def test_oversized_image_is_rejected_before_allocation() -> None:
    for minor in (0, COMPACT_MINOR, NAMED_MINOR):
        with pytest.raises(BitstreamError, match="maximum"):
            header = _header(height=65535, width=65535, frames=4000)
            read_container(_forged(header.to_bytes(minor), minor))


@pytest.mark.parametrize("value", [0.0, -0.0, 1.0, -1024.0, 4095.0, 65535.0, -(2.0**31), 2.0**52, 2.0**60, 0.5,
                                   -3.25, 1e-300, 2.0**-1074])
def test_compact_numbers_keep_their_exact_value(value: float) -> None:
    header = _header(value_min=value, value_max=max(value, 7.0), rescale_slope=value, rescale_intercept=-value)
    back = Header.from_bytes(header.to_bytes())
    assert back == header
    assert [math.copysign(1.0, v) for v in (back.rescale_slope, back.rescale_intercept)] == \
        [math.copysign(1.0, v) for v in (value, -value)]  # the sign of a zero too


def test_compact_header_saves_over_40_bytes_and_both_forms_round_trip() -> None:
    header = _header()
    assert Header.from_bytes(header.to_bytes(0), 0) == header
    assert len(header.to_bytes(0)) - len(header.to_bytes(COMPACT_MINOR)) > 40


def test_the_named_header_codes_known_names_in_a_byte_and_spells_out_others() -> None:
    """``grid-wavelet-cxr`` on an X-ray: 34 bytes of names in the 1.5 header, 3 in the 1.10 one; names outside the
    tables (a user's init file, a future modality) round trip spelled out."""
    known = _header(modality="cxr", arch="grid-wavelet", init_name="grid-wavelet-cxr")
    assert len(known.to_bytes(COMPACT_MINOR)) - len(known.to_bytes(NAMED_MINOR)) == 34 - 3
    assert Header.from_bytes(known.to_bytes(NAMED_MINOR), NAMED_MINOR) == known
    spelled = _header(modality="US", init_name="my-site-cxr")
    assert len(spelled.to_bytes(NAMED_MINOR)) == len(spelled.to_bytes(COMPACT_MINOR)) + 2 - len("seed")
    assert Header.from_bytes(spelled.to_bytes(NAMED_MINOR), NAMED_MINOR) == spelled
    with pytest.raises(BitstreamError, match="truncated"):  # a spelled name cut short
        Header.from_bytes(spelled.to_bytes(NAMED_MINOR)[:8], NAMED_MINOR)


def test_a_format_1_4_stream_with_its_legacy_header_and_end_section_still_reads() -> None:
    data = _sections_stream(4, [(Tag.FRAME, b"frame-one")])
    container = read_container(data)
    assert container.header == _header() and container.payloads(Tag.FRAME) == [b"frame-one"]
    assert container.minor == 4 and read_container(_stream()).minor == NAMED_MINOR


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


def test_every_file_is_written_as_format_1_10_at_least_with_a_one_byte_end() -> None:
    """1.10 (named header) knows every earlier section and every architecture's frames."""
    data = _stream(timing=True)
    assert _stream()[4:6] == data[4:6] == write_container(_header(), [], content_minor=3)[4:6] == bytes([1, 10])
    assert data[-1] == Tag.END and data[-6] != Tag.END
    assert read_container(data).payloads(Tag.TIMING) == [timing_section(IRREGULAR_MS[:2])]


def _sections_stream(minor: int, sections: list[tuple[Tag, bytes]]) -> bytes:
    """A stream with valid CRCs written by hand at format 1.``minor``."""
    compact = minor >= COMPACT_MINOR
    out = bytearray(MAGIC + bytes([FORMAT_MAJOR, minor]))
    for tag, payload in [(Tag.HEADER, _header().to_bytes(minor)), *sections, *([] if compact else [(Tag.END, b"")])]:
        chunk = bytes([int(tag), len(payload)]) + payload
        out += chunk + struct.pack("<I", zlib.crc32(chunk))
    return bytes(out + (bytes([int(Tag.END)]) if compact else b""))


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
