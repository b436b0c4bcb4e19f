"""The ``.minr`` container: magic, version, a typed header and CRC-protected sections.

Layout (all integers little-endian)::

    b"MINR" | major u8 | minor u8 | section* | END
    section = tag u8 | length varint | payload | crc32(tag, length, payload) u32
    END = the byte 0 (format 1.5 on), an empty section of tag 0 before

The first section is always the header (:class:`Header`, typed fields in a fixed order); the other
sections are opaque to this module except TIMING (below). Readers reject a wrong magic, an unknown
major version, a bad CRC, a missing END section (truncation), a section newer than the file's minor
version and trailing garbage, each with a clear :class:`~medinr.errors.BitstreamError`.

Versions: 1.0 holds HEADER, FRAME and METADATA; 1.1 adds RESIDUAL and HASH; 1.2 adds TIMING; 1.3 changes
no section but lets FRAME payloads of the grid architectures table-code their latents (a flag inside the
payload, :mod:`medinr.entropy.context`); 1.4 lets RESIDUAL sections code in tiles (version 1 of the section,
:mod:`medinr.residual`); 1.5 writes the header compactly (:meth:`Header.to_bytes`: varints, enum codes, integral
numbers as integers: 58 bytes instead of 101 on a 256 px X-ray) and the END section as its tag byte alone (its
length and CRC were constant: 5 bytes), which matters at low rates (a 256 px image at 0.25 bpp is 2,048 bytes); 1.10
writes the header's modality, architecture and init names as one-byte codes (names outside the tables spelled out
after the code 0xFF). Writers stamp 1.10 at least; a file's version says how to read its header, so every earlier
file still decodes. A writer
stamps the lowest minor version that knows every section it wrote and the architecture's frames
(``content_minor``), and an older reader refuses a newer file by its version ("a newer file needs a newer
medinr") rather than by an unknown tag or a garbled frame.

TIMING (optional, sequences of 2 frames or more): the frame times in ms as integer microseconds
(1 µs resolution; DICOM TriggerTime, FrameTime and NIfTI pixdim[4] in ms with up to 3 decimals
survive exactly)::

    mode u8 | t0 svarint | (mode 0: step svarint) or (mode 1: frames - 1 deltas, svarint each)

mode 0 is a constant frame interval (one value whatever the frame count), mode 1 a per-frame delta
list; svarint is zig-zag LEB128 (:mod:`medinr.varint`). The encoder writes it whenever the source has
frame times, also without METADATA (timing is not patient data).
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any

from medinr.errors import BitstreamError
from medinr.varint import (
    read_svarint,
    read_uvarint,
    unzigzag,
    write_svarint,
    write_uvarint,
    zigzag,
)

MAGIC = b"MINR"
FORMAT_MAJOR = 1
#: 1.1 adds the RESIDUAL and HASH sections, 1.2 the TIMING section, 1.3 table-coded grid latents, 1.4 tiled RESIDUAL
#: sections (:mod:`medinr.residual`), 1.5 the compact header and END marker, 1.6 wavelet-basis grid latents
#: (:mod:`medinr.models.wavelet`), 1.7 grid context networks that read magnitudes (``GridConfig.context_magnitudes``),
#: 1.8 interpolated parentless levels in 2D grid frames (:func:`medinr.entropy.context.choose_interpolation`), 1.9
#: the wavelet latents' symmetric edge extension (``cdf97-symmetric``), 1.10 the header's names as one-byte codes,
#: 1.11 ``grid-video`` latents coded as spectra along time (``GridConfig.temporal``), 1.12 their scale offsets per
#: frequency (``GridConfig.frequency_scales``)
FORMAT_MINOR = 12
#: Hard caps so that a forged header can never make a decoder allocate without bound.
MAX_SIDE = 65535
MAX_FRAMES = 4096
MAX_PIXELS = 2**31


class Tag(IntEnum):
    """Section tags; unknown tags in a known major version are an error, not skipped silently."""

    END = 0
    HEADER = 1
    FRAME = 2
    METADATA = 3
    #: near-lossless / lossless residual (:mod:`medinr.residual`), format 1.1
    RESIDUAL = 4
    #: SHA-256 of the source pixels (:mod:`medinr.verify`), format 1.1
    HASH = 5
    #: frame times of a sequence (:func:`timing_section`), format 1.2
    TIMING = 6


#: minor format version that introduced a section (sections not listed are 1.0); files are stamped 1.1 at least
SECTION_MINOR = {Tag.RESIDUAL: 1, Tag.HASH: 1, Tag.TIMING: 2}
#: first minor version with the compact header and the one-byte END marker
COMPACT_MINOR = 5
#: first minor version whose header writes its modality, architecture and init names as one-byte codes
#: (:data:`MODALITY_NAMES`, :data:`ARCH_NAMES`, :data:`INIT_NAMES`); every file written now has it. A 256 px X-ray
#: from the shipped ``grid-wavelet-cxr`` init took 34 bytes for the three names, 3 now: at 0.03 bpp its file is
#: about 250 bytes
NAMED_MINOR = 10
#: frame times are stored in integer microseconds
TIMING_UNITS_PER_MS = 1000
#: largest |time| the TIMING section holds (about 12 days in µs), so decoded times stay exact floats
MAX_TIMING_US = 2**40


DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
PHOTOMETRICS = ("MONOCHROME2", "MONOCHROME1")
#: the named header's code tables (append only: a code, once written, keeps its name); other names are written out
MODALITY_NAMES = ("generic", "cxr", "mri", "cine", "ct")
ARCH_NAMES = ("seed", "grid", "grid-wavelet", "grid-video", "grid-mc", "seed-video")
INIT_NAMES = ("random", "grid-cxr", "grid-mri", "grid-wavelet-cxr", "grid-wavelet-mri", "seed-cine", "seed-cxr",
              "seed-mri", "grid-video-cine")
#: the code of a name that is not in its table: a length-prefixed ASCII string follows
_SPELLED = 0xFF


#: a compact number (``"num"``) is ``uvarint(zigzag(n) << 1)`` for an integral value n (|n| below this), else the
#: uvarint 1 and a float64
_MAX_EXACT_INT = 2**53


def _write_field(fmt: str, value: Any, name: str, choices: tuple[str, ...] = ()) -> bytes:
    """One header field in its wire form (``fmt``: a struct code, ``str``, ``bytes``, ``uvarint``, ``enum``,
    ``name`` or ``num``)."""
    if fmt == "name":
        return bytes([choices.index(value)]) if value in choices else bytes([_SPELLED]) + _write_field("str", value,
                                                                                                        name)
    if fmt in ("str", "bytes"):
        raw = value.encode("ascii") if fmt == "str" else bytes(value)
        if len(raw) > 255:
            raise ValueError(f"header field {name} too long: {value!r}")
        return bytes([len(raw)]) + raw
    if fmt == "uvarint":
        return write_uvarint(value)
    if fmt == "enum":
        return bytes([choices.index(value)])
    if fmt == "num":
        number = float(value)
        negative_zero = number == 0 and math.copysign(1.0, number) < 0
        if number.is_integer() and abs(number) < _MAX_EXACT_INT and not negative_zero:
            return write_uvarint(zigzag(int(number)) << 1)
        return write_uvarint(1) + struct.pack("<d", number)
    return struct.pack("<" + fmt, value)


def _read_field(fmt: str, data: bytes, pos: int, name: str, choices: tuple[str, ...] = ()) -> tuple[Any, int]:
    """Inverse of :func:`_write_field`: (value, next position); IndexError or struct.error when cut short."""
    what = f"header ({name})"
    if fmt == "name":
        if data[pos] == _SPELLED:
            return _read_field("str", data, pos + 1, name)
        return _read_field("enum", data, pos, name, choices)
    if fmt in ("str", "bytes"):
        n = data[pos]
        raw = data[pos + 1:pos + 1 + n]
        if len(raw) != n:
            raise IndexError
        return (raw.decode("ascii") if fmt == "str" else bytes(raw)), pos + 1 + n
    if fmt == "uvarint":
        return read_uvarint(data, pos, what, max_bits=35)
    if fmt == "enum":
        if data[pos] >= len(choices):
            raise BitstreamError(f"corrupted header (unknown {name} code {data[pos]})")
        return choices[data[pos]], pos + 1
    if fmt == "num":
        code, pos = read_uvarint(data, pos, what)
        if code == 1:
            return struct.unpack_from("<d", data, pos)[0], pos + 8
        if code & 1:
            raise BitstreamError(f"corrupted header (invalid {name})")
        return float(unzigzag(code >> 1)), pos
    size = struct.calcsize("<" + fmt)
    return struct.unpack_from("<" + fmt, data, pos)[0], pos + size


def _field(fmt: str, compact: str | None = None, choices: tuple[str, ...] = (), named: str | None = None) -> Any:
    """A header field's wire forms: ``fmt`` before format 1.5, ``compact`` (default: the same) from 1.5 on,
    ``named`` (default: the compact one) from 1.10 on."""
    return field(metadata={"fmt": fmt, "compact": compact or fmt, "named": named or compact or fmt,
                           "choices": choices})


def _header_form(minor: int) -> str:
    """Which of a header field's wire forms a file of this minor version has."""
    return "fmt" if minor < COMPACT_MINOR else "compact" if minor < NAMED_MINOR else "named"


