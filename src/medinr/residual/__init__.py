"""Near-lossless and lossless modes: every decoded sample within ``max_error`` (δ) of the source.

The file holds an optional INR prediction (the architecture's FRAME payloads, evaluated on decode by a
bit-exact forward, :mod:`medinr.archs.exact`) and one RESIDUAL section: the source minus that
prediction, coded near-losslessly with step ``2δ + 1`` by the context coder of
:mod:`medinr.residual.coder`. δ = 0 is lossless.

RESIDUAL payload (little-endian)::

    version u8 | δ (zig-zag varint) | flags u8 (bit 0: FRAME sections hold a prediction; bit 1, format 1.4:
    rate-distortion quantised, δ sets the step 2δ + 1 but bounds no error) |
    frames, height, width (varints) | [version 1: tile side (varint)] | per frame: start value (zig-zag varint) |
    digest (8 bytes) | range-coder words

Version 0 (format 1.1) codes each frame as one tile; version 1 (format 1.4) in square tiles coded side by side
(:class:`medinr.residual.coder._Layout`), which codes 2.5x faster for +0.0 to +1.8 % bytes (512 px cxr/train crops).

The shape repeats the header's so that a header whose shape was altered (with a recomputed CRC) is
refused at once instead of after decoding the whole stated image.

``digest`` is the first 8 bytes of :func:`medinr.verify.pixel_sha256` of the decoded pixels: a decoder
that reconstructs anything else (a corrupted file, or arithmetic that differs from the encoder's)
raises instead of returning wrong pixels.

Rate allocation: the encoder codes the residual with no prediction and with the INR at each rate in
``inr_bpps`` as side information (extra guided predictors and context), and keeps the smallest file.
The default tries no INR: on the data measured so far (a 128x128 chest X-ray crop from cxr/train, δ = 0
and 2, INR at 0.1, 0.3 and 1 bpp) every INR cost more bits than it saved, and each costs a full fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medinr.archs import ArchCodec, ProgressFn
from medinr.archs.exact import EXACT_PREDICTORS
from medinr.bitstream import MAX_FRAMES, MAX_SIDE, Container, Tag
from medinr.config import EncoderConfig
from medinr.errors import BitstreamError, InputError, RateControlError
from medinr.meta.inits import Init
from medinr.preprocess import Normalisation
from medinr.ratecontrol import RateTarget
from medinr.residual.coder import MAX_ABS_VALUE, decode_stack, encode_stack, tile_for
from medinr.varint import read_svarint, read_uvarint, write_svarint, write_uvarint
from medinr.verify import pixel_sha256, stored_sha256

#: section version without and with tiles, and the container minor version that reads each
UNTILED, TILED = 0, 1
SECTION_MINOR = {UNTILED: 1, TILED: 4}
FLAG_PREDICTED = 1
#: the encoder quantised rate-distortion optimally (:class:`medinr.residual.coder._Encoder`): δ is no error bound
FLAG_UNBOUNDED = 2
#: container minor version that reads the unbounded flag
UNBOUNDED_MINOR = 4
DIGEST_BYTES = 8
#: largest δ accepted (beyond it, the image is better coded lossily)
MAX_ERROR_LIMIT = 1 << 16

Predictor = Callable[[bytes, Any, Init, Normalisation, tuple[int, int]], np.ndarray]


@dataclass(frozen=True)
class Residual:
    """A parsed RESIDUAL section."""

    max_error: int
    predicted: bool
    shape: tuple[int, int, int]
    start: np.ndarray
    digest: bytes
    body: bytes
    #: tile side of the coder's layout, 0 for whole frames (version 0)
    tile: int = 0
    #: every decoded value is within ``max_error`` of the source (False: rate-distortion quantised)
    bounded: bool = True

    @property
    def format_minor(self) -> int:
        """The lowest container minor version whose readers decode this section."""
        return max(SECTION_MINOR[TILED if self.tile else UNTILED], 1 if self.bounded else UNBOUNDED_MINOR)

    @property
    def error_bound(self) -> int | None:
        """The largest error of any decoded value, or None when the section promises none."""
        return self.max_error if self.bounded else None

    def to_bytes(self) -> bytes:
        out = bytearray([TILED if self.tile else UNTILED])
        out += write_svarint(self.max_error)
        out.append((FLAG_PREDICTED if self.predicted else 0) | (0 if self.bounded else FLAG_UNBOUNDED))
        for n in self.shape:
            out += write_uvarint(n)
        if self.tile:
            out += write_uvarint(self.tile)
        for value in self.start:
            out += write_svarint(int(value))
        return bytes(out) + self.digest + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> Residual:
        if len(data) < 3 or data[0] not in SECTION_MINOR:
            raise BitstreamError("corrupted residual section (unknown version or truncated)")
        delta, pos = read_svarint(data, 1, "residual section")
        if not 0 <= delta <= MAX_ERROR_LIMIT or pos >= len(data) or data[pos] & ~(FLAG_PREDICTED | FLAG_UNBOUNDED) \
                or data[pos] & FLAG_UNBOUNDED and delta == 0:
            raise BitstreamError("corrupted residual section (invalid error bound or flags)")
        predicted, bounded = bool(data[pos] & FLAG_PREDICTED), not data[pos] & FLAG_UNBOUNDED
        pos += 1
        shape = []
        for limit in (MAX_FRAMES, MAX_SIDE, MAX_SIDE):
            n, pos = read_uvarint(data, pos, "residual section (shape)")
            if not 1 <= n <= limit:
                raise BitstreamError("corrupted residual section (invalid shape)")
            shape.append(n)
        tile = 0
        if data[0] == TILED:
            tile, pos = read_uvarint(data, pos, "residual section (tile)")
            if tile == 0:
                raise BitstreamError("corrupted residual section (tile size 0 in a tiled section)")
        start = []
        for _ in range(shape[0]):
            value, pos = read_svarint(data, pos, "residual section")
            if abs(value) > MAX_ABS_VALUE:
                raise BitstreamError("corrupted residual section (invalid start value)")
            start.append(value)
        if len(data) < pos + DIGEST_BYTES:
            raise BitstreamError("corrupted residual section (truncated digest)")
        return cls(delta, predicted, (shape[0], shape[1], shape[2]), np.array(start, dtype=np.int64),
                   data[pos:pos + DIGEST_BYTES], data[pos + DIGEST_BYTES:], tile, bounded)


def exact_predictor(arch: str, config: Any) -> Predictor | None:
    """The bit-exact predictor of an architecture and config, or None when there is none."""
    if arch not in EXACT_PREDICTORS or getattr(config, "activation", "sine") not in ("sine", "relu"):
        return None
    return EXACT_PREDICTORS[arch]


def _bounds(norm: Normalisation, dtype: np.dtype) -> tuple[int, int]:
    """The integer value range, checked against the dtype (a forged header cannot overflow anything)."""
    lo, hi = norm.value_min, norm.value_max
    info = np.iinfo(dtype) if dtype.kind in "iu" else None
    if info is None or lo != int(lo) or hi != int(hi) or not info.min <= lo <= hi <= info.max \
            or max(-lo, hi) > MAX_ABS_VALUE:
        raise BitstreamError("residual section needs an integer value range within the pixel dtype")
    return int(lo), int(hi)


def _code(pixels: np.ndarray, prediction: np.ndarray | None, delta: int, value_range: tuple[int, int],
          dtype: np.dtype, rdo: float = 0.0) -> tuple[Residual, float]:
    """The RESIDUAL section of an int64 stack given an optional prediction (int64, same shape), and the decoded
    stack's sum of squared errors; ``rdo`` > 0: rate-distortion quantised (:func:`encode_stack`, δ > 0 only)."""
    lo, hi = value_range
    tile = tile_for(*pixels.shape[1:])
    body, start, recon = encode_stack(pixels, delta, lo, hi, prediction, tile, rdo)
    decoded = np.clip(recon, lo, hi)
    return (Residual(delta, prediction is not None, pixels.shape, start, _digest(decoded, dtype), body, tile,
                     not rdo),
            float(np.square(decoded - pixels, dtype=np.float64).sum()))


