"""Video benchmark: medinr architectures and the video anchors on sequences, measured the same way.

Every point is a real file decoded by the real decoder, measured by :func:`medinr.video.metrics.video_report`
(PSNR and MS-SSIM per frame and mean, temporal flicker, bpp, Mbps at the sequence's frame rate). BD-rate
is computed per sequence against each anchor (x265 ``veryslow`` and per-frame JPEG 2000 by default), with
the flicker of the anchor interpolated at each medinr point's rate beside medinr's own.

``python -m medinr.video.bench FOLDER... --out results.json`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from medinr import codec as medinr_codec
from medinr.bench.bdrate import bd_rate
from medinr.io.image import MedicalImage
from medinr.io.sequence import frame_rate, read_sequence
from medinr.video.baselines import VIDEO_BASELINES, get_video_baseline
from medinr.video.metrics import video_report

#: medinr codecs by name: the architecture each runs (``seed`` codes frame by frame)
MEDINR_CODECS = {"seed-video": "seed-video", "seed-frames": "seed", "grid-frames": "grid"}
DEFAULT_CODECS = ("seed-video", "seed-frames", "x265-veryslow", "x265-medium", "x264-veryslow", "jpeg2000-frames")
DEFAULT_ANCHORS = ("x265-veryslow", "jpeg2000-frames")


def load_clip(path: Path, frames: int | None = None, crop: int | None = None) -> MedicalImage:
    """A sequence (colour DICOM, e.g. echo, as its luma), cut to its first ``frames`` frames and its central
    ``crop`` x ``crop`` region."""
    image = read_sequence(path, luma=True)
    stack = image.pixels[:frames] if frames else image.pixels
    if crop and (image.height > crop or image.width > crop):
        top, left = max(0, (image.height - crop) // 2), max(0, (image.width - crop) // 2)
        stack = stack[:, top:top + crop, left:left + crop]
    clip = image.with_pixels(np.ascontiguousarray(stack))
    clip.frame_times = image.frame_times[:len(stack)] if image.frame_times else None
    return clip


def medinr_points(image: MedicalImage, name: str, bpps: list[float], preset: str,
                  options: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per bpp target of a medinr architecture."""
    fps, known = frame_rate(image)
    points = []
    for target in bpps:
        result = medinr_codec.encode_report(image, bpp=target, preset=preset, arch=MEDINR_CODECS[name], **options)
        report = video_report(image.pixels, result.decoded.pixels, num_bytes=len(result.data), fps=fps,
                              fps_known=known, encode_seconds=result.encode_seconds,
                              decode_seconds=result.decode_seconds)
        points.append({"rate": target, "rate_param": "target bpp", **report, "warnings": result.warnings})
    return points


def baseline_points(image: MedicalImage, name: str, rates: list[float] | None = None) -> list[dict[str, Any]]:
    """One point per rate value (the codec's sweep by default) of a video anchor."""
    codec = get_video_baseline(name)
    fps, known = frame_rate(image)
    points = []
    for rate in rates or codec.sweep():
        coded = codec.run(image.pixels, rate, fps)
        report = video_report(image.pixels, coded.decoded, num_bytes=len(coded.data), fps=fps, fps_known=known,
                              encode_seconds=coded.encode_seconds, decode_seconds=coded.decode_seconds)
        points.append({"rate": rate, "rate_param": codec.rate_param, **report, "notes": codec.notes(image.pixels)})
    return points


def _curve(points: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(p["bpp"], p["psnr"]) for p in points if math.isfinite(p["psnr"])]


def flicker_at(points: list[dict[str, Any]], bpp: float) -> float | None:
    """An anchor's temporal flicker at ``bpp`` (linear in log bpp between its points; None outside them)."""
    pts = sorted((p["bpp"], p["temporal_flicker"]) for p in points)
    if not pts:
        return None
    rates = np.log([r for r, _ in pts])
    if not rates[0] <= math.log(bpp) <= rates[-1]:
        return None
    return float(np.interp(math.log(bpp), rates, [f for _, f in pts]))


