"""Standard image codecs behind one interface, as anchors for the benchmark.

Each baseline codes one 2D image of integer stored values (``bits`` significant bits, signed or not) into
the plain file its library writes, so ``bpp = 8 * len(data) / pixels`` counts everything that file holds.
Bit depth and signedness travel out of band (as DICOM keeps them in its header), so ``decode`` is told
them again. Codecs that cannot code signed samples get the data offset by ``2**(bits-1)`` on encode and
back on decode, in one place (:meth:`BaselineCodec.encode` / :meth:`BaselineCodec.decode`).

Backends: imagecodecs for JPEG (libjpeg-turbo, 8 and 12 bit), HTJ2K (OpenJPH), JPEG-LS (CharLS),
JPEG XL (libjxl) and AVIF (libavif); pylibjpeg-openjpeg for JPEG 2000, because it exposes OpenJPEG's
compression-ratio rate control (imagecodecs' ``jpeg2k_encode`` only offers a PSNR target, which was not
monotonic in rate on our 12-bit data).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from medinr.errors import MedinrError, RateControlError


class UnsupportedInput(MedinrError):
    """A baseline codec cannot code this image (bit depth, size, dtype); the message says why."""


def storage_dtype(bits: int, signed: bool) -> np.dtype:
    """Smallest NumPy integer dtype holding ``bits``-bit samples: what every baseline decodes to."""
    return np.dtype(f"{'i' if signed else 'u'}{1 if bits <= 8 else 2}")


def to_unsigned(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Signed ``bits``-bit samples shifted by ``2**(bits-1)`` into ``[0, 2**bits)``, for unsigned-only codecs."""
    return (pixels.astype(np.int32) + (1 << (bits - 1))).astype(storage_dtype(bits, signed=False))


