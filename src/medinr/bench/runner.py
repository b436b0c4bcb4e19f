"""``medinr bench``: every requested codec on every image at several rate points, measured the same way.

One *unit* is one codec on one image: every rate point of it, each a real file decoded by the real decoder
and measured against the source (:func:`medinr.metrics.quality_report`). Units run in this process or in
worker processes (``jobs``), and every finished unit is checkpointed to the results file, so ``resume``
skips units already done (or found unsupported) and re-runs only failed or missing ones.

The results document (:data:`medinr.bench.schema.RESULTS_SCHEMA`) holds the configuration, per-image
records, CompressAI-style results per codec (over all images and per data set: the mean over images at each
rate point) and BD-rate / BD-PSNR against an anchor codec, per image and over each set (the mean of the
per-image values, and the delta between the mean curves, each with its overlap range).
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
from medinr.bench.bdrate import bd_psnr, bd_rate
from medinr.bench.datasets import RULE_TEXT, BenchItem, load_item, resolve
from medinr.errors import InputError, MedinrError, RateControlError
from medinr.io.image import MedicalImage
from medinr.metrics import lpips, lpips_available, quality_report

RESULTS_VERSION = 2
#: progress(description, done units, total units)
BenchProgress = Callable[[str, int, int], None]
PRESETS = ("fast", "balanced", "max")
#: Codecs the paper lists that medinr does not build, and why (named in errors and in the report).
NOT_BUILT: dict[str, str] = {
    "autoencoder": "not built yet: a convolutional autoencoder trained on the train split needs a training run "
                   "this project has not made",
    "coordnet": "not built: CoordNet is a coordinate network for scientific-volume super-resolution and "
                "visualisation, with no published bitstream or rate control to reproduce as an image codec",
    "liif": "not built: LIIF is a super-resolution decoder; as a codec it would need a low-resolution base layer "
            "plus a LIIF decoder trained on the train split, which this project has not trained",
}
#: Seconds between checkpoints of the results file while a run is going.
CHECKPOINT_SECONDS = 5.0
#: Medinr files up to this size are kept (base64) for the report's visual comparisons.
KEEP_BITSTREAM_BYTES = 256 * 1024


@dataclass
class BenchConfig:
    """What to run; recorded verbatim in the results so a run can be reproduced.

    ``codecs``: ``medinr`` (``preset`` / ``arch`` below), ``medinr:ARCH`` or ``medinr:ARCH:PRESET`` (ARCH may be
    ``auto``), and the baselines and extra codecs (:func:`get_codec`). ``rate_points``: keep this many evenly
    spread points of each baseline's sweep (None: all). ``fit_steps`` overrides medinr's fitting steps (seed and
    grid); ``coin_steps`` is COIN's.
    """

    codecs: list[str] = field(default_factory=lambda: ["medinr", "jpeg2000", "jpegxl", "jpeg"])
    medinr_bpps: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0])
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


#: Fields that change what a unit measures: a results file made with other values cannot be resumed.
MEASUREMENT_FIELDS = ("medinr_bpps", "preset", "arch", "fit_steps", "coin_steps", "frames", "slice", "resize",
                      "crop", "rate_points", "max_baseline_bpp")
#: ``--quick``: two medinr points and five per baseline on 256 px crops. Measured on this project's 2-core
#: machine, one 256 px medinr encode at preset fast takes about 23 CPU-seconds with ``seed`` and 12 with
#: ``grid``; the public test sets (28 images) then need about 1,300 (seed) or 700 (grid) CPU-seconds, plus
#: about 100 for JPEG 2000, JPEG XL and JPEG: within 15 minutes with ``--jobs 2`` on 2 idle cores.
QUICK = {"medinr_bpps": [0.25, 1.0], "preset": "fast", "crop": 256, "coin_steps": 500}


def make_config(quick: bool = False, **overrides: Any) -> BenchConfig:
    """A config from the defaults, the ``--quick`` settings when asked, then ``overrides`` (None values ignored)."""
    cfg = BenchConfig(**(copy.deepcopy(QUICK) if quick else {}), quick=quick)
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    return cfg


def _extra_codecs() -> dict[str, type[BaselineCodec]]:
    from medinr.bench.coin import Coin
    from medinr.bench.spiht import Spiht

    return {"spiht": Spiht, "coin": Coin}


def get_codec(name: str, cfg: BenchConfig) -> BaselineCodec:
    """A baseline or extra codec by name, configured from ``cfg``."""
    if name in NOT_BUILT:
        raise MedinrError(f"{name}: {NOT_BUILT[name]}")
    codecs = {**BASELINES, **_extra_codecs()}
    if name not in codecs:
        raise MedinrError(f"unknown codec {name!r}: choose from medinr, medinr:ARCH:PRESET, {', '.join(codecs)}")
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


def validate_config(cfg: BenchConfig) -> None:
    """Refuse unknown codecs, a missing anchor and impossible settings before any work starts."""
    if not cfg.codecs:
        raise MedinrError("no codecs given")
    if len(set(cfg.codecs)) < len(cfg.codecs):
        raise MedinrError("a codec is named twice in --codecs")
    for name in cfg.codecs:
        if parse_medinr(name, cfg) is None:
            get_codec(name, cfg)
    if cfg.anchor not in cfg.codecs:
        raise MedinrError(f"anchor {cfg.anchor!r} is not among the codecs ({', '.join(cfg.codecs)})")
    if not cfg.medinr_bpps or any(not 0 < b < 64 for b in cfg.medinr_bpps):
        raise MedinrError(f"medinr bpps must lie in (0, 64), got {cfg.medinr_bpps}")
    for key in ("crop", "resize", "rate_points", "fit_steps"):
        value = getattr(cfg, key)
        if value is not None and value < (2 if key == "rate_points" else 1):
            raise MedinrError(f"{key} must be positive (rate_points at least 2), got {value}")
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
    codec = get_codec(name, cfg)
    doc = (type(codec).__doc__ or name).strip().splitlines()[0]
    return f"{name}: {doc} Rate parameter: {codec.rate_param}."


def preprocessing_text(cfg: BenchConfig) -> str:
    """How every source image was turned into the benchmark image, in words."""
    steps = [f"slice {cfg.slice} of every file" if cfg.slice else f"frame rule '{cfg.frames}' ({RULE_TEXT})"]
    if cfg.resize:
        steps.append(f"resized so the longer side is {cfg.resize} px (anti-aliased, rounded to the stored dtype)")
    if cfg.crop:
        steps.append(f"centre crop {cfg.crop} x {cfg.crop} px (sides already smaller are kept)")
    return "; then ".join(steps)


# ---------------------------------------------------------------- units (run in workers)

@lru_cache(maxsize=2)
def _load(item: BenchItem, resize: int | None, crop: int | None) -> MedicalImage:
    return load_item(item, resize=resize, crop=crop)


def _lpips_value(ref: np.ndarray, test: np.ndarray) -> float | str:
    from medinr.metrics import default_peak

    value = lpips(ref, test, default_peak(ref))
    return "unavailable" if value is None else value


def _medinr_points(image: MedicalImage, arch: str | None, preset: str, cfg: BenchConfig, keep: bool,
                   threads: int | None) -> list[dict[str, Any]]:
    from medinr import codec as medinr_codec

    options: dict[str, Any] = {"arch": arch, "fit_steps": cfg.fit_steps, "grid_steps": cfg.fit_steps,
                               "threads": threads}
    points = []
    for index, target in enumerate(cfg.medinr_bpps):
        result = medinr_codec.encode_report(image, bpp=target, preset=preset, **options)
        info = medinr_codec.describe(result.data)
        model = {"parameters": info.get("parameters"), "model_bytes": sum(info["frame_payload_bytes"]),
                 "multiply_adds_per_pixel": info.get("multiply_adds_per_pixel"), "init": info["init"]["name"]}
        point = {"rate": target, "rate_index": index, **result.metrics,
                 "lpips": _lpips_value(image.pixels, result.decoded.pixels),
                 "model": model, "warnings": result.warnings}
        if keep and len(result.data) <= KEEP_BITSTREAM_BYTES:
            point["bitstream_b64"] = base64.b64encode(result.data).decode("ascii")
        points.append(point)
    return points


def sweep_points(codec: BaselineCodec, bits: int, count: int | None) -> list[float]:
    """The codec's sweep, or ``count`` evenly spread points of it (ends included)."""
    sweep = codec.sweep(bits)
    if count is None or count >= len(sweep):
        return sweep
    return [sweep[i] for i in sorted({round(float(v)) for v in np.linspace(0, len(sweep) - 1, count)})]


