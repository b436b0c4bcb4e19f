"""``medinr bench``: every requested codec on every image at several rate points, measured the same way.

One *unit* is one codec on one image or sequence: every rate point of it, each a real file decoded by the
real decoder and measured against the source (:func:`medinr.metrics.quality_report`; for sequences also
:func:`medinr.video.metrics.video_report`: Mbps at the sequence's frame rate, PSNR and MS-SSIM per frame,
temporal flicker, time per frame). Units run in this process or in
worker processes (``jobs``), and every finished unit is checkpointed to the results file, so ``resume``
skips units already done (or found unsupported) and re-runs only failed or missing ones.

The results document (:data:`medinr.bench.schema.RESULTS_SCHEMA`) holds the configuration, per-image
records, CompressAI-style results per codec (over all images and per data set: the mean over images at each
rate point) and BD-rate / BD-PSNR against an anchor codec, per image and over each set (the mean of the
per-image values, and the delta between the mean curves, each with its overlap range).

Sequences (:data:`medinr.bench.datasets.SEQUENCE_TEXT`) are coded whole by the video codecs
(:data:`medinr.video.baselines.VIDEO_BASELINES`, ``x264``/``x265`` short for their ``veryslow`` presets, and
``medinr:seed-video``) and frame by frame by the image codecs (``medinr:grid``, ``jpeg2000``, ...); a video
codec reports a still image as unsupported. A sequence's BD-rates are against every anchor of
:data:`BenchConfig.video_anchors` among the codecs (x265 ``veryslow`` and per-frame JPEG 2000 by default; else
``anchor``), the first of them also for temporal flicker at equal rate.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from medinr.bench.baselines import BASELINES, BaselineCodec, UnsupportedInput
from medinr.bench.bdrate import BD_WINDOW_DB, bd_psnr, bd_rate, clean_curve
from medinr.bench.datasets import RULE_TEXT, SEQUENCE_TEXT, BenchItem, load_item, resolve
from medinr.errors import InputError, MedinrError, MissingDependencyError, RateControlError
from medinr.io.image import MedicalImage
from medinr.io.sequence import frame_rate
from medinr.metrics import lpips, lpips_available, quality_report
from medinr.video.baselines import VIDEO_BASELINES, VideoBaseline, get_video_baseline
from medinr.video.metrics import video_report

RESULTS_VERSION = 2
#: progress(description, done units, total units)
BenchProgress = Callable[[str, int, int], None]
PRESETS = ("fast", "balanced", "max")
#: Codecs the paper lists that medinr does not build, and why (named in errors and in the report).
NOT_BUILT: dict[str, str] = {
    "coordnet": "not built: CoordNet is a coordinate network for scientific-volume super-resolution and "
                "visualisation, with no published bitstream or rate control to reproduce as an image codec",
}
#: Seconds between checkpoints of the results file while a run is going.
CHECKPOINT_SECONDS = 5.0
#: Medinr files up to this size are kept (base64) for the report's visual comparisons.
KEEP_BITSTREAM_BYTES = 256 * 1024
#: Short names of video codecs in ``--codecs``: their ``veryslow`` presets.
VIDEO_ALIASES = {"x264": "x264-veryslow", "x265": "x265-veryslow"}


@dataclass
class BenchConfig:
    """What to run; recorded verbatim in the results so a run can be reproduced.

    ``codecs``: ``medinr`` (``preset`` / ``arch`` below), ``medinr:ARCH`` or ``medinr:ARCH:PRESET`` (ARCH may be
    ``auto``), and the baselines and extra codecs (:func:`get_codec`). ``rate_points``: keep this many evenly
    spread points of each baseline's sweep (None: all). ``fit_steps`` overrides medinr's fitting steps (seed,
    grid and grid-video); ``coin_steps`` is COIN's, ``nerv_steps`` NeRV's. Sequences: ``sequence_frames`` keeps their first N
    frames, ``sequence_crop`` crops them (None: ``crop``), ``sequence_bpps`` are medinr's targets on them (None:
    ``medinr_bpps``); ``video_anchors`` are their BD-rate anchors (those among the codecs). ``medinr_window``
    (``--bpps auto``): medinr's targets on each still image are instead the bpps where the anchor gives these PSNRs
    (:func:`window_bpps`), so every image is measured where the BD-rate target is set, whatever its content.
    """

    codecs: list[str] = field(default_factory=lambda: ["medinr", "jpeg2000", "jpegxl", "jpeg"])
    medinr_bpps: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0])
    medinr_window: list[float] | None = None
    preset: str = "fast"
    arch: str | None = None
    fit_steps: int | None = None
    coin_steps: int = 2000
    anchor: str = "jpeg2000"
    datasets: list[str] = field(default_factory=list)
    frames: str = "sample"
    slice: str | None = None
    resize: int | None = None
    crop: int | None = None
    rate_points: int | None = None
    max_baseline_bpp: float = 8.0
    quick: bool = False
    jobs: int = 1
    #: torch threads of each medinr encode in this process (None: the preset's); worker processes use 1
    threads: int | None = None
    video_anchors: list[str] = field(default_factory=lambda: ["x265-veryslow", "jpeg2000-frames"])
    sequence_frames: int | None = None
    sequence_crop: int | None = None
    sequence_bpps: list[float] | None = None
    nerv_steps: int = 600


#: Fields that change what a unit measures: a results file made with other values cannot be resumed.
MEASUREMENT_FIELDS = ("medinr_bpps", "medinr_window", "preset", "arch", "fit_steps", "coin_steps", "frames", "slice",
                      "resize", "crop", "rate_points", "max_baseline_bpp", "sequence_frames", "sequence_crop",
                      "sequence_bpps", "nerv_steps")
#: ``--quick``: two medinr points and five per baseline on 256 px crops. Measured on this project's 2-core
#: machine, one 256 px medinr encode at preset fast takes about 23 CPU-seconds with ``seed`` and 12 with
#: ``grid``; the public test sets (28 images) then need about 1,300 (seed) or 700 (grid) CPU-seconds, plus
#: about 100 for JPEG 2000, JPEG XL and JPEG: within 15 minutes with ``--jobs 2`` on 2 idle cores.
#: Sequences under ``--quick``: the first 10 frames, 128 px crops, three medinr points spread over 1.3 decades (x265's
#: CRF sweep is about 3 dB a point: a narrower medinr range holds too few anchor points for a BD-rate). Measured on
#: this machine (one thread, 10 x 128 x 128 cine): ``medinr:seed-video:fast`` about 17 CPU-s a point, the x264 /
#: x265 ``veryslow`` sweeps about 3 and 7 CPU-s, per-frame JPEG 2000 under 1 s: the two cine-test sequences take
#: about 2.5 CPU-minutes with one medinr video codec. Per-frame ``medinr:grid:fast`` costs about 95 CPU-s a point,
#: ``medinr:grid-video:fast`` about 70 and ``medinr:grid-mc:fast`` about 100 (2026-11-26, one thread per job, two jobs).
#: ``--bpps auto``: PSNRs (dB) spread evenly over the BD-rate target's window (BD_WINDOW_DB). Smooth full-size X-rays
#: reach this window at 0.05-0.6 bpp with JPEG 2000, MR slices at 0.5-4 bpp: fixed targets miss most of it on one
#: kind or the other.
AUTO_WINDOW_PSNRS = [float(p) for p in np.linspace(*BD_WINDOW_DB, 4)]
#: ... and targets closer than this ratio count as one
AUTO_MIN_RATIO = 1.1
QUICK = {"medinr_bpps": [0.25, 1.0], "preset": "fast", "crop": 256, "coin_steps": 500, "nerv_steps": 300,
         "sequence_frames": 10, "sequence_crop": 128, "sequence_bpps": [0.05, 0.2, 1.0]}


def make_config(quick: bool = False, **overrides: Any) -> BenchConfig:
    """A config from the defaults, the ``--quick`` settings when asked, then ``overrides`` (None values ignored);
    video codec short names (:data:`VIDEO_ALIASES`) become their full names."""
    cfg = BenchConfig(**(copy.deepcopy(QUICK) if quick else {}), quick=quick)
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    cfg.codecs = [VIDEO_ALIASES.get(name, name) for name in cfg.codecs]
    cfg.anchor = VIDEO_ALIASES.get(cfg.anchor, cfg.anchor)
    cfg.video_anchors = [VIDEO_ALIASES.get(name, name) for name in cfg.video_anchors]
    return cfg


def _extra_codecs() -> dict[str, type[BaselineCodec]]:
    from medinr.bench.autoencoder import AutoEncoderCodec
    from medinr.bench.coin import Coin
    from medinr.bench.liif import LiifCodec
    from medinr.bench.spiht import Spiht

    return {"spiht": Spiht, "coin": Coin, "autoencoder": AutoEncoderCodec, "liif": LiifCodec}


def get_codec(name: str, cfg: BenchConfig) -> BaselineCodec:
    """A baseline or extra codec by name, configured from ``cfg``."""
    if name in NOT_BUILT:
        raise MedinrError(f"{name}: {NOT_BUILT[name]}")
    codecs = {**BASELINES, **_extra_codecs()}
    if name not in codecs:
        raise MedinrError(f"unknown codec {name!r}: choose from medinr, medinr:ARCH:PRESET, {', '.join(codecs)}, "
                          f"and for sequences {', '.join([*VIDEO_ALIASES, *VIDEO_BASELINES])}")
    codec = codecs[name]()
    if name == "coin":
        codec.steps = cfg.coin_steps
    return codec


def parse_medinr(name: str, cfg: BenchConfig) -> tuple[str | None, str] | None:
    """(arch, preset) for a ``medinr[:ARCH[:PRESET]]`` codec name, None for other codecs."""
    parts = name.split(":")
    if parts[0] != "medinr":
        return None
    if len(parts) > 3 or any(not p for p in parts):
        raise MedinrError(f"bad codec name {name!r}: expected medinr, medinr:ARCH or medinr:ARCH:PRESET")
    arch = parts[1] if len(parts) > 1 else cfg.arch
    preset = parts[2] if len(parts) > 2 else cfg.preset
    if preset not in PRESETS:
        raise MedinrError(f"bad codec name {name!r}: unknown preset {preset!r} ({', '.join(PRESETS)})")
    if arch not in (None, "auto"):
        from medinr.archs import ARCH_CODECS, get_arch

        try:
            get_arch(arch)
        except KeyError:
            raise MedinrError(f"bad codec name {name!r}: unknown architecture {arch!r} "
                              f"({', '.join(ARCH_CODECS)})") from None
    return arch, preset


def get_video_codec(name: str, cfg: BenchConfig) -> VideoBaseline:
    """A video baseline by name, configured from ``cfg`` (NeRV's fitting steps)."""
    codec = get_video_baseline(name)
    if name == "nerv":
        codec.steps = cfg.nerv_steps  # type: ignore[attr-defined]
    return codec


def is_video_codec(name: str, cfg: BenchConfig) -> bool:
    """Whether ``name`` codes only whole sequences: a video baseline or a medinr joint (video) architecture."""
    if name in VIDEO_BASELINES:
        return True
    parsed = parse_medinr(name, cfg)
    if parsed is None or parsed[0] in (None, "auto"):
        return False
    from medinr.archs import get_arch

    return get_arch(parsed[0]).joint_frames


def sequence_anchors(cfg: BenchConfig) -> list[str]:
    """BD-rate anchors of sequences: the ``video_anchors`` among the codecs, else ``anchor`` if it is one."""
    return [a for a in cfg.video_anchors if a in cfg.codecs] or [a for a in [cfg.anchor] if a in cfg.codecs]


def check_anchors(cfg: BenchConfig, items: list[BenchItem]) -> None:
    """Refuse a run whose images or sequences would have no BD-rate anchor among the codecs."""
    if any(not item.sequence for item in items) and cfg.anchor not in cfg.codecs:
        raise MedinrError(f"anchor {cfg.anchor!r} is not among the codecs ({', '.join(cfg.codecs)})")
    if any(item.sequence for item in items) and not sequence_anchors(cfg):
        raise MedinrError(f"sequences need a BD-rate anchor among the codecs: one of "
                          f"{', '.join(cfg.video_anchors)} (or --anchor)")


def validate_config(cfg: BenchConfig) -> None:
    """Refuse unknown codecs and impossible settings before any work starts (anchors: :func:`check_anchors`)."""
    if not cfg.codecs:
        raise MedinrError("no codecs given")
    if len(set(cfg.codecs)) < len(cfg.codecs):
        raise MedinrError("a codec is named twice in --codecs")
    for name in cfg.codecs:
        if parse_medinr(name, cfg) is None and name not in VIDEO_BASELINES:
            get_codec(name, cfg)
    if cfg.medinr_window is not None and (not cfg.medinr_window or any(not 0 < p < 200 for p in cfg.medinr_window)):
        raise MedinrError(f"medinr window PSNRs must lie in (0, 200) dB, got {cfg.medinr_window}")
    if cfg.medinr_window is not None and parse_medinr(cfg.anchor, cfg) is not None:
        raise MedinrError("--bpps auto takes medinr's targets from the anchor's curve: the anchor must be a baseline")
    for key in ("medinr_bpps", "sequence_bpps"):
        bpps = getattr(cfg, key)
        if bpps is not None and (not bpps or any(not 0 < b < 64 for b in bpps)):
            raise MedinrError(f"medinr bpps must lie in (0, 64), got {bpps}")
    for key in ("crop", "resize", "rate_points", "fit_steps", "sequence_frames", "sequence_crop", "nerv_steps"):
        value = getattr(cfg, key)
        if value is not None and value < (2 if key in ("rate_points", "sequence_frames") else 1):
            raise MedinrError(f"{key} must be positive (rate_points and sequence_frames at least 2), got {value}")
    if cfg.jobs < 1:
        raise MedinrError(f"jobs must be at least 1, got {cfg.jobs}")


def describe_codec(name: str, cfg: BenchConfig) -> str:
    """One line on what a codec name runs, for the results and the report."""
    parsed = parse_medinr(name, cfg)
    if parsed is not None:
        arch, preset = parsed
        return (f"medinr INR codec, architecture {arch or 'the preset default'}, preset {preset}"
                f"{'' if cfg.fit_steps is None else f', {cfg.fit_steps} fitting steps'} "
                "(real .minr files decoded by the real decoder)")
    codec: BaselineCodec | VideoBaseline = (get_video_codec(name, cfg) if name in VIDEO_BASELINES
                                            else get_codec(name, cfg))
    doc = (type(codec).__doc__ or name).strip().splitlines()[0]
    return f"{name}: {doc} Rate parameter: {codec.rate_param}."


def preprocessing_text(cfg: BenchConfig) -> str:
    """How every source image was turned into the benchmark image, in words."""
    steps = [f"slice {cfg.slice} of every file" if cfg.slice else f"frame rule '{cfg.frames}' ({RULE_TEXT})"]
    if cfg.resize:
        steps.append(f"resized so the longer side is {cfg.resize} px (anti-aliased, rounded to the stored dtype)")
    if cfg.crop:
        steps.append(f"centre crop {cfg.crop} x {cfg.crop} px (sides already smaller are kept)")
    crop = cfg.sequence_crop or cfg.crop
    sequences = [f"first {cfg.sequence_frames} frames" if cfg.sequence_frames else "every frame"]
    if cfg.resize:
        sequences.append(f"resized to {cfg.resize} px on the longer side")
    if crop:
        sequences.append(f"centre crop {crop} x {crop} px")
    return "; then ".join(steps) + f". {SEQUENCE_TEXT[0].upper()}{SEQUENCE_TEXT[1:]}: {', then '.join(sequences)}"


# ---------------------------------------------------------------- units (run in workers)

@lru_cache(maxsize=2)
def _load(item: BenchItem, resize: int | None, crop: int | None, frames: int | None) -> MedicalImage:
    return load_item(item, resize=resize, crop=crop, frames=frames)


def load_bench_image(item: BenchItem, cfg: BenchConfig) -> MedicalImage:
    """The image or sequence a unit codes, prepared as ``cfg`` says (:func:`preprocessing_text`)."""
    if item.sequence:
        return _load(item, cfg.resize, cfg.sequence_crop or cfg.crop, cfg.sequence_frames)
    return _load(item, cfg.resize, cfg.crop, None)


def _lpips_value(ref: np.ndarray, test: np.ndarray) -> float | str:
    from medinr.metrics import default_peak

    value = lpips(ref, test, default_peak(ref))
    return "unavailable" if value is None else value


def sequence_fields(image: MedicalImage, decoded: np.ndarray, num_bytes: int, encode_seconds: float,
                    decode_seconds: float) -> dict[str, Any]:
    """What a sequence's point adds to the image metrics: Mbps at its frame rate (assumed
    :data:`~medinr.io.sequence.DEFAULT_FPS` when it carries no timing, said by ``fps_assumed``), PSNR and
    MS-SSIM per frame, the mean of the per-frame PSNRs, temporal flicker, encode s and decode ms per frame."""
    fps, known = frame_rate(image)
    report = video_report(image.pixels, decoded, num_bytes=num_bytes, fps=fps, fps_known=known,
                          encode_seconds=encode_seconds, decode_seconds=decode_seconds)
    return {"mbps": report["mbps"], "fps": fps, "fps_assumed": report["fps_assumed"], "frames": report["frames"],
            "psnr_per_frame": report["psnr_per_frame"], "psnr_mean_frames": report["psnr_mean_frames"],
            "ms_ssim_per_frame": report["ms-ssim_per_frame"], "temporal_flicker": report["temporal_flicker"],
            "encode_seconds_per_frame": report["encode_seconds_per_frame"],
            "decode_ms_per_frame": report["decode_ms_per_frame"]}


def _measure(image: MedicalImage, decoded: np.ndarray, num_bytes: int, encode_seconds: float,
             decode_seconds: float, sequence: bool) -> dict[str, Any]:
    """Every metric of one decoded file against its source (with the video ones for a sequence)."""
    point = {**quality_report(image.pixels, decoded, bits=image.bits_stored, num_bytes=num_bytes),
             "lpips": _lpips_value(image.pixels, decoded), "encode_seconds": encode_seconds,
             "decode_seconds": decode_seconds}
    if sequence:
        point.update(sequence_fields(image, decoded, num_bytes, encode_seconds, decode_seconds))
    return point


def _medinr_points(image: MedicalImage, arch: str | None, preset: str, cfg: BenchConfig, keep: bool,
                   threads: int | None, sequence: bool, notes: list[str]) -> list[dict[str, Any]]:
    """medinr at each target bpp; a target the file's fixed overhead alone exceeds on this image (e.g. 0.1 bpp on
    a 64 px frame) is left out with a note, as the baselines' unreachable points are."""
    from medinr import codec as medinr_codec

    options: dict[str, Any] = {"arch": arch, "fit_steps": cfg.fit_steps, "grid_steps": cfg.fit_steps,
                               "video_steps": cfg.fit_steps, "threads": threads}
    if sequence:
        targets = cfg.sequence_bpps or cfg.medinr_bpps
    elif cfg.medinr_window is not None:
        try:
            anchor_points = _baseline_points(cfg.anchor, image, cfg, [], False)
        except UnsupportedInput as exc:
            raise UnsupportedInput(f"--bpps auto takes the targets from {cfg.anchor}, which cannot code this image: "
                                   f"{exc}") from None
        targets = window_bpps(anchor_points, cfg.medinr_window)
        notes.append(f"targets {', '.join(f'{t:g}' for t in targets)} bpp: where {cfg.anchor} gives "
                     f"{', '.join(f'{p:g}' for p in cfg.medinr_window)} dB on this image")
    else:
        targets = cfg.medinr_bpps
    points = []
    for index, target in enumerate(targets):
        try:
            result = medinr_codec.encode_report(image, bpp=target, preset=preset, **options)
        except RateControlError as exc:
            notes.append(f"bpp {target:g} skipped: {exc}")
            continue
        info = medinr_codec.describe(result.data)
        model = {"parameters": info.get("parameters"), "model_bytes": sum(info["frame_payload_bytes"]),
                 "multiply_adds_per_pixel": info.get("multiply_adds_per_pixel"), "init": info["init"]["name"]}
        point = {"rate": target, "rate_index": index, **result.metrics,
                 "lpips": _lpips_value(image.pixels, result.decoded.pixels),
                 "model": model, "warnings": result.warnings}
        if sequence:
            point.update(sequence_fields(image, result.decoded.pixels, len(result.data), result.encode_seconds,
                                         result.decode_seconds))
        if keep and len(result.data) <= KEEP_BITSTREAM_BYTES:
            point["bitstream_b64"] = base64.b64encode(result.data).decode("ascii")
        points.append(point)
    return points


def window_bpps(anchor_points: list[dict[str, Any]], psnrs: list[float]) -> list[float]:
    """The bpps at which the anchor's curve reaches ``psnrs``: log bpp interpolated linearly in PSNR between its
    points (the curve as BD-rate cleans it, :func:`medinr.bench.bdrate.clean_curve`), each clamped to the curve's
    own bpp range and rounded to three significant digits, ascending; a target within AUTO_MIN_RATIO of the one
    below it is dropped (two PSNRs clamped to the same end of the curve)."""
    rates, qualities, _ = clean_curve(_curve(anchor_points), "anchor")
    if len(rates) < 2:
        raise UnsupportedInput("--bpps auto needs at least two finite points of the anchor's curve on this image")
    log_bpps = np.log(rates)
    targets: list[float] = []
    for bpp in sorted(float(f"{math.exp(np.interp(p, qualities, log_bpps)):.3g}") for p in psnrs):
        if not targets or bpp > AUTO_MIN_RATIO * targets[-1]:
            targets.append(bpp)
    return targets


def sweep_points(sweep: list[float], count: int | None) -> list[float]:
    """A codec's sweep, or ``count`` evenly spread points of it (ends included)."""
    if count is None or count >= len(sweep):
        return sweep
    return [sweep[i] for i in sorted({round(float(v)) for v in np.linspace(0, len(sweep) - 1, count)})]


def _baseline_points(name: str, image: MedicalImage, cfg: BenchConfig, notes: list[str],
                     sequence: bool) -> list[dict[str, Any]]:
    """Sweep a standard codec; frames of a stack are coded one by one and their sizes summed. A rate point
    the codec cannot reach on this image (e.g. COIN's smallest network above a tiny budget) is left out,
    with a note."""
    codec = get_codec(name, cfg)
    frames = image.frame_stack()
    reason = codec.supports(frames[0], image.bits_stored, image.signed)
    if reason:
        raise UnsupportedInput(reason)
    points = []
    for index, rate in enumerate(sweep_points(codec.sweep(image.bits_stored), cfg.rate_points)):
        start = time.perf_counter()
        try:
            files = [codec.encode(f, rate, bits=image.bits_stored, signed=image.signed) for f in frames]
        except RateControlError as exc:
            notes.append(f"{codec.rate_param} {rate:g} skipped: {exc}")
            continue
        encode_seconds = time.perf_counter() - start
        start = time.perf_counter()
        decoded = np.stack([codec.decode(d, bits=image.bits_stored, signed=image.signed) for d in files])
        decode_seconds = time.perf_counter() - start
        num_bytes = sum(len(d) for d in files)
        if 8 * num_bytes / image.num_pixels > cfg.max_baseline_bpp:
            continue
        decoded = decoded.reshape(image.pixels.shape).astype(image.pixels.dtype)
        point = {"rate": rate, "rate_index": index,
                 **_measure(image, decoded, num_bytes, encode_seconds, decode_seconds, sequence)}
        models = [codec.describe(d) for d in files]
        if models[0] is not None:
            point["model"] = {**models[0], "parameters": sum(m["parameters"] for m in models),
                              "model_bytes": sum(m["model_bytes"] for m in models)}
        points.append(point)
    return points


def _video_points(name: str, image: MedicalImage, cfg: BenchConfig, notes: list[str]) -> list[dict[str, Any]]:
    """Sweep a video baseline over the whole sequence at its frame rate (a file over ``max_baseline_bpp`` is
    left out, as for the image baselines)."""
    codec = get_video_codec(name, cfg)
    if image.pixels.dtype.kind not in "iu":
        raise UnsupportedInput(f"{name} codes integer samples, this sequence holds {image.pixels.dtype}")
    fps, _ = frame_rate(image)
    notes.extend(codec.notes(image.pixels))
    points = []
    for index, rate in enumerate(sweep_points(codec.sweep(), cfg.rate_points)):
        coded = codec.run(image.pixels, rate, fps)
        if 8 * len(coded.data) / image.num_pixels > cfg.max_baseline_bpp:
            continue
        points.append({"rate": rate, "rate_index": index, **_measure(
            image, coded.decoded, len(coded.data), coded.encode_seconds, coded.decode_seconds, True)})
    return points


def image_info(image: MedicalImage, sequence: bool = False) -> dict[str, Any]:
    """What a record says about the benchmark image (or sequence: frames, frame rate and whether assumed)."""
    info = {"shape": list(image.pixels.shape), "dtype": image.pixels.dtype.name, "bits_stored": image.bits_stored,
            "signed": image.signed, "modality": image.modality, "value_range": [float(image.pixels.min()),
                                                                               float(image.pixels.max())]}
    if sequence:
        fps, known = frame_rate(image)
        info.update(frames=image.frames, fps=fps, fps_assumed=not known)
    return info


def run_unit(item: BenchItem, name: str, cfg: BenchConfig, keep_bitstreams: bool,
             threads: int | None = None) -> dict[str, Any]:
    """One codec on one image or sequence: an entry with ``status`` done / unsupported / unavailable (a tool it
    needs is missing) / error, its points and timing."""
    start = time.perf_counter()
    entry: dict[str, Any] = {"status": "done", "reason": None, "points": [], "notes": []}
    info: dict[str, Any] = {}
    try:
        image = load_bench_image(item, cfg)
        info = image_info(image, item.sequence)
        if is_video_codec(name, cfg) and not item.sequence:
            raise UnsupportedInput(f"{name} codes sequences (at least 2 frames); this is a still image")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = parse_medinr(name, cfg)
            if parsed is not None:
                entry["points"] = _medinr_points(image, *parsed, cfg, keep_bitstreams, threads, item.sequence,
                                                 entry["notes"])
            else:
                entry["points"] = (_video_points(name, image, cfg, entry["notes"]) if name in VIDEO_BASELINES
                                   else _baseline_points(name, image, cfg, entry["notes"], item.sequence))
            if not entry["points"]:
                entry.update(status="unsupported", reason="no rate point reachable on this image: "
                             + "; ".join(entry["notes"] or ["every point is over max_baseline_bpp"]))
    except UnsupportedInput as exc:
        entry.update(status="unsupported", reason=str(exc))
    except MissingDependencyError as exc:
        entry.update(status="unavailable", reason=str(exc))
    except MedinrError as exc:
        entry.update(status="error", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 (a codec bug must not end a long run: recorded, retried by --resume)
        entry.update(status="error", reason=f"{type(exc).__name__}: {exc}")
    entry["seconds"] = time.perf_counter() - start
    return {"entry": entry, "image": info}


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


# ---------------------------------------------------------------- aggregation

#: CompressAI result keys and the point fields they average.
RESULT_KEYS = {"bpp": "bpp", "psnr": "psnr", "psnr_bits": "psnr_bits", "ms-ssim": "ms_ssim", "rmse": "rmse",
               "max_abs_error": "max_abs_error", "lpips": "lpips", "compression_ratio": "compression_ratio",
               "encoding_time": "encode_seconds", "decoding_time": "decode_seconds"}
#: Further result keys of sequences (every point of a sequence has them).
VIDEO_RESULT_KEYS = {"mbps": "mbps", "psnr_mean_frames": "psnr_mean_frames", "temporal_flicker": "temporal_flicker",
                     "encoding_time_per_frame": "encode_seconds_per_frame",
                     "decoding_ms_per_frame": "decode_ms_per_frame"}


def _mean(values: list[Any]) -> float | str:
    if any(isinstance(v, str) for v in values):
        return "unavailable"
    floats = [float(v) for v in values]
    if any(math.isnan(v) for v in floats):
        return math.nan
    return float(np.mean(floats)) if all(map(math.isfinite, floats)) else math.inf


def aggregate(name: str, records: list[dict[str, Any]], description: str) -> dict[str, Any]:
    """CompressAI-style results of a codec over ``records``: per rate point (position in the codec's sweep,
    whose values depend on the bit depth), the mean over the images where the codec ran; a point missing
    on one of them (e.g. over ``max_baseline_bpp``) is left out. ``rate`` is None where the images' rate
    values differ."""
    done = [r["codecs"][name] for r in records if r["codecs"].get(name, {}).get("status") == "done"]
    by_index: dict[int, list[dict[str, Any]]] = {}
    for entry in done:
        for point in entry["points"]:
            by_index.setdefault(point["rate_index"], []).append(point)
    video = bool(by_index) and all("mbps" in p for points in by_index.values() for p in points)
    keys = {**RESULT_KEYS, **(VIDEO_RESULT_KEYS if video else {})}
    results: dict[str, list[Any]] = {k: [] for k in ["rate", "rate_index", *keys, "model_parameters"]}
    for index in sorted(by_index):
        points = by_index[index]
        if len(points) != len(done):
            continue
        rates = {p["rate"] for p in points}
        results["rate"].append(rates.pop() if len(rates) == 1 else None)
        results["rate_index"].append(index)
        for out_key, key in keys.items():
            results[out_key].append(_mean([p[key] for p in points]))
        params = [p["model"]["parameters"] for p in points if p.get("model")]
        results["model_parameters"].append(float(np.mean(params)) if len(params) == len(points) else None)
    statuses = [r["codecs"].get(name, {}).get("status", "missing") for r in records]
    return {"name": name, "description": description, "images": len(done),
            "unsupported": statuses.count("unsupported"), "unavailable": statuses.count("unavailable"),
            "errors": statuses.count("error"), "results": results}


def _curve(points: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(float(p["bpp"]), float(p["psnr"])) for p in points]


def bd_summary(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> dict[str, Any]:
    """BD-rate (%) and BD-PSNR (dB) of ``test`` against ``anchor`` with their overlap ranges and notes, and the
    BD-rate inside BD_WINDOW_DB."""
    rate, psnr, window = bd_rate(anchor, test), bd_psnr(anchor, test), bd_rate(anchor, test, BD_WINDOW_DB)
    return {"bd_rate_percent": rate.value, "bd_rate_overlap_psnr_db": rate.overlap, "bd_rate_reason": rate.reason,
            "bd_psnr_db": psnr.value, "bd_psnr_overlap_bpp": psnr.overlap, "bd_psnr_reason": psnr.reason,
            "bd_rate_window_percent": window.value, "bd_rate_window_psnr_db": window.overlap,
            "bd_rate_window_reason": window.reason, "notes": list(rate.notes)}


def _image_bd(record: dict[str, Any], anchor: str) -> dict[str, Any]:
    base = record["codecs"].get(anchor, {})
    if base.get("status") != "done":
        return {}
    return {name: bd_summary(_curve(base["points"]), _curve(entry["points"]))
            for name, entry in record["codecs"].items() if name != anchor and entry.get("status") == "done"}


def flicker_at(points: list[dict[str, Any]], bpp: float) -> float | None:
    """A codec's temporal flicker at ``bpp`` (linear in log bpp between its points; None outside them)."""
    pts = sorted((p["bpp"], p["temporal_flicker"]) for p in points if p["bpp"] > 0)
    if not pts or not pts[0][0] <= bpp <= pts[-1][0]:
        return None
    return float(np.interp(math.log(bpp), np.log([r for r, _ in pts]), [f for _, f in pts]))


def _flicker_vs_anchor(record: dict[str, Any], anchor: str) -> dict[str, list[list[float | None]]]:
    """Per codec, ``[bpp, its flicker, the anchor's flicker at that bpp]`` at each of its points."""
    base = record["codecs"].get(anchor, {})
    if base.get("status") != "done":
        return {}
    return {name: [[p["bpp"], p["temporal_flicker"], flicker_at(base["points"], p["bpp"])] for p in entry["points"]]
            for name, entry in record["codecs"].items() if name != anchor and entry.get("status") == "done"}


def record_anchors(record: dict[str, Any], cfg: BenchConfig) -> list[str]:
    """The BD-rate anchors of a record: ``anchor`` for an image, :func:`sequence_anchors` for a sequence."""
    return sequence_anchors(cfg) if record.get("kind") == "sequence" else [cfg.anchor]


def _stats(values: list[float]) -> dict[str, Any]:
    return {"mean": float(np.mean(values)) if values else None, "median": float(np.median(values)) if values else None,
            "count": len(values)}


def set_bd(records: list[dict[str, Any]], names: list[str], anchor: str) -> dict[str, Any]:
    """BD-rate / BD-PSNR of each codec against ``anchor`` over ``records``: statistics of the per-image values,
    the range of per-image overlaps, and the deltas between the mean curves over the images both coded."""
    per_codec: dict[str, Any] = {}
    for name in names:
        if name == anchor:
            continue
        image_bd = [r["bd_vs_anchors"][anchor][name] for r in records
                    if name in r.get("bd_vs_anchors", {}).get(anchor, {})]
        rates = [b["bd_rate_percent"] for b in image_bd if b["bd_rate_percent"] is not None]
        window_rates = [b["bd_rate_window_percent"] for b in image_bd if b.get("bd_rate_window_percent") is not None]
        psnrs = [b["bd_psnr_db"] for b in image_bd if b["bd_psnr_db"] is not None]
        overlaps = [b["bd_rate_overlap_psnr_db"] for b in image_bd if b["bd_rate_overlap_psnr_db"]]
        both = [r for r in records if all(r["codecs"].get(n, {}).get("status") == "done" for n in (name, anchor))]
        curves = {}
        if both:
            curves = {n: aggregate(n, both, "")["results"] for n in (name, anchor)}
        curve_bd = (bd_summary(list(zip(curves[anchor]["bpp"], curves[anchor]["psnr"])),
                               list(zip(curves[name]["bpp"], curves[name]["psnr"]))) if curves else None)
        per_codec[name] = {
            "images": len(records), "images_with_bd_rate": len(rates),
            "bd_rate_percent": _stats(rates), "bd_psnr_db": _stats(psnrs),
            "mean_bd_rate_percent": _stats(rates)["mean"],
            "bd_rate_window_percent": _stats(window_rates), "window_psnr_db": list(BD_WINDOW_DB),
            "per_image_overlap_psnr_db": ([min(o[0] for o in overlaps), max(o[1] for o in overlaps)]
                                          if overlaps else None),
            "mean_curves": curve_bd, "mean_curves_images": len(both),
        }
    return {"anchor": anchor, "per_codec": per_codec}


def _dataset_groups(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records by data set; the sequences of a set that also holds images are the set ``NAME (sequences)``."""
    kinds: dict[str, set[str]] = {}
    for record in records:
        kinds.setdefault(record["dataset"], set()).add(record.get("kind", "image"))
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        split = record.get("kind") == "sequence" and len(kinds[record["dataset"]]) > 1
        groups.setdefault(record["dataset"] + (" (sequences)" if split else ""), []).append(record)
    return groups


def build_document(records: list[dict[str, Any]], cfg: BenchConfig, elapsed: float) -> dict[str, Any]:
    """The results document from per-image records (each with its ``codecs`` entries). The top-level
    ``codecs`` and ``bd_rate_vs_anchor`` cover the images (the sequences when there are no images); each data
    set has its own, and a set of sequences also its BD-rates against every sequence anchor."""
    for record in records:
        anchors = record_anchors(record, cfg)
        record["anchor"] = anchors[0]
        record["bd_vs_anchors"] = {anchor: _image_bd(record, anchor) for anchor in anchors}
        record["bd_vs_anchor"] = record["bd_vs_anchors"][anchors[0]]
        if record.get("kind") == "sequence":
            record["flicker_vs_anchor"] = _flicker_vs_anchor(record, anchors[0])
    descriptions = {name: describe_codec(name, cfg) for name in cfg.codecs}
    datasets: dict[str, Any] = {}
    for name, subset in _dataset_groups(records).items():
        anchors = record_anchors(subset[0], cfg)
        sets = [set_bd(subset, cfg.codecs, anchor) for anchor in anchors]
        datasets[name] = {"kind": "sequences" if subset[0].get("kind") == "sequence" else "images",
                          "images": [r["id"] for r in subset],
                          "codecs": [aggregate(c, subset, descriptions[c]) for c in cfg.codecs],
                          "bd_vs_anchor": sets[0], "bd_vs_anchors": sets}
    main = [r for r in records if r.get("kind") != "sequence"] or records
    main_anchor = record_anchors(main[0], cfg)[0] if main else cfg.anchor
    ok, lpips_note = lpips_available()
    import torch

    return {
        "medinr_bench_version": RESULTS_VERSION,
        "config": asdict(cfg),
        "preprocessing": preprocessing_text(cfg),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version(), "cpus": os.cpu_count(),
                    "torch_threads": 1 if cfg.jobs > 1 else cfg.threads or torch.get_num_threads()},
        "metrics_info": {
            "psnr": "dB, peak = the source image's max - min (fastMRI convention)",
            "psnr_bits": "dB, PSNR (2^bits-1 peak) of the stored bit depth",
            "ms-ssim": "pytorch_msssim MS-SSIM, data range = max - min; single-scale SSIM under 161 px "
                       "(see each point's ms_ssim_method)",
            "lpips": lpips_note if ok else f"unavailable: {lpips_note}",
            "bpp": "8 * file bytes / pixels of the real file, header included (sequences: all frames)",
            "model_size": "decoder model carried by the file: parameters and their coded bytes",
            "mbps": "sequences: 8 * file bytes * fps / frames / 1e6, fps from the frame times (DICOM "
                    "TriggerTime / FrameTime) or 30 when the source has none (point and record say fps_assumed)",
            "psnr_sequences": "sequences: psnr over the whole sequence, psnr_per_frame and psnr_mean_frames per "
                              "frame, all with the peak = the whole source's max - min; ms_ssim = the mean over "
                              "frames (ms_ssim_per_frame)",
            "temporal_flicker": "sequences: mean |frame-to-frame change of the decoded - that of the source|, "
                                "stored units (medinr.video.metrics.temporal_flicker)",
            "time_per_frame": "sequences: encode_seconds_per_frame, decode_ms_per_frame (whole sequence / frames)",
        },
        "not_built": NOT_BUILT,
        "elapsed_seconds": elapsed,
        "codecs": [aggregate(c, main, descriptions[c]) for c in cfg.codecs],
        "bd_rate_vs_anchor": set_bd(main, cfg.codecs, main_anchor),
        "datasets": datasets,
        "images": records,
    }


# ---------------------------------------------------------------- running

def _finished(entry: dict[str, Any] | None) -> bool:
    """Done or unsupported: kept by ``--resume`` (an error, or a codec whose tool was missing, runs again)."""
    return entry is not None and entry.get("status") in ("done", "unsupported")


def load_previous(path: Path, cfg: BenchConfig) -> dict[str, dict[str, Any]]:
    """Records of an earlier run to resume, by image id; InputError if it measured something else."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot resume from an unreadable results file ({exc})") from None
    if document.get("medinr_bench_version") != RESULTS_VERSION:
        raise InputError(f"{path}: results version {document.get('medinr_bench_version')} cannot be resumed by "
                         f"version {RESULTS_VERSION}: write to another file")
    old = document.get("config", {})
    changed = [k for k in MEASUREMENT_FIELDS if k in old and old[k] != _jsonable(getattr(cfg, k))]
    if changed:
        diffs = ", ".join(f"{k} {old[k]!r} -> {getattr(cfg, k)!r}" for k in changed)
        raise InputError(f"{path}: cannot resume, the run measured other settings ({diffs})")
    return {r["id"]: restore_json(r) for r in document.get("images", [])}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _new_record(item: BenchItem) -> dict[str, Any]:
    return {"id": item.id, "dataset": item.dataset, "kind": "sequence" if item.sequence else "image",
            "paths": list(item.paths), "select": item.select, "codecs": {}}


def _visual_items(items: list[BenchItem]) -> set[str]:
    """The first 2D-sampled image of each data set: medinr files are kept for the report's visual comparison."""
    first: dict[str, str] = {}
    for item in items:
        first.setdefault(item.dataset, item.id)
    return set(first.values())


def _units(items: list[BenchItem], cfg: BenchConfig,
           records: dict[str, dict[str, Any]]) -> Iterator[tuple[BenchItem, str]]:
    for item in items:
        for name in cfg.codecs:
            if not _finished(records[item.id]["codecs"].get(name)):
                yield item, name


def run_bench(specs: list[str] | list[BenchItem], cfg: BenchConfig, progress: BenchProgress | None = None, *,
              out: Path | None = None, resume: bool = False) -> dict[str, Any]:
    """Run the benchmark on ``specs`` (data set names, folders, globs, files, or items) and return the
    results document; with ``out`` it is also written there, checkpointed as units finish. ``resume`` keeps
    the finished units of an existing ``out`` (same measurement settings) and runs the rest."""
    validate_config(cfg)
    items = [s for s in specs if isinstance(s, BenchItem)]
    names = [str(s) for s in specs if not isinstance(s, BenchItem)]
    if names:
        items += resolve(names, frames=cfg.frames, slice_spec=cfg.slice,
                         series_as_sequences=any(is_video_codec(name, cfg) for name in cfg.codecs))
    check_anchors(cfg, items)
    cfg.datasets = list(dict.fromkeys(item.dataset for item in items))
    previous = load_previous(out, cfg) if resume and out is not None else {}
    records = {item.id: _new_record(item) for item in items}
    for item_id, record in records.items():
        old = previous.get(item_id)
        if old:
            record.update({k: v for k, v in old.items() if k not in ("codecs", "bd_vs_anchor")})
            record["codecs"] = {n: e for n, e in old["codecs"].items() if n in cfg.codecs and _finished(e)}
    visual = _visual_items(items)
    todo = list(_units(items, cfg, records))
    total = len(items) * len(cfg.codecs)
    state = {"done": total - len(todo), "start": time.perf_counter(), "saved": 0.0}

    def finish(item: BenchItem, name: str, result: dict[str, Any]) -> None:
        record = records[item.id]
        record["codecs"][name] = result["entry"]
        if result["image"]:
            record.update(result["image"])
        state["done"] += 1
        if progress:
            images_done = sum(len(r["codecs"]) == len(cfg.codecs) for r in records.values())
            progress(f"images {images_done}/{len(items)}, {item.id}: {name} {result['entry']['status']}",
                     state["done"], total)
        now = time.perf_counter()
        if out is not None and now - state["saved"] >= CHECKPOINT_SECONDS:
            write_results(build_document(list(records.values()), cfg, now - state["start"]), out)
            state["saved"] = now

    if progress:
        progress(f"images 0/{len(items)}: {len(todo)} codec runs to do", state["done"], total)
    if cfg.jobs == 1 or len(todo) <= 1:
        for item, name in todo:
            finish(item, name, run_unit(item, name, cfg, item.id in visual, cfg.threads))
    else:
        _run_parallel(todo, cfg, visual, finish)
    document = build_document(list(records.values()), cfg, time.perf_counter() - state["start"])
    if out is not None:
        write_results(document, out)
    return document


def _run_parallel(todo: list[tuple[BenchItem, str]], cfg: BenchConfig, visual: set[str],
                  finish: Callable[[BenchItem, str, dict[str, Any]], None]) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of a process that already runs torch threads
    with ProcessPoolExecutor(max_workers=cfg.jobs, mp_context=context, initializer=_worker_init) as pool:
        pending: dict[Future[dict[str, Any]], tuple[BenchItem, str]] = {
            pool.submit(run_unit, item, name, cfg, item.id in visual, 1): (item, name) for item, name in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item, name = pending.pop(future)
                finish(item, name, future.result())


def write_results(document: dict[str, Any], path: Path) -> None:
    """Write the results JSON atomically (infinite values as the string "inf", NaN as "nan")."""
    from medinr.io.common import atomic_write

    text = json.dumps(clean_json(document), indent=1)
    atomic_write(Path(path), ".json", lambda tmp: tmp.write_text(text))


def clean_json(value: Any) -> Any:
    """``value`` with non-finite floats as strings and tuples as lists, as written to the results file."""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def restore_json(value: Any) -> Any:
    """Inverse of :func:`clean_json` for the non-finite floats ("inf", "-inf", "nan")."""
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: restore_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_json(v) for v in value]
    return value


def config_from_dict(values: dict[str, Any]) -> BenchConfig:
    """The :class:`BenchConfig` recorded in a results file (unknown keys ignored)."""
    names = {f.name for f in fields(BenchConfig)}
    return BenchConfig(**{k: v for k, v in values.items() if k in names})
