"""``medinr bench``: every requested codec on every image at several rate points, measured the same way.

Each rate point of each codec on each image gives one record (real file size, real decoder output);
records are averaged per codec and rate point into CompressAI-style results, and BD-rate against an
anchor codec (JPEG 2000 by default) is computed per image and over the set.
"""

from __future__ import annotations

import json
import math
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medinr import codec as medinr_codec
from medinr.bench.baselines import BASELINES, UnsupportedInput, get_baseline
from medinr.bench.bdrate import bd_rate
from medinr.errors import MedinrError
from medinr.io import read
from medinr.io.image import MedicalImage
from medinr.metrics import quality_report

#: progress(description, done, total)
BenchProgress = Callable[[str, int, int], None]


@dataclass
class BenchConfig:
    """What to run; recorded verbatim in the results so a run can be reproduced."""

    codecs: list[str] = field(default_factory=lambda: ["medinr", "jpeg2000", "jpegxl", "jpeg"])
    medinr_bpps: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0])
    preset: str = "fast"
    arch: str | None = None
    anchor: str = "jpeg2000"
    crop: int | None = None
    slice: str | None = None
    max_baseline_bpp: float = 8.0


def center_crop(image: MedicalImage, size: int | None) -> MedicalImage:
    """The central ``size`` x ``size`` region (no-op when the image is smaller)."""
    if not size or (image.height <= size and image.width <= size):
        return image
    top = max(0, (image.height - size) // 2)
    left = max(0, (image.width - size) // 2)
    return image.with_pixels(np.ascontiguousarray(image.pixels[..., top:top + size, left:left + size]))


def _medinr_points(image: MedicalImage, cfg: BenchConfig) -> list[dict[str, Any]]:
    options = {"arch": cfg.arch} if cfg.arch else {}
    points = []
    for target in cfg.medinr_bpps:
        result = medinr_codec.encode_report(image, bpp=target, preset=cfg.preset, **options)
        points.append({"rate": target, "rate_param": "target bpp", **result.metrics, "warnings": result.warnings})
    return points


def _baseline_points(name: str, image: MedicalImage, cfg: BenchConfig) -> list[dict[str, Any]]:
    """Sweep a standard codec; frames of a stack are coded one by one and their sizes summed."""
    baseline = get_baseline(name)
    frames = image.frame_stack()
    points = []
    for rate in baseline.sweep(image.bits_stored):
        start = time.perf_counter()
        files = [baseline.encode(f, rate, bits=image.bits_stored, signed=image.signed) for f in frames]
        encode_seconds = time.perf_counter() - start
        start = time.perf_counter()
        decoded = np.stack([baseline.decode(d, bits=image.bits_stored, signed=image.signed) for d in files])
        decode_seconds = time.perf_counter() - start
        num_bytes = sum(len(d) for d in files)
        if 8 * num_bytes / image.num_pixels > cfg.max_baseline_bpp:
            continue
        metrics = quality_report(image.pixels, decoded.reshape(image.pixels.shape).astype(image.pixels.dtype),
                                 bits=image.bits_stored, num_bytes=num_bytes)
        points.append({"rate": rate, "rate_param": baseline.rate_param, **metrics,
                       "encode_seconds": encode_seconds, "decode_seconds": decode_seconds})
    return points


def _codec_points(name: str, image: MedicalImage, cfg: BenchConfig) -> list[dict[str, Any]]:
    if name == "medinr":
        return _medinr_points(image, cfg)
    if name not in BASELINES:
        raise MedinrError(f"unknown codec {name!r}: choose from medinr, {', '.join(BASELINES)}")
    return _baseline_points(name, image, cfg)


def _curve(points: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(p["bpp"], p["psnr"]) for p in points if math.isfinite(p["psnr"])]


def _bd_summary(anchor: list[dict[str, Any]], test: list[dict[str, Any]]) -> dict[str, Any]:
    result = bd_rate(_curve(anchor), _curve(test))
    return {"bd_rate_percent": result.value, "overlap_psnr_db": result.overlap, "reason": result.reason,
            "notes": list(result.notes)}


def _aggregate(name: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """CompressAI-style results: per rate point, the mean over images that have that point."""
    by_rate: dict[float, list[dict[str, Any]]] = {}
    for record in records:
        for point in record["codecs"].get(name, {}).get("points", []):
            by_rate.setdefault(point["rate"], []).append(point)
    keys = {"bpp": "bpp", "psnr": "psnr", "psnr_bits": "psnr_bits", "ms-ssim": "ms_ssim", "rmse": "rmse",
            "max_abs_error": "max_abs_error", "compression_ratio": "compression_ratio",
            "encoding_time": "encode_seconds", "decoding_time": "decode_seconds"}
    results: dict[str, list[float]] = {k: [] for k in ["rate", *keys]}
    for rate in sorted(by_rate):
        points = by_rate[rate]
        if len(points) != len(records):  # a rate point some images lack would bias the mean
            continue
        results["rate"].append(rate)
        for out_key, key in keys.items():
            values = [float(p[key]) for p in points]
            results[out_key].append(float(np.mean(values)) if all(map(math.isfinite, values)) else math.inf)
    return {"name": name, "description": _describe_codec(name), "results": results}


def _describe_codec(name: str) -> str:
    if name == "medinr":
        return "medinr INR codec (real .minr files, decoded by the real decoder)"
    baseline = get_baseline(name)
    return f"{name} via {type(baseline).__module__.split('.')[0]} ({baseline.rate_param} sweep)"


def run_bench(paths: list[Path], cfg: BenchConfig, progress: BenchProgress | None = None) -> dict[str, Any]:
    """Run the benchmark and return the results document (see :func:`write_results`)."""
    records: list[dict[str, Any]] = []
    total = len(paths) * len(cfg.codecs)
    done = 0
    for path in paths:
        image = center_crop(read(path, slice=cfg.slice), cfg.crop)
        record: dict[str, Any] = {"file": str(path), "shape": list(image.pixels.shape),
                                  "dtype": image.pixels.dtype.name, "bits_stored": image.bits_stored,
                                  "codecs": {}}
        for name in cfg.codecs:
            if progress:
                progress(f"{Path(path).name}: {name}", done, total)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    record["codecs"][name] = {"points": _codec_points(name, image, cfg)}
            except UnsupportedInput as exc:
                record["codecs"][name] = {"unsupported": str(exc), "points": []}
            done += 1
        anchor = record["codecs"].get(cfg.anchor, {}).get("points")
        if anchor:
            record["bd_rate_vs_anchor"] = {n: _bd_summary(anchor, c["points"]) for n, c in record["codecs"].items()
                                           if n != cfg.anchor and c["points"]}
        records.append(record)
    if progress:
        progress("done", total, total)
    return _document(records, cfg)


def _document(records: list[dict[str, Any]], cfg: BenchConfig) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in cfg.codecs:
        if name == cfg.anchor:
            continue
        values = [r["bd_rate_vs_anchor"][name]["bd_rate_percent"] for r in records
                  if name in r.get("bd_rate_vs_anchor", {})]
        finite = [v for v in values if v is not None]
        summary[name] = {"mean_bd_rate_percent": float(np.mean(finite)) if finite else None,
                         "images_with_bd_rate": len(finite), "images": len(records)}
    return {
        "medinr_bench_version": 1,
        "config": asdict(cfg),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version(), "threads": __import__("torch").get_num_threads()},
        "codecs": [_aggregate(name, records) for name in cfg.codecs],
        "bd_rate_vs_anchor": {"anchor": cfg.anchor, "per_codec": summary},
        "images": records,
    }


def write_results(document: dict[str, Any], path: Path) -> None:
    """Write the results JSON atomically (infinite values as the string "inf")."""
    from medinr.io.common import atomic_write

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return "inf" if value > 0 else "-inf" if value < 0 else "nan"
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    text = json.dumps(clean(document), indent=1)
    atomic_write(Path(path), ".json", lambda tmp: tmp.write_text(text))