@dataclass
class Header:
    """Everything a decoder needs besides the per-frame payloads.

    Field order is the wire order; each field's metadata gives its wire form before format 1.5 (``fmt``: a struct
    code, ``"str"`` for a length-prefixed ASCII string, ``"bytes"`` for length-prefixed raw bytes), from 1.5 on
    (``compact``: also ``"uvarint"``, ``"enum"`` (a byte indexing ``choices``) and ``"num"`` (an integral number as a
    varint, any other as a float64)) and from 1.10 on (``named``: also ``"name"``, a byte indexing ``choices`` or
    0xFF and the name spelled out).
    """

    height: int = _field("H", "uvarint")
    width: int = _field("H", "uvarint")
    frames: int = _field("H", "uvarint")
    dtype: str = _field("str", "enum", DTYPES)
    bits_stored: int = _field("B")
    signed: bool = _field("?")
    photometric: str = _field("str", "enum", PHOTOMETRICS)
    modality: str = _field("str", choices=MODALITY_NAMES, named="name")
    value_min: float = _field("d", "num")
    value_max: float = _field("d", "num")
    norm_mean: float = _field("f")
    norm_std: float = _field("f")
    rescale_slope: float = _field("d", "num")
    rescale_intercept: float = _field("d", "num")
    arch: str = _field("str", choices=ARCH_NAMES, named="name")
    arch_config: bytes = _field("bytes")
    init_name: str = _field("str", choices=INIT_NAMES, named="name")
    init_hash: bytes = _field("bytes")

    def to_bytes(self, minor: int = FORMAT_MINOR) -> bytes:
        """The wire form of a file of this minor version: named (1.10 on), compact (1.5-1.9) or as before 1.5."""
        key = _header_form(minor)
        return b"".join(_write_field(f.metadata[key], getattr(self, f.name), f.name, f.metadata["choices"])
                        for f in fields(self))

    @classmethod
    def from_bytes(cls, data: bytes, minor: int = FORMAT_MINOR) -> Header:
        key = _header_form(minor)
        values: dict[str, Any] = {}
        pos = 0
        try:
            for f in fields(cls):
                values[f.name], pos = _read_field(f.metadata[key], data, pos, f.name, f.metadata["choices"])
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise BitstreamError("corrupted header (truncated or not ASCII)") from exc
        if pos != len(data):
            raise BitstreamError("corrupted header (unexpected trailing bytes)")
        header = cls(**values)
        header.validate()
        return header

    def validate(self) -> None:
        """Reject values no encoder writes, before anything is allocated from them."""
        if not (1 <= self.height <= MAX_SIDE and 1 <= self.width <= MAX_SIDE and 1 <= self.frames <= MAX_FRAMES):
            raise BitstreamError(f"invalid image shape in header ({self.frames}x{self.height}x{self.width})")
        if self.height * self.width * self.frames > MAX_PIXELS:
            raise BitstreamError("image in header exceeds the maximum supported size")
        if self.dtype not in DTYPES:
            raise BitstreamError(f"unknown pixel dtype {self.dtype!r} in header")
        if self.photometric not in PHOTOMETRICS:
            raise BitstreamError(f"unknown photometric interpretation {self.photometric!r} in header")
        if not 1 <= self.bits_stored <= 64:
            raise BitstreamError(f"invalid bits stored {self.bits_stored} in header")
        if not (self.value_min <= self.value_max) or not self.norm_std > 0:
            raise BitstreamError("invalid value range or normalisation in header")
        numbers = (self.value_min, self.value_max, self.norm_mean, self.norm_std, self.rescale_slope,
                   self.rescale_intercept)
        if not all(math.isfinite(v) for v in numbers):
            raise BitstreamError("non-finite value range, normalisation or rescale in header")

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.height, self.width) if self.frames == 1 else (self.frames, self.height, self.width)