def _digest(decoded: np.ndarray, dtype: np.dtype) -> bytes:
    return pixel_sha256(decoded.astype(dtype))[:DIGEST_BYTES]


@dataclass
class NearLossless:
    """What the encoder chose: the architecture config and init for the header, and the sections."""

    config: Any
    init: Init
    sections: list[tuple[Tag, bytes]]
    notes: list[str]
    #: bytes of prediction + residual per candidate tried ("none", "inr@0.1bpp", ...)
    sizes: dict[str, int]
    #: mean squared error of the decoded stack, in stored units (the encoder's mode decision compares it)
    mse: float
    #: the lowest container minor version that reads these sections
    format_minor: int


def encode_near_lossless(frames: np.ndarray, norm: Normalisation, max_error: int, modality: str,
                         arch_codec: ArchCodec, cfg: EncoderConfig, inr_bpps: Sequence[float] = (),
                         progress: ProgressFn | None = None, require_inr: bool = False,
                         rdo: float = 0.0) -> NearLossless:
    """Code a (N, H, W) integer stack within ``max_error``: no INR, or the INR at each of ``inr_bpps``
    plus the residual, whichever file is smallest (``require_inr``: the smallest with an INR, for tests
    and measurements). ``rdo`` > 0: the step of ``max_error`` quantised rate-distortion optimally with that λ
    factor, and no bound on the error (``arch=auto``'s predictive files, :func:`medinr.codec._predictive_if_better`)."""
    if frames.dtype.kind not in "iu":
        raise InputError(f"--max-error needs integer pixels, got {frames.dtype}")
    if not 0 <= max_error <= MAX_ERROR_LIMIT:
        raise RateControlError(f"invalid max error {max_error}: must be an integer in [0, {MAX_ERROR_LIMIT}]")
    dtype = frames.dtype
    value_range = _bounds(norm, dtype)
    pixels = frames.astype(np.int64)
    _, height, width = frames.shape
    base_config = arch_codec.plan(height, width, cfg, RateTarget("quality"), None, modality)
    residual, sse = _code(pixels, None, max_error, value_range, dtype, rdo)
    best = (len(residual.body), base_config, arch_codec.default_init(base_config, modality), [], residual, sse)
    sizes = {"none": best[0]}
    notes: list[str] = []
    bpps = tuple(inr_bpps)
    if bpps and exact_predictor(arch_codec.name, base_config) is None:
        notes.append(f"architecture {arch_codec.name!r} with activation {cfg.activation!r} has no bit-exact "
                     "predictor: residual coded without an INR")
        bpps = ()
    for bpp in bpps:
        budget = bpp * height * width / 8
        target = RateTarget("bpp", bpp)
        config = arch_codec.plan(height, width, cfg, target, budget, modality)
        init = arch_codec.default_init(config, modality)
        predict = exact_predictor(arch_codec.name, config)
        payloads = []
        for i, frame in enumerate(frames):
            label = f"INR {bpp:g} bpp, frame {i + 1}/{len(frames)}: " if len(frames) > 1 else f"INR {bpp:g} bpp: "
            payloads.append(arch_codec.encode_frame(frame, norm, config, init, cfg, target, budget, progress,
                                                    label)[0])
        prediction = np.stack([predict(p, config, init, norm, (height, width)) for p in payloads])
        residual, sse = _code(pixels, prediction, max_error, value_range, dtype, rdo)
        size = len(residual.body) + sum(len(p) for p in payloads)
        sizes[f"inr@{bpp:g}bpp"] = size
        if size < best[0] or (require_inr and not best[3]):
            best = (size, config, init, payloads, residual, sse)
    _, config, init, payloads, residual, sse = best
    if require_inr and not payloads:
        raise InputError("an INR was required but none could be fitted (no bit-exact predictor or no INR rate)")
    sections = [(Tag.FRAME, p) for p in payloads] + [(Tag.RESIDUAL, residual.to_bytes())]
    return NearLossless(config, init, sections, notes, sizes, sse / pixels.size, residual.format_minor)