def _baseline_points(name: str, image: MedicalImage, cfg: BenchConfig,
                     notes: list[str]) -> list[dict[str, Any]]:
    """Sweep a standard codec; frames of a stack are coded one by one and their sizes summed. A rate point
    the codec cannot reach on this image (e.g. COIN's smallest network above a tiny budget) is left out,
    with a note."""
    codec = get_codec(name, cfg)
    frames = image.frame_stack()
    reason = codec.supports(frames[0], image.bits_stored, image.signed)
    if reason:
        raise UnsupportedInput(reason)
    points = []
    for index, rate in enumerate(sweep_points(codec, image.bits_stored, cfg.rate_points)):
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
        metrics = quality_report(image.pixels, decoded, bits=image.bits_stored, num_bytes=num_bytes)
        point = {"rate": rate, "rate_index": index, **metrics, "lpips": _lpips_value(image.pixels, decoded),
                 "encode_seconds": encode_seconds, "decode_seconds": decode_seconds}
        models = [codec.describe(d) for d in files]
        if models[0] is not None:
            point["model"] = {**models[0], "parameters": sum(m["parameters"] for m in models),
                              "model_bytes": sum(m["model_bytes"] for m in models)}
        points.append(point)
    return points


def image_info(image: MedicalImage) -> dict[str, Any]:
    """What a record says about the benchmark image itself."""
    return {"shape": list(image.pixels.shape), "dtype": image.pixels.dtype.name, "bits_stored": image.bits_stored,
            "signed": image.signed, "modality": image.modality, "value_range": [float(image.pixels.min()),
                                                                               float(image.pixels.max())]}


