"""The public codec: ``encode(image) -> bytes``, ``decode(bytes) -> MedicalImage``, with rate control.

Stacks (N, H, W) are coded frame by frame into one file. The container, z-score normalisation,
metadata and rate-target plumbing live here; how a frame becomes a payload is the architecture's
business (:mod:`medinr.archs`). :func:`encode_report` decodes the real bytes with the real decoder
and measures the result.
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from medinr.archs import ARCH_CODECS, ArchCodec, ProgressFn, get_arch
from medinr.bitstream import Container, Header, Tag, read_container, read_timing, timing_section, write_container
from medinr.config import NEAR_LOSSLESS_ARCH, preset_config, resolve_arch
from medinr.errors import BitstreamError, InputError, MedinrError, RateControlError
from medinr.io.common import make_image
from medinr.io.image import MedicalImage
from medinr.meta.inits import RANDOM, FileInitCodec, Init, check_digest, read_init_file
from medinr.metrics import default_peak
from medinr.preprocess import Normalisation
from medinr.ratecontrol import RateTarget
from medinr.residual import MAX_ERROR_LIMIT, decode_near_lossless, residual_of

MODALITIES = ("auto", "cxr", "mri", "cine", "ct", "generic")
#: a bpp target is met when the file is within this share of it (else a RateWarning says how close it came)
RATE_TOLERANCE = 0.05


class RateWarning(UserWarning):
    """A rate or quality target could not be met exactly; the closest achievable result was produced."""


@dataclass
class EncodeResult:
    """What :func:`encode_report` measured by decoding the real bytes."""

    data: bytes
    decoded: MedicalImage
    metrics: dict[str, Any]
    encode_seconds: float
    decode_seconds: float
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModalityChoice:
    """The modality an encode uses and how it was chosen: ``given`` (by the caller), ``tags`` (DICOM) or
    ``classifier`` (:mod:`medinr.features.classifier`, with the probability of its choice)."""

    modality: str
    source: str
    confidence: float | None = None

    def __str__(self) -> str:
        return f"{self.modality} ({self.source}" + ("" if self.confidence is None else
                                                     f", confidence {self.confidence:.2f}") + ")"


def detect_modality(image: MedicalImage) -> ModalityChoice:
    """Modality family from DICOM Modality / BodyPartExamined; when they say nothing (no tags, or OT), from
    the hybrid-feature classifier (``generic`` when it is unsure); ``generic`` for other modalities."""
    modality = (image.modality or "").upper()
    body = (image.body_part or "").upper()
    if modality in ("CR", "DX") or (modality in ("", "OT") and "CHEST" in body):
        return ModalityChoice("cxr", "tags")
    if modality == "MR":
        return ModalityChoice("cine" if image.frame_times and image.frames > 1 else "mri", "tags")
    if modality == "CT":
        return ModalityChoice("ct", "tags")
    if modality in ("", "OT"):
        from medinr.features.classifier import installed_classifier

        chosen, confidence = installed_classifier().choose(image)
        return ModalityChoice(chosen, "classifier", confidence)
    return ModalityChoice("generic", "tags")


def _as_image(image: MedicalImage | np.ndarray) -> MedicalImage:
    if isinstance(image, MedicalImage):
        return image
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a MedicalImage or a NumPy array, got {type(image).__name__}")
    return make_image(image, source_format="array")


def _coding_units(arch_codec: ArchCodec, frames: np.ndarray) -> list[np.ndarray]:
    """What each FRAME section codes: every 2D frame, or the whole stack for joint (video) architectures."""
    return [frames] if arch_codec.joint_frames else list(frames)


def _header_for(image: MedicalImage, norm: Normalisation, modality: str, arch: str, arch_config: bytes,
                init: Init) -> Header:
    return Header(height=image.height, width=image.width, frames=image.frames, dtype=image.pixels.dtype.name,
                  bits_stored=image.bits_stored, signed=image.signed, photometric=image.photometric,
                  modality=modality, value_min=norm.value_min, value_max=norm.value_max, norm_mean=norm.mean,
                  norm_std=norm.std, rescale_slope=float(image.rescale_slope),
                  rescale_intercept=float(image.rescale_intercept), arch=arch, arch_config=arch_config,
                  init_name=init.name, init_hash=init.digest)


def _metadata_section(image: MedicalImage) -> bytes | None:
    """The source DICOM attributes (no pixels), zlib-compressed, so a decoded DICOM keeps patient/study/series."""
    dataset = image.metadata.get("dicom")
    if dataset is None:
        return None
    import pydicom

    buffer = io.BytesIO()
    ds = pydicom.Dataset(dataset)
    ds.file_meta = getattr(dataset, "file_meta", pydicom.dataset.FileMetaDataset())
    ds.pop("PixelData", None)
    pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
    return zlib.compress(buffer.getvalue(), 9)


def _timing_sections(image: MedicalImage) -> list[tuple[Tag, bytes]]:
    """The TIMING section when the source is a sequence with one time per frame (kept without metadata too:
    timing is not patient data); none for still images, so their streams stay format 1.1."""
    times = image.frame_times
    if image.frames < 2 or times is None or len(times) != image.frames:
        return []
    try:
        return [(Tag.TIMING, timing_section(times))]
    except ValueError as exc:
        raise InputError(f"cannot store the frame times: {exc}") from None


def validate_targets(bpp: float | None, psnr: float | None, modality: str = "auto") -> None:
    """Refuse impossible or contradictory targets before any work starts."""
    if bpp is not None and psnr is not None:
        raise RateControlError("give either a bpp or a PSNR target, not both")
    if bpp is not None and not (0 < bpp < 64):
        raise RateControlError(f"impossible bpp target {bpp}: must be in (0, 64)")
    if psnr is not None and not (0 < psnr < 200):
        raise RateControlError(f"impossible PSNR target {psnr} dB: must be in (0, 200)")
    if modality not in MODALITIES:
        raise InputError(f"unknown modality {modality!r}: choose one of {', '.join(MODALITIES)}")


def encode(image: MedicalImage | np.ndarray, *, bpp: float | None = None, psnr: float | None = None,
           preset: str = "balanced", modality: str = "auto", keep_metadata: bool = False,
           progress: ProgressFn | None = None, max_error: int | None = None,
           inr_bpps: Sequence[float] = (), source_hash: bool = False, init_file: str | os.PathLike[str] | None = None,
           **options: Any) -> bytes:
    """Compress an image to ``.minr`` bytes.

    ``bpp``: target size in bits per pixel of the whole file (header included); ``psnr``: smallest
    file reaching this PSNR (peak = the image's max - min); neither: the preset's network with the
    coarsest steps that cost at most ``quantisation_loss_db`` against the unquantised fit.
    ``options`` override preset fields (e.g. ``default_width=32``, ``fit_steps=500``).
    ``max_error``: near-lossless (every stored value within it; 0 = lossless): a context-coded residual,
    with the INR at each of ``inr_bpps`` as side information if that is smaller (:mod:`medinr.residual`).
    ``source_hash``: store the SHA-256 of the source pixels (``medinr verify``).
    ``init_file``: start from this init file (``medinr meta-train``) instead of the installed init; its
    architecture is used when ``arch`` is auto, and decoding then needs the same file.
    """
    image = _as_image(image)
    validate_targets(bpp, psnr, modality)
    cfg = preset_config(preset, **options)
    modality = detect_modality(image).modality if modality == "auto" else modality
    user_init = None if init_file is None else read_init_file(init_file)
    if user_init is not None and cfg.arch == "auto":
        cfg.arch = user_init.arch
    time_series = image.pixels.ndim == 3 and len(image.pixels) >= 2 and (image.frame_times is not None
                                                                          or modality == "cine")
    auto = cfg.arch == "auto"
    cfg.arch = resolve_arch(cfg.arch, modality, max_error is not None, time_series)
    try:
        arch_codec = get_arch(cfg.arch)
    except KeyError:
        raise MedinrError(f"unknown architecture {cfg.arch!r}: choose auto or one of {', '.join(ARCH_CODECS)}") \
            from None
    if user_init is not None:
        arch_codec = FileInitCodec(arch_codec, user_init, init_file)
        cfg = arch_codec.encoder_config(cfg)
    torch.set_num_threads(max(1, min(cfg.threads, os.cpu_count() or 1)))
    frames = image.frame_stack()
    norm = Normalisation.of(frames)
    metadata = _metadata_section(image) if keep_metadata else None
    extra = [(Tag.METADATA, metadata)] if metadata else []
    extra += _timing_sections(image)
    target = RateTarget.from_args(bpp, psnr)
    if source_hash:
        from medinr.verify import hash_section

        extra.append((Tag.HASH, hash_section(frames)))
    if max_error is not None:
        return _encode_near_lossless(image, frames, norm, modality, arch_codec, cfg, extra, target, max_error,
                                     inr_bpps, progress)

    budget = None
    if bpp is not None:
        config = arch_codec.plan(image.height, image.width, cfg, RateTarget("quality"), None, modality)
        probe = _header_for(image, norm, modality, cfg.arch, config.to_bytes(), arch_codec.default_init(config, modality))
        units = _coding_units(arch_codec, frames)
        fixed = len(write_container(probe, extra + [(Tag.FRAME, b"")] * len(units)))
        budget = (bpp * image.num_pixels / 8 - fixed) / len(units)
        if budget <= 0:
            kept = f", of which {len(metadata)} bytes of DICOM metadata (see --strip-metadata)" if metadata else ""
            raise RateControlError(f"impossible bpp target {bpp}: the file's fixed overhead alone is "
                                   f"{8 * fixed / image.num_pixels:.3f} bpp{kept}")
    data, notes, init = _coded_file(image, frames, norm, modality, arch_codec, cfg, extra, target, budget, progress)
    if bpp is not None and init.name != RANDOM and 8 * len(data) / image.num_pixels > (1 + RATE_TOLERANCE) * bpp:
        # a learned init's networks did not fit the budget (a few hundred bytes): the random init's narrower ones
        # may, and a bpp target is a size limit first
        fallback = _coded_file(image, frames, norm, modality, arch_codec, cfg, extra, target, budget, progress,
                               init_modality="generic")
        if len(fallback[0]) < len(data):
            data, notes, init = fallback
    if auto and cfg.predictive_mode and target.mode != "quality" and not time_series and frames.dtype.kind in "iu":
        predictive = _predictive_if_better(image, frames, norm, modality, cfg, extra, target, data)
        data, notes = (data, notes) if predictive is None else (predictive, [])
    if bpp is not None:
        actual = 8 * len(data) / image.num_pixels
        if abs(actual - bpp) > RATE_TOLERANCE * bpp:
            notes.append(f"target {bpp:.4f} bpp not reachable with this preset: closest is {actual:.4f} bpp")
    for note in notes:
        warnings.warn(note, RateWarning, stacklevel=2)
    return data


def _coded_file(image: MedicalImage, frames: np.ndarray, norm: Normalisation, modality: str, arch_codec: ArchCodec,
                cfg: Any, extra: list[tuple[Tag, bytes]], target: RateTarget, budget: float | None,
                progress: ProgressFn | None, init_modality: str | None = None) -> tuple[bytes, list[str], Init]:
    """The file of :func:`encode`'s plan, the coder's notes and the init it started from: that of ``modality``, or
    of ``init_modality`` (``"generic"``: the random init) when given; the header names ``modality`` either way."""
    chooser = modality if init_modality is None else init_modality
    bpp = target.value if target.mode == "bpp" else None
    config = arch_codec.plan(image.height, image.width, cfg, target, budget, chooser)
    init = arch_codec.default_init(config, chooser, bpp)
    payloads: list[bytes] = []
    notes: list[str] = []
    units = _coding_units(arch_codec, frames)
    for i, frame in enumerate(units):
        label = f"frame {i + 1}/{len(units)}: " if len(units) > 1 else ""
        payload, frame_notes = arch_codec.encode_frame(frame, norm, config, init, cfg, target, budget, progress,
                                                       label)
        payloads.append(payload)
        notes += frame_notes
    data = write_container(_header_for(image, norm, modality, cfg.arch, config.to_bytes(), init),
                           [*extra, *((Tag.FRAME, payload) for payload in payloads)],
                           arch_codec.content_minor(config, payloads))
    return data, notes, init


def _encode_near_lossless(image: MedicalImage, frames: np.ndarray, norm: Normalisation, modality: str,
                          arch_codec: ArchCodec, cfg: Any, extra: list[tuple[Tag, bytes]], target: RateTarget,
                          max_error: int, inr_bpps: Sequence[float], progress: ProgressFn | None) -> bytes:
    """The ``max_error`` path of :func:`encode`: the file's quality is fixed, so no rate target applies."""
    if target.mode != "quality":
        raise RateControlError("a max error fixes the quality: give no bpp or PSNR target with it")
    data, _, notes = _near_lossless_file(image, frames, norm, modality, arch_codec, cfg, extra, max_error, inr_bpps,
                                         progress)
    for note in notes:
        warnings.warn(note, RateWarning, stacklevel=3)
    return data


def _near_lossless_file(image: MedicalImage, frames: np.ndarray, norm: Normalisation, modality: str,
                        arch_codec: ArchCodec, cfg: Any, extra: list[tuple[Tag, bytes]], max_error: int,
                        inr_bpps: Sequence[float] = (), progress: ProgressFn | None = None, rdo: float = 0.0
                        ) -> tuple[bytes, float, list[str]]:
    """A near-lossless file (``rdo`` > 0: rate-distortion quantised with that λ factor, no error bound), its mean
    squared error (stored units) and the coder's notes."""
    from medinr.residual import encode_near_lossless

    chosen = encode_near_lossless(frames, norm, max_error, modality, arch_codec, cfg, inr_bpps, progress,
                                  rdo=rdo)
    header = _header_for(image, norm, modality, cfg.arch, chosen.config.to_bytes(), chosen.init)
    frame_payloads = [payload for tag, payload in chosen.sections if tag == Tag.FRAME]
    minor = max(arch_codec.content_minor(chosen.config, frame_payloads), chosen.format_minor)
    return write_container(header, extra + chosen.sections, minor), chosen.mse, chosen.notes


#: λ factors of the predictive files' rate-distortion quantisation (units of a uniform quantiser's high-rate slope,
#: :func:`medinr.residual.coder.encode_stack`), tried one step finer than plain rounding's best (or at its first
#: step, when that overshoots by at most RDO_REACH), the second only when the first overshoots. At fixed δ on 256 px
#: crops of two cxr/train images (8-bit, δ = 1-8), BD-rate against plain rounding: 0.75 -9.0 / -11.1 %,
#: 1.0 -11.2 / -13.8 %, 1.5 -3.5 / -9.0 %, 2.0 -4.2 / -0.1 % (a larger λ degrades the neighbours later samples are
#: predicted from); a 12-bit noisy proxy (δ = 4-32): 1.0 -0.7 %. On a DWI MR slice plain rounding was better, so
#: plain files stay candidates. Factor 1.5 took 4-8 % off factor 1's rate at δ = 1-2 on cxr/train crops.
RDO_FACTORS = (1.0, 1.5)
RDO_REACH = 1.15
#: the measured error of plain rounding against the uniform estimate is floored at this ratio when the first δ is
#: re-aimed (a cine/train frame at 1 bpp: δ = 10 reached 43.1 dB where the estimate said δ = 8 for 42.3)
MIN_ERROR_RATIO = 0.25
#: a first δ over RDO_REACH times the budget but at most this many times is not given up: the next coarser δ is
#: tried, whose measured error can beat the rival where the uniform estimate said it would not. A 1024 px NIH X-ray
#: (cxr/test 00000001_000.png, the full-size bench's `auto` at 1 bpp): δ = 1 took 1.198 bpp (more than lossless,
#: 1.069), δ = 2 0.917 bpp at 45.79 dB against the INR file's 45.54 dB at 0.999 bpp
COARSER_REACH = 1.5


def _predictive_if_better(image: MedicalImage, frames: np.ndarray, norm: Normalisation, modality: str, cfg: Any,
                          extra: list[tuple[Tag, bytes]], target: RateTarget, data: bytes) -> bytes | None:
    """The file of the near-lossless mode's predictive coder (no INR) at the target when it beats ``data``: for a
    bpp target the smaller error within the budget, for a PSNR target the smaller file reaching it; else None.

    Its step is 2δ + 1 for an integer δ, with plain rounding (every error within δ; δ = 0 is lossless) or quantised
    rate-distortion optimally with a λ factor f (fewer bits, no error bound),
    :func:`medinr.residual.coder.encode_stack`. Plain rounding's error is about a uniform quantiser's,
    δ(δ + 1) / 3: the first δ tried is the largest whose error would beat ``data``'s (or reach the PSNR; with a bpp
    target, aimed again from its measured error when it overshoots), and only when that fits the budget is a finer
    δ searched (:func:`_fill_budget`), so a clearly losing mode costs one or two coding passes. Then RDO_FACTORS
    one step finer (or at the first δ, when it overshot by at most RDO_REACH) fill what the integer steps leave of
    the budget; the best file of all tried is kept (:func:`_best_within_budget`)."""
    nl_cfg = replace(cfg, arch=NEAR_LOSSLESS_ARCH)
    nl_codec = get_arch(NEAR_LOSSLESS_ARCH)
    files: dict[tuple[int, float], tuple[bytes, float]] = {}

    def coded(delta: int, factor: float) -> tuple[bytes, float]:
        factor = factor if delta else 0.0  # lossless has no step to trade
        if (delta, factor) not in files:
            files[delta, factor] = _near_lossless_file(image, frames, norm, modality, nl_codec, nl_cfg, extra, delta,
                                                       rdo=factor)[:2]
        return files[delta, factor]

    rival_mse = float(np.mean(np.square(decode(data).frame_stack() - frames.astype(np.float64))))
    if target.mode == "psnr":
        goal = default_peak(frames) ** 2 * 10 ** (-(target.value or 0.0) / 10)
        delta = _uniform_delta_below(goal, inclusive=True)
        if delta is None or coded(delta, 0.0)[1] > goal:
            return None
        if delta < MAX_ERROR_LIMIT and coded(delta + 1, 0.0)[1] <= goal:  # the uniform estimate is conservative
            delta += 1
        coded(delta, RDO_FACTORS[0])  # the same step with RDO: fewer bytes, which may still reach the goal
        best = min((f for f in files.values() if f[1] <= goal), key=lambda f: len(f[0]))[0]
        return best if rival_mse > goal or len(best) < len(data) else None
    budget = (target.value or 0.0) * image.num_pixels / 8
    key = _best_within_budget(lambda d, f: (len(coded(d, f)[0]), coded(d, f)[1]), rival_mse, budget,
                              image.num_pixels)
    return None if key is None else coded(*key)[0]


def _best_within_budget(coded: Callable[[int, float], tuple[int, float]], rival_mse: float, budget: float,
                        pixels: int) -> tuple[int, float] | None:
    """The (δ, λ factor) of the predictive file with the smallest error within ``budget`` bytes, when that error is
    below ``rival_mse``; ``coded(δ, factor)`` gives a file's (bytes, mean squared error), factor 0 plain rounding
    (see :func:`_predictive_if_better`)."""
    tried: dict[tuple[int, float], tuple[int, float]] = {}

    def size(delta: int, factor: float = 0.0) -> int:
        if (delta, factor) not in tried:
            tried[delta, factor] = coded(delta, factor)
        return tried[delta, factor][0]

    delta = _uniform_delta_below(rival_mse)
    if delta is None:
        return None
    if delta and size(delta) > budget:
        # plain rounding errs less than the uniform estimate where many samples are predicted exactly: aim again with
        # the measured error (one more pass, only when that moves δ)
        ratio = max(tried[delta, 0.0][1] / (delta * (delta + 1) / 3), MIN_ERROR_RATIO)
        delta = max(delta, _uniform_delta_below(rival_mse / ratio) or 0)
    if size(delta) <= budget:  # plain rounding fills the budget first, then one step finer with RDO
        delta = _fill_budget(lambda d: 8 * size(d) / pixels, delta, 8 * budget / pixels) - 1
    elif size(delta) > RDO_REACH * budget:
        if size(delta) > COARSER_REACH * budget or delta >= MAX_ERROR_LIMIT:
            return None
        delta += 1  # its error may still beat the rival's (COARSER_REACH)
        size(delta)  # its plain-rounded file joins the candidates even when RDO factors follow
    for factor in RDO_FACTORS:  # the next factor only while the previous one overshot
        if delta < 1 or size(delta, factor) <= budget:
            break
    fitting = [(mse, key) for key, (n, mse) in tried.items() if n <= budget]
    if not fitting or min(fitting)[0] >= rival_mse:
        return None
    return min(fitting)[1]


def _fill_budget(bpp_at: Callable[[int], float], fits: int, budget_bpp: float, tries: int = 3) -> int:
    """The smallest max error δ whose file stays within ``budget_bpp`` (about), from ``fits``, one within it.

    Rate falls about linearly in log2 of the step 2δ + 1: the first guess uses one bit a pixel per halving (the
    high-rate slope), the next ones the secant through the last two coded points, each kept between the largest δ
    known to overshoot and the smallest known to fit. At most ``tries`` more codings (a bisection took five or six);
    if they leave a gap, the smallest δ known to fit."""
    def log_step(delta: int) -> float:
        return math.log2(2 * delta + 1)

    over, coded, slope = -1, [fits], 1.0
    for _ in range(tries):
        if len(coded) > 1:
            a, b = coded[-2:]
            secant = (bpp_at(b) - bpp_at(a)) / (log_step(a) - log_step(b))
            slope = secant if secant > 0 else slope
        last = coded[-1]
        delta = math.ceil((2.0 ** (log_step(last) + (bpp_at(last) - budget_bpp) / slope) - 1) / 2)
        delta = min(max(delta, over + 1), fits - 1)
        if delta <= over or delta in coded:
            break
        coded.append(delta)
        over, fits = (over, delta) if bpp_at(delta) <= budget_bpp else (delta, fits)
    return fits


def _uniform_delta_below(mse: float, inclusive: bool = False) -> int | None:
    """The largest max error δ whose uniform-quantiser error δ(δ + 1) / 3 is below ``mse`` (or at most it)."""
    delta = int(math.sqrt(3 * mse + 0.25) - 0.5) + 1
    while delta >= 0 and (delta * (delta + 1) / 3 > mse or (not inclusive and delta * (delta + 1) / 3 == mse)):
        delta -= 1
    return min(delta, MAX_ERROR_LIMIT) if delta >= 0 else None


def decode(data: bytes, init_file: str | os.PathLike[str] | None = None) -> MedicalImage:
    """Decompress ``.minr`` bytes to the stored pixel values in the source's dtype, shape and range.

    ``init_file``: the init file the stream was encoded with (``encode(..., init_file=...)``)."""
    return _decode_container(read_container(data), init_file)


def _arch_and_config(header: Header) -> tuple[ArchCodec, Any]:
    try:
        arch_codec = get_arch(header.arch)
    except KeyError:
        raise BitstreamError(f"unknown architecture {header.arch!r} in file") from None
    try:
        return arch_codec, arch_codec.config_from_bytes(header.arch_config)
    except Exception as exc:
        raise BitstreamError(f"corrupted architecture configuration ({exc})") from None


def _decode_container(container: Container, init_file: str | os.PathLike[str] | None = None) -> MedicalImage:
    header = container.header
    arch_codec, config = _arch_and_config(header)
    if init_file is not None:
        arch_codec = FileInitCodec(arch_codec, read_init_file(init_file), init_file)
    init = arch_codec.load_init(header.init_name, config)
    check_digest(init, header.init_hash)
    residual = residual_of(container)
    if residual is not None:  # near-lossless / lossless file
        return _image_from(container, decode_near_lossless(container, residual, config, init).reshape(header.shape))
    payloads = container.payloads(Tag.FRAME)
    expected = 1 if arch_codec.joint_frames else header.frames
    if len(payloads) != expected:
        raise BitstreamError(f"file holds {len(payloads)} frame sections, header says {expected}")
    norm = Normalisation(header.norm_mean, header.norm_std, header.value_min, header.value_max)
    dtype = np.dtype(header.dtype)
    if arch_codec.joint_frames:
        pixels = arch_codec.decode_frame(payloads[0], config, init, norm, dtype,
                                         (header.frames, header.height, header.width))
    else:
        pixels = np.stack([arch_codec.decode_frame(payload, config, init, norm, dtype, (header.height, header.width))
                           for payload in payloads])
    return _image_from(container, pixels.reshape(header.shape))


def _image_from(container: Container, pixels: np.ndarray) -> MedicalImage:
    """The decoded record: pixels plus the header's fields and the stored DICOM attributes."""
    header = container.header
    metadata: dict[str, Any] = {}
    meta = container.payloads(Tag.METADATA)
    if meta:
        metadata["dicom"] = _read_metadata(meta[0])
    return MedicalImage(pixels, bits_stored=header.bits_stored, signed=header.signed,
                        photometric=header.photometric, modality=metadata["dicom"].get("Modality")
                        if metadata else None, frame_times=_frame_times(container),
                        rescale_slope=header.rescale_slope,
                        rescale_intercept=header.rescale_intercept, source_format="minr", metadata=metadata)


def _frame_times(container: Container) -> tuple[float, ...] | None:
    """Frame times in ms from the TIMING section (None when the file has none, e.g. format 1.1)."""
    timing = container.payloads(Tag.TIMING)
    if len(timing) > 1:
        raise BitstreamError(f"corrupted file ({len(timing)} timing sections)")
    return read_timing(timing[0], container.header.frames) if timing else None


def _read_metadata(payload: bytes) -> Any:
    import pydicom

    try:
        return pydicom.dcmread(io.BytesIO(zlib.decompress(payload)), force=True)
    except Exception as exc:
        raise BitstreamError(f"corrupted metadata section ({exc})") from None


def describe(data: bytes) -> dict[str, Any]:
    """What ``medinr info`` shows: header fields, sizes, sections."""
    container = read_container(data)
    h = container.header
    arch_codec, config = _arch_and_config(h)
    pixels = h.height * h.width * h.frames
    frame_bytes = [len(p) for p in container.payloads(Tag.FRAME)]
    meta_bytes = sum(len(p) for p in container.payloads(Tag.METADATA))
    return {
        "format_version": f"{data[4]}.{data[5]}", "shape": list(h.shape), "dtype": h.dtype,
        "bits_stored": h.bits_stored, "signed": h.signed, "photometric": h.photometric, "modality": h.modality,
        "value_range": [h.value_min, h.value_max], "normalisation": {"mean": h.norm_mean, "std": h.norm_std},
        "rescale": {"slope": h.rescale_slope, "intercept": h.rescale_intercept},
        # a predictive-only near-lossless file names an architecture for its header but holds no network
        "arch": h.arch, **(arch_codec.describe(config) if frame_bytes or residual_of(container) is None
                            else {"config": None, "parameters": 0, "multiply_adds_per_pixel": 0}),
        "init": {"name": h.init_name, "digest": h.init_hash.hex()},
        "file_bytes": len(data), "bpp": 8 * len(data) / pixels,
        "compression_ratio": pixels * h.bits_stored / (8 * len(data)),
        "frame_payload_bytes": frame_bytes, "metadata_bytes": meta_bytes,
        "bpp_without_metadata": 8 * (len(data) - meta_bytes) / pixels,
        **_integrity_facts(container), **_timing_facts(container, len(data)),
    }


def _timing_facts(container: Container, file_bytes: int) -> dict[str, Any]:
    """Frames, frame rate (fps; :data:`~medinr.io.sequence.DEFAULT_FPS` assumed without a TIMING section) and
    the stream's Mbps at that rate, for ``medinr info``; frames only for a still image."""
    from medinr.io.sequence import rate_of
    from medinr.video.metrics import mbps

    frames = container.header.frames
    if frames < 2:
        return {"frames": frames}
    fps, known = rate_of(_frame_times(container))
    return {"frames": frames, "fps": fps, "fps_assumed": not known, "mbps": mbps(file_bytes, frames, fps)}


def _integrity_facts(container: Container) -> dict[str, Any]:
    """Mode, error bound and source hash for ``medinr info``."""
    from medinr.verify import stored_sha256

    residual = residual_of(container)
    digest = stored_sha256(container)
    bound = None if residual is None else residual.error_bound
    mode = ("lossy" if residual is None else "lossy (predictive, no network)" if bound is None
            else "lossless" if bound == 0 else "near-lossless")
    return {"mode": mode, "max_error": bound,
            "residual_bytes": sum(len(p) for p in container.payloads(Tag.RESIDUAL)),
            "source_sha256": None if digest is None else digest.hex()}


def encode_report(image: MedicalImage | np.ndarray, **kwargs: Any) -> EncodeResult:
    """Encode, then decode the real bytes with the real decoder and measure quality and size."""
    from medinr.metrics import quality_report

    image = _as_image(image)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RateWarning)
        start = time.perf_counter()
        data = encode(image, **kwargs)
        encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = decode(data, kwargs.get("init_file"))
    decode_seconds = time.perf_counter() - start
    metrics = quality_report(image.pixels, decoded.pixels, bits=image.bits_stored, num_bytes=len(data))
    metrics.update(encode_seconds=encode_seconds, decode_seconds=decode_seconds)
    return EncodeResult(data, decoded, metrics, encode_seconds, decode_seconds,
                        [str(w.message) for w in caught if issubclass(w.category, RateWarning)])