def residual_of(container: Container) -> Residual | None:
    """The file's RESIDUAL section, parsed, or None for a plain lossy file."""
    payloads = container.payloads(Tag.RESIDUAL)
    if not payloads:
        return None
    if len(payloads) > 1:
        raise BitstreamError(f"file holds {len(payloads)} residual sections, expected one")
    return Residual.from_bytes(payloads[0])


def decode_near_lossless(container: Container, residual: Residual, config: Any, init: Init) -> np.ndarray:
    """Decoded (N, H, W) pixels of a file with a RESIDUAL section, checked against the encoder's digest."""
    header = container.header
    dtype = np.dtype(header.dtype)
    norm = Normalisation(header.norm_mean, header.norm_std, header.value_min, header.value_max)
    lo, hi = _bounds(norm, dtype)
    shape = (header.frames, header.height, header.width)
    if residual.shape != shape:
        raise BitstreamError(f"residual section is for a {'x'.join(map(str, residual.shape))} image, header says "
                             f"{'x'.join(map(str, shape))}")
    payloads = container.payloads(Tag.FRAME)
    if len(payloads) != (header.frames if residual.predicted else 0):
        raise BitstreamError(f"file holds {len(payloads)} frame sections, residual section expects "
                             f"{header.frames if residual.predicted else 0}")
    if residual.predicted:
        predict = exact_predictor(header.arch, config)
        if predict is None:
            raise BitstreamError(f"no bit-exact predictor for architecture {header.arch!r} in this medinr")
        prediction = np.stack([predict(p, config, init, norm, shape[1:]) for p in payloads])
    else:
        prediction = None
    recon = decode_stack(residual.body, shape, residual.max_error, lo, hi, residual.start, prediction, residual.tile)
    pixels = np.clip(recon, lo, hi).astype(dtype)
    if _digest(pixels, dtype) != residual.digest:
        raise BitstreamError("decoded pixels do not match the encoder's checksum (corrupted file, or a decoder "
                             "whose arithmetic differs from the encoder's)")
    source = stored_sha256(container)
    if residual.error_bound == 0 and source is not None and pixel_sha256(pixels) != source:
        raise BitstreamError("lossless decode does not match the source's SHA-256 (corrupted file)")
    return pixels