def run_unit(item: BenchItem, name: str, cfg: BenchConfig, keep_bitstreams: bool,
             threads: int | None = None) -> dict[str, Any]:
    """One codec on one image: an entry with ``status`` done / unsupported / error, its points and timing."""
    start = time.perf_counter()
    entry: dict[str, Any] = {"status": "done", "reason": None, "points": [], "notes": []}
    info: dict[str, Any] = {}
    try:
        image = _load(item, cfg.resize, cfg.crop)
        info = image_info(image)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = parse_medinr(name, cfg)
            if parsed is not None:
                entry["points"] = _medinr_points(image, *parsed, cfg, keep_bitstreams, threads)
            else:
                entry["points"] = _baseline_points(name, image, cfg, entry["notes"])
                if not entry["points"]:
                    entry.update(status="unsupported", reason="no rate point reachable on this image: "
                                 + "; ".join(entry["notes"] or ["every point is over max_baseline_bpp"]))
    except UnsupportedInput as exc:
        entry.update(status="unsupported", reason=str(exc))
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
    results: dict[str, list[Any]] = {k: [] for k in ["rate", "rate_index", *RESULT_KEYS, "model_parameters"]}
    for index in sorted(by_index):
        points = by_index[index]
        if len(points) != len(done):
            continue
        rates = {p["rate"] for p in points}
        results["rate"].append(rates.pop() if len(rates) == 1 else None)
        results["rate_index"].append(index)
        for out_key, key in RESULT_KEYS.items():
            results[out_key].append(_mean([p[key] for p in points]))
        params = [p["model"]["parameters"] for p in points if p.get("model")]
        results["model_parameters"].append(float(np.mean(params)) if len(params) == len(points) else None)
    statuses = [r["codecs"].get(name, {}).get("status", "missing") for r in records]
    return {"name": name, "description": description, "images": len(done),
            "unsupported": statuses.count("unsupported"), "errors": statuses.count("error"), "results": results}


def _curve(points: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(float(p["bpp"]), float(p["psnr"])) for p in points]


def bd_summary(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> dict[str, Any]:
    """BD-rate (%) and BD-PSNR (dB) of ``test`` against ``anchor`` with their overlap ranges and notes."""
    rate, psnr = bd_rate(anchor, test), bd_psnr(anchor, test)
    return {"bd_rate_percent": rate.value, "bd_rate_overlap_psnr_db": rate.overlap, "bd_rate_reason": rate.reason,
            "bd_psnr_db": psnr.value, "bd_psnr_overlap_bpp": psnr.overlap, "bd_psnr_reason": psnr.reason,
            "notes": list(rate.notes)}


def _image_bd(record: dict[str, Any], anchor: str) -> dict[str, Any]:
    base = record["codecs"].get(anchor, {})
    if base.get("status") != "done":
        return {}
    return {name: bd_summary(_curve(base["points"]), _curve(entry["points"]))
            for name, entry in record["codecs"].items() if name != anchor and entry.get("status") == "done"}


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
        image_bd = [r["bd_vs_anchor"][name] for r in records if name in r.get("bd_vs_anchor", {})]
        rates = [b["bd_rate_percent"] for b in image_bd if b["bd_rate_percent"] is not None]
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
            "per_image_overlap_psnr_db": ([min(o[0] for o in overlaps), max(o[1] for o in overlaps)]
                                          if overlaps else None),
            "mean_curves": curve_bd, "mean_curves_images": len(both),
        }
    return {"anchor": anchor, "per_codec": per_codec}


def build_document(records: list[dict[str, Any]], cfg: BenchConfig, elapsed: float) -> dict[str, Any]:
    """The results document from per-image records (each with its ``codecs`` entries)."""
    for record in records:
        record["bd_vs_anchor"] = _image_bd(record, cfg.anchor)
    descriptions = {name: describe_codec(name, cfg) for name in cfg.codecs}
    datasets: dict[str, Any] = {}
    for name in dict.fromkeys(r["dataset"] for r in records):
        subset = [r for r in records if r["dataset"] == name]
        datasets[name] = {"images": [r["id"] for r in subset],
                          "codecs": [aggregate(c, subset, descriptions[c]) for c in cfg.codecs],
                          "bd_vs_anchor": set_bd(subset, cfg.codecs, cfg.anchor)}
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
            "bpp": "8 * file bytes / pixels of the real file, header included",
            "model_size": "decoder model carried by the file: parameters and their coded bytes",
        },
        "not_built": NOT_BUILT,
        "elapsed_seconds": elapsed,
        "codecs": [aggregate(c, records, descriptions[c]) for c in cfg.codecs],
        "bd_rate_vs_anchor": set_bd(records, cfg.codecs, cfg.anchor),
        "datasets": datasets,
        "images": records,
    }


# ---------------------------------------------------------------- running

def _finished(entry: dict[str, Any] | None) -> bool:
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
    return {"id": item.id, "dataset": item.dataset, "paths": list(item.paths), "select": item.select, "codecs": {}}


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
        items += resolve(names, frames=cfg.frames, slice_spec=cfg.slice)
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