@dataclass
class Container:
    """A parsed stream: the header and the other sections in order, as ``(tag, payload)``."""

    header: Header
    sections: list[tuple[Tag, bytes]]
    #: the file's minor format version
    minor: int = FORMAT_MINOR

    def payloads(self, tag: Tag) -> list[bytes]:
        return [payload for t, payload in self.sections if t == tag]


def write_container(header: Header, sections: list[tuple[Tag, bytes]], content_minor: int = 0) -> bytes:
    """Serialise a header and sections into a complete ``.minr`` byte string (stamped with the lowest minor
    version that knows every section in it and, ``content_minor``, the architecture's frame payloads)."""
    minor = max([NAMED_MINOR, content_minor, *(SECTION_MINOR.get(tag, 0) for tag, _ in sections)])
    out = bytearray(MAGIC + bytes([FORMAT_MAJOR, minor]))
    for tag, payload in [(Tag.HEADER, header.to_bytes(minor)), *sections]:
        chunk = bytes([int(tag)]) + write_uvarint(len(payload)) + payload
        out += chunk + struct.pack("<I", zlib.crc32(chunk))
    return bytes(out + bytes([Tag.END]))


def read_container(data: bytes) -> Container:
    """Parse and verify a ``.minr`` byte string; raises :class:`BitstreamError` on any defect."""
    data = bytes(data)
    if len(data) < 6:
        raise BitstreamError(f"not a medinr file: only {len(data)} bytes")
    if data[:4] != MAGIC:
        raise BitstreamError("not a medinr file (wrong magic number)")
    major, minor = data[4], data[5]
    if major != FORMAT_MAJOR or minor > FORMAT_MINOR:
        raise BitstreamError(f"unsupported .minr format version {major}.{minor} "
                             f"(this medinr reads {FORMAT_MAJOR}.0 to {FORMAT_MAJOR}.{FORMAT_MINOR}; "
                             "a newer file needs a newer medinr)")
    pos = 6
    header: Header | None = None
    sections: list[tuple[Tag, bytes]] = []
    compact = minor >= COMPACT_MINOR
    while True:
        start = pos
        if pos >= len(data):
            raise BitstreamError("truncated file (end marker missing)")
        tag_value = data[pos]
        pos += 1
        if compact and tag_value == Tag.END:
            break
        length, pos = read_uvarint(data, pos, "file (inside a section length)", max_bits=35)
        end = pos + length
        if end + 4 > len(data):
            raise BitstreamError("truncated file (a section is cut short)")
        (crc,) = struct.unpack_from("<I", data, end)
        if zlib.crc32(data[start:end]) != crc:
            raise BitstreamError(f"corrupted file (CRC mismatch in section at byte {start})")
        try:
            tag = Tag(tag_value)
        except ValueError:
            raise BitstreamError(f"unknown section tag {tag_value} at byte {start}") from None
        payload = data[pos:end]
        pos = end + 4
        if tag == Tag.END:
            break
        if SECTION_MINOR.get(tag, 0) > minor:
            raise BitstreamError(f"corrupted file ({tag.name} section in a format {major}.{minor} file)")
        if header is None:
            if tag != Tag.HEADER:
                raise BitstreamError("corrupted file (first section is not the header)")
            header = Header.from_bytes(payload, minor)
        else:
            sections.append((tag, payload))
    if header is None:
        raise BitstreamError("corrupted file (no header)")
    if pos != len(data):
        raise BitstreamError(f"corrupted file ({len(data) - pos} unexpected bytes after the end marker)")
    return Container(header, sections, minor)


