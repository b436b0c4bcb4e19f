"""LEB128 variable-length integers (unsigned, and zig-zag signed) shared by the container and the entropy layer."""

from __future__ import annotations

from medinr.errors import BitstreamError


def write_uvarint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, high bit set on all but the last."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_uvarint(data: bytes, pos: int, what: str, max_bits: int = 63) -> tuple[int, int]:
    """Read an unsigned varint at ``pos``; returns (value, next position). ``what`` names it in errors."""
    result, shift = 0, 0
    while True:
        if pos >= len(data):
            raise BitstreamError(f"truncated {what}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos
        if shift > max_bits:
            raise BitstreamError(f"corrupted {what} (varint too long)")


def zigzag(value: int) -> int:
    """A signed integer as an unsigned one, small magnitudes small: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    return (value << 1) ^ (value >> 63)


def unzigzag(raw: int) -> int:
    """Inverse of :func:`zigzag`."""
    return (raw >> 1) ^ -(raw & 1)


def write_svarint(value: int) -> bytes:
    """Signed integer as zig-zag then unsigned varint (small magnitudes stay short)."""
    return write_uvarint(zigzag(value))


def read_svarint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    raw, pos = read_uvarint(data, pos, what)
    return unzigzag(raw), pos