def compare(points: dict[str, list[dict[str, Any]]], anchors: tuple[str, ...]) -> dict[str, Any]:
    """BD-rate of every codec against each anchor, and flicker at equal rate for the medinr codecs."""
    out: dict[str, Any] = {}
    for anchor in anchors:
        if anchor not in points:
            continue
        for name, pts in points.items():
            if name == anchor:
                continue
            result = bd_rate(_curve(points[anchor]), _curve(pts))
            entry = {"bd_rate_percent": result.value, "overlap_psnr_db": result.overlap, "reason": result.reason}
            if name in MEDINR_CODECS:
                entry["flicker_vs_anchor"] = [(p["bpp"], p["temporal_flicker"], flicker_at(points[anchor], p["bpp"]))
                                              for p in pts]
            out[f"{name} vs {anchor}"] = entry
    return out


def run_video_bench(paths: list[Path], codecs: list[str], bpps: list[float], *, preset: str = "fast",
                    frames: int | None = None, crop: int | None = None, anchors: tuple[str, ...] = DEFAULT_ANCHORS,
                    options: dict[str, Any] | None = None, log: Any = None) -> dict[str, Any]:
    """Every codec on every sequence; per-sequence points and comparisons, plus the mean BD-rates."""
    records = []
    for path in paths:
        image = load_clip(path, frames, crop)
        fps, known = frame_rate(image)
        points: dict[str, list[dict[str, Any]]] = {}
        for name in codecs:
            if name in MEDINR_CODECS:
                points[name] = medinr_points(image, name, bpps, preset, options or {})
            elif name in VIDEO_BASELINES:
                points[name] = baseline_points(image, name)
            else:
                raise ValueError(f"unknown codec {name!r}: choose from {', '.join([*MEDINR_CODECS, *VIDEO_BASELINES])}")
            if log:
                log(f"{path.name} {name}: " + ", ".join(f"{p['bpp']:.3f} bpp {p['psnr']:.2f} dB" for p in points[name]))
        records.append({"sequence": str(path), "shape": list(image.pixels.shape), "fps": fps, "fps_assumed": not known,
                        "luma_of": image.metadata.get("luma_of"),
                        "points": points, "comparisons": compare(points, anchors)})
    summary: dict[str, Any] = {}
    for key in records[0]["comparisons"] if records else []:
        values = [r["comparisons"][key]["bd_rate_percent"] for r in records]
        finite = [v for v in values if v is not None]
        summary[key] = {"mean_bd_rate_percent": float(np.mean(finite)) if finite else None,
                        "sequences": len(finite), "of": len(values)}
    return {"config": {"codecs": codecs, "bpps": bpps, "preset": preset, "frames": frames, "crop": crop,
                       "anchors": list(anchors), "options": options or {}},
            "summary": summary, "sequences": records}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medinr.video.bench", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="sequences (DICOM series folders, video files, ...)")
    parser.add_argument("--codecs", default=",".join(DEFAULT_CODECS))
    parser.add_argument("--bpps", default="0.1,0.2,0.4,0.8", help="medinr bpp targets")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--frames", type=int, default=None, help="first N frames only")
    parser.add_argument("--crop", type=int, default=None, help="central square crop")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="medinr encoder option, e.g. fit_steps=300 (repeatable)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    warnings.simplefilter("ignore")
    document = run_video_bench(args.paths, args.codecs.split(","), [float(b) for b in args.bpps.split(",")],
                               preset=args.preset, frames=args.frames, crop=args.crop, options=options,
                               log=lambda line: print(line, file=sys.stderr, flush=True))
    args.out.write_text(json.dumps(document, indent=1, default=str))
    for key, value in document["summary"].items():
        print(f"{key}: BD-rate {value['mean_bd_rate_percent']} % over {value['sequences']}/{value['of']} sequences")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
