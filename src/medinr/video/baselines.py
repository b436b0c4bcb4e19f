"""Standard video anchors for sequences: x264 and x265 through Debian's ``ffmpeg`` (4:0:0 gray, 8/10/12 bit
as the source needs, CRF sweeps, ``-preset medium`` and ``veryslow``), per-frame JPEG 2000
(:class:`medinr.bench.baselines.Jpeg2000`) and a NeRV-style INR (:mod:`medinr.video.nerv`).

Every file starts with a 6-byte side header (value offset int32, significant bits, right shift) so that
``decode(encode(...))`` needs nothing out of band and ``8 * len(data) / pixels`` counts everything. Samples
are coded as ``(value - offset) >> shift`` with ``offset`` the sequence's minimum, so a 0..734 cine in an
int16 container is coded as the 10-bit video it is; data deeper than a codec takes (x264: 10 bits, x265:
12) is shifted down first, which the codec's ``notes`` say.
"""

from __future__ import annotations

import struct
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from medinr.bench.baselines import Jpeg2000
from medinr.errors import BitstreamError, InputError, MedinrError
from medinr.io.image import bits_for_range
from medinr.io.sequence import DEFAULT_FPS, decode_gray_frames, run_ffmpeg

_SIDE = struct.Struct("<iBB")


@dataclass
class CodedVideo:
    """One baseline run: the real bytes, the decoder's output (source dtype) and timings."""

    codec: str
    rate: float
    data: bytes
    decoded: np.ndarray
    encode_seconds: float
    decode_seconds: float


def sample_range(stack: np.ndarray, max_bits: int) -> tuple[int, int, int]:
    """(offset, bits, shift): the sequence's minimum, the bits its span needs (8 at least) after a right
    shift that brings it to ``max_bits`` at most."""
    if stack.dtype.kind not in "iu":
        raise InputError(f"video baselines code integer samples, got {stack.dtype}")
    lo, hi = int(stack.min()), int(stack.max())
    bits = bits_for_range(0, hi - lo, signed=False)
    shift = max(0, bits - max_bits)
    return lo, bits - shift, shift


class VideoBaseline(ABC):
    """A sequence codec behind ``encode(stack, rate, fps) -> bytes`` / ``decode(bytes, shape, dtype)``."""

    name: ClassVar[str]
    rate_param: ClassVar[str]
    max_bits: ClassVar[int]

    @abstractmethod
    def sweep(self) -> list[float]:
        """Default rate points, from the largest file to the smallest."""

    @abstractmethod
    def _encode(self, samples: np.ndarray, bits: int, rate: float, fps: float) -> bytes:
        """Code unsigned ``bits``-bit samples (T, H, W)."""

    @abstractmethod
    def _decode(self, data: bytes, bits: int, shape: tuple[int, int, int]) -> np.ndarray:
        """The (T, H, W) samples of ``data`` written by ``_encode``."""

    def notes(self, stack: np.ndarray) -> list[str]:
        _, bits, shift = sample_range(stack, self.max_bits)
        return [f"{self.name}: {bits + shift}-bit data shifted right by {shift} to fit {bits} bits"] if shift else []

    def encode(self, stack: np.ndarray, rate: float, fps: float = DEFAULT_FPS) -> bytes:
        offset, bits, shift = sample_range(stack, self.max_bits)
        samples = ((stack.astype(np.int64) - offset) >> shift).astype(np.uint8 if bits <= 8 else np.uint16)
        return _SIDE.pack(offset, bits, shift) + self._encode(samples, bits, rate, fps)

    def decode(self, data: bytes, shape: tuple[int, int, int], dtype: np.dtype) -> np.ndarray:
        if len(data) <= _SIDE.size:
            raise BitstreamError(f"{self.name} file truncated")
        offset, bits, shift = _SIDE.unpack_from(data)
        if not 1 <= bits <= 16 or shift > 16:
            raise BitstreamError(f"{self.name} file has a corrupted side header")
        try:
            samples = self._decode(data[_SIDE.size:], bits, shape)
        except InputError as exc:
            raise BitstreamError(f"{self.name} stream does not decode ({exc})") from None
        if samples.shape != tuple(shape):
            raise BitstreamError(f"{self.name} stream decoded to {samples.shape}, expected {tuple(shape)}")
        values = (samples.astype(np.int64) << shift) + (offset + ((1 << shift) >> 1))
        info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
        return (np.clip(values, info.min, info.max) if info else values).astype(dtype)

    def run(self, stack: np.ndarray, rate: float, fps: float = DEFAULT_FPS) -> CodedVideo:
        """Encode, then decode the real bytes, timing both."""
        start = time.perf_counter()
        data = self.encode(stack, rate, fps)
        middle = time.perf_counter()
        decoded = self.decode(data, stack.shape, stack.dtype)
        return CodedVideo(self.name, rate, data, decoded, middle - start, time.perf_counter() - middle)


