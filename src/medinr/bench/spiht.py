"""SPIHT (Said & Pearlman, 1996) on a CDF 9/7 wavelet: an embedded bit-plane codec, rate = bit budget.

The image minus its mean is padded (symmetric) to a multiple of ``2**levels``, transformed with PyWavelets'
``bior4.4`` (the CDF 9/7 pair of JPEG 2000) in periodization mode, and its coefficients are coded by set
partitioning in hierarchical trees, most significant bit plane first, until the bit budget is spent. This
is the binary-uncoded SPIHT of the paper (significance, sign and refinement bits written as they come, no
arithmetic coding stage, which would save roughly 5-10 % of the rate); the stream is embedded, so cutting
it anywhere is a valid lower-rate file. Spatial orientation trees: a coefficient of the lowest band has
the three coefficients at its place in the coarsest detail bands as children; every other coefficient
has the 2 x 2 block at twice its coordinates.

File: an 11-byte header (``<HHBbBf``: height, width, levels, top bit plane, packed bits-1 / signed /
padding-bit count, mean) followed by the bit stream.
"""

from __future__ import annotations

import math
import struct
import warnings

import numpy as np

from medinr.bench.baselines import BaselineCodec, _geometric
from medinr.errors import BitstreamError, RateControlError

_HEADER = struct.Struct("<HHBbBf")
_WAVELET = "bior4.4"
#: Bit planes coded below the top one at most (far below any useful rate for 16-bit data).
_MAX_PLANES = 40
#: Top-plane value written for an all-zero coefficient array (a constant image).
_EMPTY = -128


class _Exhausted(Exception):
    """The bit budget (encoder) or the stream (decoder) ran out: coding stops here."""