def from_unsigned(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`to_unsigned`."""
    return (pixels.astype(np.int32) - (1 << (bits - 1))).astype(storage_dtype(bits, signed=True))


def _geometric(lo: float, hi: float, n: int) -> list[float]:
    return [float(v) for v in np.geomspace(lo, hi, n)]


class BaselineCodec(ABC):
    """One standard codec: ``encode`` a 2D image at a rate parameter, ``decode`` it back.

    Subclasses set the class attributes and implement ``_encode``/``_decode`` on data already in
    the codec's sample format (unsigned when ``native_signed`` is False).
    """

    name: ClassVar[str]
    #: What ``rate`` means, for reports ("compression ratio", "quality", "distance", ...).
    rate_param: ClassVar[str]
    #: True when a larger rate value gives a larger file (quality); False for ratio, step, distance.
    rate_increases_bpp: ClassVar[bool]
    #: The rate value that codes losslessly, or None when the codec has no lossless mode here.
    lossless_rate: ClassVar[float | None]
    #: Rate values are integers (JPEG quality, JPEG-LS NEAR).
    integer_rate: ClassVar[bool] = False
    #: Rate searches run on log(rate) (ratios, steps, distances) rather than on rate.
    log_rate: ClassVar[bool] = False
    native_signed: ClassVar[bool] = False
    max_bits: ClassVar[int] = 16
    min_side: ClassVar[int] = 1

    def available(self) -> str | None:
        """None when the backend library is usable, else why not (naming the missing library)."""
        return None

    def supports(self, pixels: np.ndarray, bits: int, signed: bool) -> str | None:
        """None if this codec can code ``pixels`` as ``bits``-bit (signed) samples, else the reason."""
        missing = self.available()
        if missing:
            return missing
        if pixels.ndim != 2:
            return f"{self.name} codes one 2D image at a time, got shape {pixels.shape}"
        if pixels.dtype.kind not in "iu":
            return f"{self.name} codes integer stored values, got dtype {pixels.dtype}"
        if not 2 <= bits <= self.max_bits:
            return f"{self.name} codes 2 to {self.max_bits} bits per sample, not {bits}"
        if min(pixels.shape) < self.min_side:
            return f"{self.name} needs at least {self.min_side} px per side, got {pixels.shape}"
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if pixels.min() < lo or pixels.max() > hi:
            return (f"values [{pixels.min()}, {pixels.max()}] do not fit {bits}-bit "
                    f"{'signed' if signed else 'unsigned'} samples")
        return None

    @abstractmethod
    def rate_range(self, bits: int) -> tuple[float, float]:
        """Valid lossy rate values ``(low, high)`` in ``rate_param`` units; searches stay inside."""

    @abstractmethod
    def sweep(self, bits: int) -> list[float]:
        """Default lossy rate points in ascending order, roughly 0.05-4 bpp on 8-bit images, higher for deeper data."""

    @abstractmethod
    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        """Code samples in this codec's format (unsigned unless ``native_signed``)."""

    @abstractmethod
    def _decode(self, data: bytes) -> np.ndarray:
        """Decode a file written by ``_encode`` to its sample array."""

    def encode(self, pixels: np.ndarray, rate: float, *, bits: int, signed: bool) -> bytes:
        """Code one 2D image; ``rate`` is in ``rate_param`` units (``lossless_rate`` for lossless).

        Raises UnsupportedInput (with the reason) for anything :meth:`supports` rejects, including a
        backend library that is missing, and RateControlError for a rate outside :meth:`rate_range`.
        """
        pixels = np.asarray(pixels)
        reason = self.supports(pixels, bits, signed)
        if reason:
            raise UnsupportedInput(reason)
        lo, hi = self.rate_range(bits)
        if rate != self.lossless_rate and not lo <= rate <= hi:
            lossless = "" if self.lossless_rate is None else f", or {self.lossless_rate:g} for lossless"
            raise RateControlError(f"{self.name} {self.rate_param} must lie in [{lo:g}, {hi:g}]{lossless}, "
                                   f"got {rate:g}")
        if signed and not self.native_signed:
            data = to_unsigned(pixels, bits)
        else:
            data = pixels.astype(storage_dtype(bits, signed), copy=False)
        return self._encode(np.ascontiguousarray(data), float(rate), bits)

    def decode(self, data: bytes, *, bits: int, signed: bool) -> np.ndarray:
        """Decode to the image's storage dtype (:func:`storage_dtype`), undoing any signed offset."""
        out = self._decode(data)
        if signed and not self.native_signed:
            return from_unsigned(out, bits)
        return out.astype(storage_dtype(bits, signed), copy=False)

    def describe(self, data: bytes) -> dict[str, Any] | None:
        """The decoder model a file carries (a network's size, for INR codecs); None for transform codecs."""
        return None

    def encode_lossless(self, pixels: np.ndarray, *, bits: int, signed: bool) -> bytes:
        """Lossless file of ``pixels``; UnsupportedInput for codecs without a lossless mode."""
        if self.lossless_rate is None:
            raise UnsupportedInput(f"{self.name} has no lossless mode")
        return self.encode(pixels, self.lossless_rate, bits=bits, signed=signed)


class _ImagecodecsCodec(BaselineCodec):
    """A baseline whose backend is an imagecodecs codec, usable only if imagecodecs was built with it."""

    #: Name of the imagecodecs codec class whose ``available`` flag says whether it was built in.
    flag: ClassVar[str]

    def available(self) -> str | None:
        import imagecodecs

        codec = getattr(imagecodecs, self.flag, None)
        if codec is None or not codec.available:
            return f"{self.name} is unavailable: imagecodecs was built without {self.flag}"
        return None


class Jpeg(_ImagecodecsCodec):
    """ISO 10918 lossy JPEG (libjpeg-turbo): baseline 8-bit, or 12-bit extended for 9-12 bit data."""

    name = "jpeg"
    rate_param = "quality"
    rate_increases_bpp = True
    lossless_rate = None
    integer_rate = True
    max_bits = 12
    flag = "JPEG8"

    def supports(self, pixels: np.ndarray, bits: int, signed: bool) -> str | None:
        if bits > self.max_bits:
            return f"JPEG (ISO 10918 lossy) is 8- or 12-bit only, not {bits}-bit"
        return super().supports(pixels, bits, signed)

    def rate_range(self, bits: int) -> tuple[float, float]:
        return 1.0, 100.0

    def sweep(self, bits: int) -> list[float]:
        return [5.0, 10.0, 20.0, 30.0, 50.0, 70.0, 80.0, 90.0, 95.0, 98.0]

    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        import imagecodecs

        return imagecodecs.jpeg8_encode(data, level=round(rate), bitspersample=8 if bits <= 8 else 12)

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        return imagecodecs.jpeg8_decode(data)


class Jpeg2000(BaselineCodec):
    """JPEG 2000 Part 1 (OpenJPEG): 9/7 wavelet at a target compression ratio, 5/3 lossless at ratio 0.

    Six resolution levels (pylibjpeg-openjpeg's fixed setting), so each side needs 32 px; the ratio is
    relative to the raw size at ``bits`` bits per sample, one quality layer, raw J2K codestream.
    """

    name = "jpeg2000"
    rate_param = "compression ratio"
    rate_increases_bpp = False
    lossless_rate = 0.0
    log_rate = True
    native_signed = True
    min_side = 32

    def available(self) -> str | None:
        import importlib.util

        if importlib.util.find_spec("openjpeg") is None:
            return "jpeg2000 is unavailable: the package pylibjpeg-openjpeg is not installed"
        return None

    def rate_range(self, bits: int) -> tuple[float, float]:
        return 1.0, bits / 0.005

    def sweep(self, bits: int) -> list[float]:
        # 0.02 to 0.75 bits bpp, 16 points (about 1.45x apart): smooth full-size X-rays are at 40 dB at 0.05 bpp
        # (SIIM CR), 256 px crops of JPEG-sourced ones need 3-5 bpp for 45-50 dB; ``--bpps auto`` takes medinr's
        # targets from this curve over 35-50 dB, and a BD-rate needs two of its points inside the overlap
        return [bits / target for target in _geometric(max(6.0, 0.75 * bits), 0.02, 16)]  # ascending ratios

    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        from openjpeg.utils import encode_array

        ratios = None if rate == self.lossless_rate else [rate]
        return bytes(encode_array(data, bits_stored=bits, compression_ratios=ratios))

    def _decode(self, data: bytes) -> np.ndarray:
        import openjpeg

        return openjpeg.decode(data)


class Htj2k(_ImagecodecsCodec):
    """High-throughput JPEG 2000 (OpenJPH): irreversible 9/7 at a quantisation step, reversible at step 0.

    OpenJPH declares 8 or 16 bits per sample (the container dtype), so the step is relative to that
    range; the sweep rescales it to the data's own bit depth.
    """

    name = "htj2k"
    rate_param = "quantization step"
    rate_increases_bpp = False
    lossless_rate = 0.0
    log_rate = True
    native_signed = True
    flag = "HTJ2K"

    @staticmethod
    def _step_scale(bits: int) -> float:
        return 2.0 ** (bits - (8 if bits <= 8 else 16))

    def rate_range(self, bits: int) -> tuple[float, float]:
        return 1e-5, 1.0  # imagecodecs treats steps under 1e-5 as lossless and clips above 1

    def sweep(self, bits: int) -> list[float]:
        finest = 0.002 * 2.0 ** (-(bits - 8) / 2)  # deeper data needs finer steps to reach high rates
        steps = _geometric(finest, 0.5, 10 + (bits - 8) // 2)
        return sorted({max(s * self._step_scale(bits), 1e-5) for s in steps})

    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        import imagecodecs

        return imagecodecs.htj2k_encode(data, level=rate)

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        return imagecodecs.htj2k_decode(data)


class JpegLs(_ImagecodecsCodec):
    """JPEG-LS (CharLS): near-lossless with maximum error NEAR, lossless at NEAR 0.

    imagecodecs declares 8 or 16 bits per sample (the container dtype), so 9-15 bit data is coded as
    16-bit, which costs JPEG-LS a little rate on such data.
    """

    name = "jpegls"
    rate_param = "NEAR (max abs error)"
    rate_increases_bpp = False
    lossless_rate = 0.0
    integer_rate = True
    flag = "JPEGLS"

    def rate_range(self, bits: int) -> tuple[float, float]:
        return 1.0, float(min(255, 2 ** (bits - 1) - 1))  # T.87 caps NEAR at min(255, MAXVAL / 2)

    def sweep(self, bits: int) -> list[float]:
        return sorted({float(round(v)) for v in _geometric(1.0, min(255.0, 2.0 ** (bits - 3)), 10)})

    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        import imagecodecs

        return imagecodecs.jpegls_encode(data, level=round(rate))

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        return imagecodecs.jpegls_decode(data)


class JpegXl(_ImagecodecsCodec):
    """JPEG XL (libjxl): VarDCT at a Butteraugli distance, modular lossless at distance 0."""

    name = "jpegxl"
    rate_param = "distance"
    rate_increases_bpp = False
    lossless_rate = 0.0
    log_rate = True
    flag = "JPEGXL"

    def rate_range(self, bits: int) -> tuple[float, float]:
        return 0.01, 25.0

    def sweep(self, bits: int) -> list[float]:
        return [0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0]

    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        import imagecodecs

        bps = None if bits in (8, 16) else bits
        if rate == self.lossless_rate:
            return imagecodecs.jpegxl_encode(data, lossless=True, bitspersample=bps, numthreads=1)
        return imagecodecs.jpegxl_encode(data, distance=rate, bitspersample=bps, numthreads=1)

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        return imagecodecs.jpegxl_decode(data, numthreads=1)


class Avif(_ImagecodecsCodec):
    """AVIF (libavif, AV1 intra) at a quality 0-100, monochrome 4:0:0, 8/10/12-bit; quality 100 is lossless.

    imagecodecs codes a 2D array losslessly whatever the quality, so lossy files are made from the grey
    image repeated to RGB and converted to 4:0:0 (luma only), which decodes back to the grey values.
    Encoder speed 4 (of 0-10): about 8 % larger files than libavif's slowest default at a 256 px crop,
    17 times faster; set ``speed = None`` on an instance for the library default.
    """

    name = "avif"
    rate_param = "quality"
    rate_increases_bpp = True
    lossless_rate = 100.0
    integer_rate = True
    max_bits = 12
    flag = "AVIF"
    speed: int | None = 4

    def supports(self, pixels: np.ndarray, bits: int, signed: bool) -> str | None:
        if bits > self.max_bits:
            return f"AVIF (AV1) codes at most 12 bits per sample, not {bits}"
        return super().supports(pixels, bits, signed)

    def rate_range(self, bits: int) -> tuple[float, float]:
        return 0.0, 99.0

    def sweep(self, bits: int) -> list[float]:
        return [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0]

    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        import imagecodecs

        depth = 8 if bits <= 8 else 10 if bits <= 10 else 12
        quality = round(rate)
        if quality >= self.lossless_rate:
            return imagecodecs.avif_encode(data, level=100, bitspersample=depth, speed=self.speed, numthreads=1)
        rgb = np.ascontiguousarray(np.repeat(data[..., None], 3, axis=-1))
        return imagecodecs.avif_encode(rgb, level=quality, bitspersample=depth, pixelformat="yuv400",
                                       speed=self.speed, numthreads=1)

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        out = imagecodecs.avif_decode(data, numthreads=1)
        return out[..., 0] if out.ndim == 3 else out


BASELINES: dict[str, type[BaselineCodec]] = {
    cls.name: cls for cls in (Jpeg, Jpeg2000, Htj2k, JpegLs, JpegXl, Avif)
}


def get_baseline(name: str) -> BaselineCodec:
    """A baseline codec by name (one of :data:`BASELINES`)."""
    try:
        return BASELINES[name]()
    except KeyError:
        raise MedinrError(f"unknown baseline codec {name!r}; known: {', '.join(BASELINES)}") from None


def encode_to_bpp(codec: BaselineCodec, pixels: np.ndarray, target_bpp: float, *, bits: int, signed: bool,
                  tolerance: float = 0.05, max_steps: int = 30) -> tuple[bytes, float]:
    """Bisect the codec's rate parameter until the file is within ``tolerance`` of ``target_bpp``.

    Returns the file and the rate value used, for matched-bpp comparisons. Raises RateControlError,
    naming the closest bpp reached, when the target is out of the codec's range or integer rate steps
    cannot land within the tolerance.
    """
    if target_bpp <= 0:
        raise RateControlError(f"target bpp must be positive, got {target_bpp}")
    num_pixels = np.asarray(pixels).size
    tried: dict[float, bytes] = {}

    def bpp_at(rate: float) -> float:
        if rate not in tried:
            tried[rate] = codec.encode(pixels, rate, bits=bits, signed=signed)
        return 8.0 * len(tried[rate]) / num_pixels

    lo, hi = codec.rate_range(bits)

    def rate_of(u: float) -> float:
        rate = min(max(math.exp(u) if codec.log_rate else u, lo), hi)
        return float(round(rate)) if codec.integer_rate else rate

    # u runs from the fewest bits to the most bits, whatever the direction of the rate parameter
    u_lo, u_hi = (math.log(lo), math.log(hi)) if codec.log_rate else (lo, hi)
    if not codec.rate_increases_bpp:
        u_lo, u_hi = u_hi, u_lo
    if bpp_at(rate_of(u_lo)) <= target_bpp <= bpp_at(rate_of(u_hi)):
        for _ in range(max_steps):
            u_mid = 0.5 * (u_lo + u_hi)
            rate = rate_of(u_mid)
            if codec.integer_rate and rate in (rate_of(u_lo), rate_of(u_hi)):
                break
            reached = bpp_at(rate)
            if abs(reached / target_bpp - 1.0) <= tolerance:
                break
            u_lo, u_hi = (u_mid, u_hi) if reached < target_bpp else (u_lo, u_mid)
    best = min(tried, key=lambda r: abs(bpp_at(r) - target_bpp))
    if abs(bpp_at(best) / target_bpp - 1.0) > tolerance:
        raise RateControlError(f"{codec.name} cannot reach {target_bpp:.4g} bpp within {tolerance:.0%} on this "
                               f"image: closest {bpp_at(best):.4g} bpp at {codec.rate_param} {best:g}")
    return tried[best], best