class FfmpegVideo(VideoBaseline):
    """libx264 / libx265 at a CRF, 4:0:0, one thread, raw elementary stream without SEI (no container
    or banner overhead)."""

    rate_param = "crf"
    encoder: ClassVar[str]
    stream_format: ClassVar[str]
    #: NAL unit types of SEI messages, stripped: the encoders' version-and-options banner is ~1-2 KB
    sei_types: ClassVar[str]

    def __init__(self, preset: str = "veryslow") -> None:
        self.preset = preset

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.encoder.removeprefix('lib')}-{self.preset}"

    def sweep(self) -> list[float]:
        """CRF 4-40 in steps of 3 (about 1.5 dB apart), so BD-rate finds several points in any overlap."""
        return [float(crf) for crf in range(4, 41, 3)]

    @staticmethod
    def pix_fmt(bits: int) -> str:
        return "gray" if bits <= 8 else "gray10le" if bits <= 10 else "gray12le"

    @abstractmethod
    def _threads(self) -> list[str]:
        """Encoder options pinning it to one thread."""

    def _encode(self, samples: np.ndarray, bits: int, rate: float, fps: float) -> bytes:
        from fractions import Fraction

        _, h, w = samples.shape
        fmt = self.pix_fmt(bits)
        return run_ffmpeg(["-f", "rawvideo", "-pix_fmt", fmt, "-s", f"{w}x{h}",
                           "-framerate", str(Fraction(fps).limit_denominator(1001)), "-i", "pipe:0",
                           "-c:v", self.encoder, "-preset", self.preset, "-crf", f"{rate:g}", "-pix_fmt", fmt,
                           *self._threads(), "-bsf:v", f"filter_units=remove_types={self.sei_types}",
                           "-f", self.stream_format, "pipe:1"],
                          samples.astype(samples.dtype.newbyteorder("<")).tobytes())

    def _decode(self, data: bytes, bits: int, shape: tuple[int, int, int]) -> np.ndarray:
        depth = 8 if bits <= 8 else 10 if bits <= 10 else 12
        return decode_gray_frames("pipe:0", depth, shape[1], shape[2], data, ("-f", self.stream_format))


class X264(FfmpegVideo):
    encoder = "libx264"
    stream_format = "h264"
    sei_types = "6"
    max_bits = 10

    def _threads(self) -> list[str]:
        return ["-threads", "1"]


class X265(FfmpegVideo):
    encoder = "libx265"
    stream_format = "hevc"
    sei_types = "39|40"
    max_bits = 12

    def _threads(self) -> list[str]:
        return ["-x265-params", "pools=1:frame-threads=1:log-level=error"]


class FrameJpeg2000(VideoBaseline):
    """JPEG 2000 per frame (OpenJPEG, 9/7 at a compression ratio); each codestream is length-prefixed."""

    name = "jpeg2000-frames"
    rate_param = "compression ratio"
    max_bits = 16

    def __init__(self) -> None:
        self.codec = Jpeg2000()

    def sweep(self) -> list[float]:
        return [4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]

    def _encode(self, samples: np.ndarray, bits: int, rate: float, fps: float) -> bytes:
        streams = [self.codec.encode(f, rate, bits=bits, signed=False) for f in samples]
        return b"".join(struct.pack("<I", len(s)) + s for s in streams)

    def _decode(self, data: bytes, bits: int, shape: tuple[int, int, int]) -> np.ndarray:
        frames, pos = [], 0
        while pos < len(data):
            if pos + 4 > len(data):
                raise BitstreamError("jpeg2000-frames file truncated")
            (size,) = struct.unpack_from("<I", data, pos)
            try:
                frames.append(self.codec.decode(data[pos + 4:pos + 4 + size], bits=bits, signed=False))
            except Exception as exc:  # OpenJPEG raises plain errors of several types on garbage
                raise BitstreamError(f"jpeg2000-frames: frame {len(frames)} does not decode ({exc})") from None
            pos += 4 + size
        if len(frames) != shape[0]:
            raise BitstreamError(f"jpeg2000-frames file holds {len(frames)} frames, expected {shape[0]}")
        return np.stack(frames)


def _nerv() -> VideoBaseline:
    from medinr.video.nerv import Nerv  # imports this module

    return Nerv()


VIDEO_BASELINES: dict[str, Callable[[], VideoBaseline]] = {
    "x264-medium": lambda: X264("medium"), "x264-veryslow": lambda: X264("veryslow"),
    "x265-medium": lambda: X265("medium"), "x265-veryslow": lambda: X265("veryslow"),
    "jpeg2000-frames": FrameJpeg2000, "nerv": _nerv,
}


def get_video_baseline(name: str) -> VideoBaseline:
    """A video baseline by name (one of :data:`VIDEO_BASELINES`)."""
    if name not in VIDEO_BASELINES:
        raise MedinrError(f"unknown video baseline {name!r}; known: {', '.join(VIDEO_BASELINES)}")
    return VIDEO_BASELINES[name]()