class _Trees:
    """Spatial orientation trees of a ``(height, width)`` Mallat layout with ``levels`` levels, on flat indices."""

    def __init__(self, height: int, width: int, levels: int) -> None:
        self.h, self.w = height, width
        self.h0, self.w0 = height >> levels, width >> levels
        self.levels = levels

    def roots(self) -> list[int]:
        return [i * self.w + j for i in range(self.h0) for j in range(self.w0)]

    def children(self, k: int) -> tuple[int, ...]:
        i, j = divmod(k, self.w)
        if i < self.h0 and j < self.w0:
            h0, w0, w = self.h0, self.w0, self.w
            return (i * w + j + w0, (i + h0) * w + j, (i + h0) * w + j + w0)
        if 2 * i >= self.h or 2 * j >= self.w:
            return ()
        a = 2 * i * self.w + 2 * j
        return (a, a + 1, a + self.w, a + self.w + 1)

    def has_grandchildren(self, k: int) -> bool:
        i, j = divmod(k, self.w)
        if i < self.h0 and j < self.w0:
            return self.levels >= 2
        return 4 * i < self.h and 4 * j < self.w

    def descendant_maxima(self, mag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per node, the largest magnitude among all descendants (D) and among descendants beyond the
        children (L); -1 where the set is empty, so no threshold ever finds it significant."""
        h, w, levels = self.h, self.w, self.levels
        d = np.full((h, w), -1.0)
        g = np.full((h, w), -1.0)
        subtree = mag.copy()  # max over the node and its descendants, final once its ring is processed
        for level in range(2, levels + 1):  # detail rings from fine to coarse
            hq, wq = h >> (level - 1), w >> (level - 1)
            ring = np.ones((hq, wq), dtype=bool)
            ring[:hq // 2, :wq // 2] = False
            child_max = subtree[:2 * hq, :2 * wq].reshape(hq, 2, wq, 2).max(axis=(1, 3))
            grand_max = d[:2 * hq, :2 * wq].reshape(hq, 2, wq, 2).max(axis=(1, 3))
            d[:hq, :wq][ring] = child_max[ring]
            g[:hq, :wq][ring] = grand_max[ring]
            subtree[:hq, :wq][ring] = np.maximum(mag[:hq, :wq], d[:hq, :wq])[ring]
        h0, w0 = self.h0, self.w0
        kids = [(slice(0, h0), slice(w0, 2 * w0)), (slice(h0, 2 * h0), slice(0, w0)),
                (slice(h0, 2 * h0), slice(w0, 2 * w0))]
        d[:h0, :w0] = np.max([subtree[s] for s in kids], axis=0)
        g[:h0, :w0] = np.max([d[s] for s in kids], axis=0)
        return d, g


def _levels_for(height: int, width: int) -> int:
    return int(min(6, max(1, math.floor(math.log2(min(height, width))) - 3)))


def _transform(x: np.ndarray, levels: int) -> np.ndarray:
    import pywt

    with warnings.catch_warnings():  # periodization has no boundary effects: PyWavelets' level warning is moot
        warnings.simplefilter("ignore", UserWarning)
        coeffs = pywt.wavedec2(x, _WAVELET, mode="periodization", level=levels)
    return pywt.coeffs_to_array(coeffs)[0]


def _inverse(arr: np.ndarray, levels: int) -> np.ndarray:
    import pywt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        template = pywt.wavedec2(np.zeros(arr.shape), _WAVELET, mode="periodization", level=levels)
    slices = pywt.coeffs_to_array(template)[1]
    coeffs = pywt.array_to_coeffs(arr, slices, output_format="wavedec2")
    return pywt.waverec2(coeffs, _WAVELET, mode="periodization")


def spiht_encode_bits(coeffs: np.ndarray, levels: int, budget: int) -> tuple[list[int], int]:
    """SPIHT bits of a Mallat-layout coefficient array, at most ``budget`` of them, and the top bit plane."""
    mag_arr = np.abs(coeffs)
    top = float(mag_arr.max())
    if top == 0.0:
        return [], _EMPTY
    nmax = math.floor(math.log2(top))
    trees = _Trees(*coeffs.shape, levels)
    d_arr, g_arr = trees.descendant_maxima(mag_arr)
    mag, neg = mag_arr.ravel().tolist(), (coeffs.ravel() < 0).tolist()
    dmax, gmax = d_arr.ravel().tolist(), g_arr.ravel().tolist()
    out: list[int] = []
    emit = out.append
    lip = trees.roots()
    lis: list[tuple[int, bool]] = [(k, True) for k in lip if trees.children(k)]
    lsp: list[int] = []
    try:
        for n in range(nmax, nmax - _MAX_PLANES, -1):
            t = 2.0 ** n
            new_sig: list[int] = []
            kept: list[int] = []
            for k in lip:
                if mag[k] >= t:
                    emit(1)
                    emit(int(neg[k]))
                    new_sig.append(k)
                else:
                    emit(0)
                    kept.append(k)
                if len(out) >= budget:
                    raise _Exhausted
            lip = kept
            index = 0
            waiting: list[tuple[int, bool]] = []  # insignificant sets, tested again at the next plane
            while index < len(lis):
                k, type_a = lis[index]
                index += 1
                if type_a:
                    if dmax[k] >= t:
                        emit(1)
                        for c in trees.children(k):
                            if mag[c] >= t:
                                emit(1)
                                emit(int(neg[c]))
                                new_sig.append(c)
                            else:
                                emit(0)
                                lip.append(c)
                        if trees.has_grandchildren(k):
                            lis.append((k, False))
                    else:
                        emit(0)
                        waiting.append((k, True))
                elif gmax[k] >= t:
                    emit(1)
                    lis.extend((c, True) for c in trees.children(k))
                else:
                    emit(0)
                    waiting.append((k, False))
                if len(out) >= budget:
                    raise _Exhausted
            lis = waiting
            for k in lsp:
                emit(int(mag[k] / t) & 1)
                if len(out) >= budget:
                    raise _Exhausted
            lsp += new_sig
    except _Exhausted:
        pass
    return out[:budget], nmax


def spiht_decode_bits(bits: list[int], shape: tuple[int, int], levels: int, nmax: int) -> np.ndarray:
    """Coefficients reconstructed from SPIHT ``bits`` (mid-interval reconstruction)."""
    rec = [0.0] * (shape[0] * shape[1])
    if nmax == _EMPTY:
        return np.zeros(shape)
    trees = _Trees(*shape, levels)
    stream = iter(bits)

    def read() -> int:
        bit = next(stream, None)
        if bit is None:
            raise _Exhausted
        return bit

    lip = trees.roots()
    lis: list[tuple[int, bool]] = [(k, True) for k in lip if trees.children(k)]
    lsp: list[int] = []

    def significant(k: int, t: float, into: list[int]) -> None:
        rec[k] = -1.5 * t if read() else 1.5 * t
        into.append(k)

    try:
        for n in range(nmax, nmax - _MAX_PLANES, -1):
            t = 2.0 ** n
            new_sig: list[int] = []
            kept: list[int] = []
            for k in lip:
                if read():
                    significant(k, t, new_sig)
                else:
                    kept.append(k)
            lip = kept
            index = 0
            waiting: list[tuple[int, bool]] = []
            while index < len(lis):
                k, type_a = lis[index]
                index += 1
                if type_a:
                    if read():
                        for c in trees.children(k):
                            if read():
                                significant(c, t, new_sig)
                            else:
                                lip.append(c)
                        if trees.has_grandchildren(k):
                            lis.append((k, False))
                    else:
                        waiting.append((k, True))
                elif read():
                    lis.extend((c, True) for c in trees.children(k))
                else:
                    waiting.append((k, False))
            lis = waiting
            half = 0.5 * t
            for k in lsp:
                step = half if read() else -half
                rec[k] += step if rec[k] > 0 else -step
            lsp += new_sig
    except _Exhausted:
        pass
    return np.asarray(rec).reshape(shape)


class Spiht(BaselineCodec):
    """SPIHT, binary-uncoded, on CDF 9/7 (see the module doc); ``rate`` is the file size in bits per pixel."""

    name = "spiht"
    rate_param = "bpp budget"
    rate_increases_bpp = True
    lossless_rate = None
    log_rate = True
    native_signed = True
    min_side = 16
    max_bits = 16

    def rate_range(self, bits: int) -> tuple[float, float]:
        return 0.01, float(bits)

    def sweep(self, bits: int) -> list[float]:
        return _geometric(0.05, max(4.0, bits / 2), 10)

    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        height, width = data.shape
        levels = _levels_for(height, width)
        block = 1 << levels
        mean = float(np.float32(data.mean()))
        padded = np.pad(data.astype(np.float64) - mean, ((0, -height % block), (0, -width % block)), mode="symmetric")
        budget = math.floor(rate * height * width) - 8 * _HEADER.size
        if budget < 0:
            raise RateControlError(f"spiht: {rate:g} bpp is below the {_HEADER.size}-byte header")
        out, nmax = spiht_encode_bits(_transform(padded, levels), levels, budget)
        pad = -len(out) % 8
        flags = (bits - 1) | (int(data.dtype.kind == "i") << 4) | (pad << 5)
        return _HEADER.pack(height, width, levels, nmax, flags, mean) + np.packbits(
            np.asarray(out, dtype=np.uint8)).tobytes()

    def _decode(self, data: bytes) -> np.ndarray:
        if len(data) < _HEADER.size:
            raise BitstreamError(f"spiht file of {len(data)} bytes is shorter than its header")
        height, width, levels, nmax, flags, mean = _HEADER.unpack_from(data)
        bits, signed, pad = (flags & 15) + 1, bool(flags & 16), flags >> 5
        if not 1 <= levels <= 6 or height < 1 or width < 1:
            raise BitstreamError(f"spiht header is corrupted (levels {levels}, shape {height}x{width})")
        block = 1 << levels
        shape = (height + (-height % block), width + (-width % block))
        stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8, offset=_HEADER.size))
        stream = stream[:stream.size - pad].tolist()
        x = _inverse(spiht_decode_bits(stream, shape, levels, nmax), levels)[:height, :width] + mean
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        return np.clip(np.rint(x), lo, hi).astype(np.int32)