def timing_section(times: Sequence[float]) -> bytes:
    """TIMING payload of frame times in ms (see the module docstring): one interval when they are evenly
    spaced at 1 µs resolution, else per-frame deltas."""
    scaled = [float(t) * TIMING_UNITS_PER_MS for t in times]
    us = [round(v) for v in scaled] if all(math.isfinite(v) for v in scaled) else []
    if len(us) < 2 or any(abs(v) >= MAX_TIMING_US for v in us):
        raise ValueError(f"frame times must be 2 or more finite values below {MAX_TIMING_US} µs")
    deltas = [b - a for a, b in itertools.pairwise(us)]
    if len(set(deltas)) == 1:
        return bytes([0]) + write_svarint(us[0]) + write_svarint(deltas[0])
    return bytes([1]) + write_svarint(us[0]) + b"".join(write_svarint(d) for d in deltas)


def read_timing(payload: bytes, frames: int) -> tuple[float, ...]:
    """Frame times in ms of a TIMING payload for ``frames`` frames; BitstreamError when it is malformed."""
    what = "timing section"
    if not payload or payload[0] > 1:
        raise BitstreamError("corrupted timing section (unknown mode)")
    if frames < 2:
        raise BitstreamError(f"corrupted file (timing section for a {frames}-frame image)")
    t0, pos = read_svarint(payload, 1, what)
    if payload[0] == 0:
        step, pos = read_svarint(payload, pos, what)
        deltas = [step] * (frames - 1)
    else:
        deltas = []
        for _ in range(frames - 1):
            delta, pos = read_svarint(payload, pos, what)
            deltas.append(delta)
    if pos != len(payload):
        raise BitstreamError("corrupted timing section (unexpected trailing bytes)")
    us = [t0]
    for delta in deltas:
        us.append(us[-1] + delta)
    if any(abs(v) >= MAX_TIMING_US for v in us):
        raise BitstreamError("corrupted timing section (time out of range)")
    return tuple(v / TIMING_UNITS_PER_MS for v in us)
