"""``medinr report results.json -o report/``: one self-contained HTML page with PNG figures beside it.

Per data set: rate-distortion curves (PSNR and MS-SSIM against bpp, one curve per codec, the mean over
images at each rate point), bar charts in the style of the paper's figures (PSNR and MS-SSIM at a matched
bpp, and the bpp each codec needs for the anchor's PSNR there, interpolated per image on log bpp), a cost
table (compression ratio, encode and decode time, decoder model size), BD-rate / BD-PSNR tables with their
overlap ranges, unsupported inputs with reasons, and a visual comparison at matched bpp. A data set of
sequences also gets temporal flicker against bpp beside its rate-distortion curves, a cine table (per codec
at the matched rate: bpp, Mbps, PSNR, MS-SSIM, flicker and the anchor's flicker at that bpp, encode s and
decode ms per frame) and BD-rate tables against every sequence anchor (x265 veryslow, per-frame JPEG 2000).

Visual comparisons are made at report time from what the results file stores: the medinr file kept
(base64) for the first image of each data set is decoded by the real decoder, the original is re-read from
its recorded path with the recorded resize/crop, and JPEG 2000 is encoded at the medinr file's bpp
(:func:`~medinr.bench.baselines.encode_to_bpp`). Without the source files the section says so.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from medinr.bench.bdrate import WINDOW_LABEL, clean_curve
from medinr.bench.runner import NOT_BUILT, config_from_dict, flicker_at, load_bench_image, parse_medinr, restore_json
from medinr.bench.schema import validate
from medinr.errors import InputError, MedinrError

PAGE = "index.html"
#: Display crop of the visual comparison (centre of the image).
VISUAL_CROP = 128


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "set"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def load_results(path: Path) -> dict[str, Any]:
    """A results document, validated against the schema (InputError on the first problem)."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such results file") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable results file ({exc})") from None
    problems = validate(document)
    if problems:
        raise InputError(f"{path}: not a medinr bench results file ({problems[0]}; {len(problems)} problem(s))")
    return restore_json(document)


# ---------------------------------------------------------------- matched-rate values

def _interp(points: list[dict[str, Any]], key: str, bpp: float) -> float | None:
    """``key`` at ``bpp`` on one image's curve, linear in log bpp; None outside the curve or when not numeric."""
    pts = sorted((p["bpp"], p[key]) for p in points if _finite(p["bpp"]) and p["bpp"] > 0 and _finite(p[key]))
    if len(pts) < 2 or not pts[0][0] <= bpp <= pts[-1][0]:
        return None
    rates, values = zip(*pts)
    return float(np.interp(math.log(bpp), np.log(rates), values))


def _bpp_for_psnr(points: list[dict[str, Any]], psnr: float) -> float | None:
    """bpp at which one image's curve reaches ``psnr`` (log bpp linear in PSNR); None outside the curve."""
    rates, psnrs, _ = clean_curve([(p["bpp"], p["psnr"]) for p in points], "curve")
    if len(rates) < 2 or not psnrs[0] <= psnr <= psnrs[-1]:
        return None
    return float(np.exp(np.interp(psnr, psnrs, np.log(rates))))


def matched_values(records: list[dict[str, Any]], codecs: list[str], anchor: str,
                   bpp: float) -> dict[str, dict[str, list[float]]]:
    """Per codec, per-image PSNR and MS-SSIM at ``bpp`` and the bpp reaching the anchor's PSNR at ``bpp``."""
    out: dict[str, dict[str, list[float]]] = {c: {"psnr": [], "ms_ssim": [], "bpp_at_anchor_psnr": []}
                                              for c in codecs}
    for record in records:
        base = record["codecs"].get(anchor, {})
        target = _interp(base["points"], "psnr", bpp) if base.get("status") == "done" else None
        for name in codecs:
            entry = record["codecs"].get(name, {})
            if entry.get("status") != "done":
                continue
            for key in ("psnr", "ms_ssim"):
                value = _interp(entry["points"], key, bpp)
                if value is not None:
                    out[name][key].append(value)
            if target is not None:
                needed = _bpp_for_psnr(entry["points"], target)
                if needed is not None:
                    out[name]["bpp_at_anchor_psnr"].append(needed)
    return out


def _nearest_points(records: list[dict[str, Any]], name: str, bpp: float) -> list[dict[str, Any]]:
    """Per image, the codec's point nearest to ``bpp`` (in log bpp)."""
    chosen = []
    for record in records:
        entry = record["codecs"].get(name, {})
        points = [p for p in entry.get("points", []) if _finite(p["bpp"]) and p["bpp"] > 0]
        if entry.get("status") == "done" and points:
            chosen.append(min(points, key=lambda p: abs(math.log(p["bpp"] / bpp))))
    return chosen


# ---------------------------------------------------------------- figures

def _ssim_label(records: list[dict[str, Any]]) -> str:
    methods = {p["ms_ssim_method"] for r in records for e in r["codecs"].values() for p in e.get("points", [])}
    return "MS-SSIM" if methods <= {"ms-ssim"} else "MS-SSIM / SSIM (" + "; ".join(sorted(methods)) + ")"


def rd_figure(entry: dict[str, Any], records: list[dict[str, Any]], title: str, path: Path) -> bool:
    """PSNR and MS-SSIM against bpp, one curve per codec (mean over images), and temporal flicker against bpp
    for sequences; False when nothing to plot."""
    panels = [("psnr", "PSNR (dB, peak = image max - min)"), ("ms-ssim", _ssim_label(records))]
    if entry.get("kind") == "sequences":
        panels.append(("temporal_flicker", "temporal flicker (stored units, lower is better)"))
    fig = _figure(6 * len(panels), 4.6)
    axes = fig.subplots(1, len(panels))
    plotted = False
    for codec in entry["codecs"]:
        r = codec["results"]
        style = {"marker": "o" if codec["name"].startswith("medinr") else ".",
                 "linewidth": 2.2 if codec["name"].startswith("medinr") else 1.2,
                 "label": f"{codec['name']} (n={codec['images']})"}
        for ax, (key, _) in zip(axes, panels):
            pts = [(b, v if _finite(v) else np.nan) for b, p, v in zip(r["bpp"], r["psnr"], r.get(key, []))
                   if _finite(b) and _finite(p)]
            if pts:
                ax.plot(*zip(*pts), **style)
                plotted = True
    if not plotted:
        return False
    for ax, (_, label) in zip(axes, panels):
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (real file size)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.savefig(path)
    return True


def bar_figure(values: dict[str, dict[str, list[float]]], bpp: float, anchor: str, title: str, path: Path) -> bool:
    """Bars like the paper's figures: PSNR and MS-SSIM at ``bpp``, and bpp at the anchor's PSNR there."""
    panels = [("psnr", f"PSNR (dB) at {bpp:g} bpp"), ("ms_ssim", f"MS-SSIM at {bpp:g} bpp"),
              ("bpp_at_anchor_psnr", f"bpp for {anchor}'s PSNR at {bpp:g} bpp")]
    names = [n for n in values if any(values[n][k] for k, _ in panels)]
    if not names:
        return False
    fig = _figure(13, 4.2)
    axes = fig.subplots(1, 3)
    colours = {n: f"C{i}" for i, n in enumerate(values)}
    for ax, (key, label) in zip(axes, panels):
        shown = [n for n in names if values[n][key]]
        means = [float(np.mean(values[n][key])) for n in shown]
        bars = ax.bar(range(len(shown)), means, color=[colours[n] for n in shown])
        for bar, n, m in zip(bars, shown, means):
            ax.annotate(f"{m:.3g}\nn={len(values[n][key])}", (bar.get_x() + bar.get_width() / 2, m),
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(shown)), shown, rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        if means and key != "bpp_at_anchor_psnr":
            low = min(means)
            ax.set_ylim(low - 0.15 * (max(means) - low + 1e-3) - (0.02 if key == "ms_ssim" else 1.0),
                        max(means) + 0.25 * (max(means) - low + 1e-3) + (0.01 if key == "ms_ssim" else 0.5))
        elif means:
            ax.set_ylim(0, 1.2 * max(means))
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.savefig(path)
    return True


def _source_image(record: dict[str, Any], cfg: Any) -> Any:
    from medinr.bench.datasets import BenchItem

    item = BenchItem(record["id"], record["dataset"], tuple(record["paths"]), record["select"],
                     record.get("kind") == "sequence")
    return load_bench_image(item, cfg)


def visual_figure(records: list[dict[str, Any]], codecs: list[str], cfg: Any, bpp: float, title: str,
                  path: Path) -> tuple[bool, str]:
    """Original, medinr and JPEG 2000 at the medinr file's bpp, with absolute-error maps: whether the figure
    was written, and its caption (or why there is none)."""
    from medinr import codec as medinr_codec
    from medinr.bench.baselines import encode_to_bpp, get_baseline
    from medinr.metrics import psnr

    candidates = [(r, n, p) for r in records for n in codecs if parse_medinr(n, cfg) is not None
                  for p in r["codecs"].get(n, {}).get("points", []) if "bitstream_b64" in p]
    if not candidates:
        return False, "no medinr file was kept for this data set, so there is no visual comparison"
    record, name, point = min(candidates, key=lambda c: abs(math.log(c[2]["bpp"] / bpp)))
    try:
        source = _source_image(record, cfg)
    except MedinrError as exc:
        return False, f"source image not readable at report time ({exc})"
    decoded = medinr_codec.decode(base64.b64decode(point["bitstream_b64"])).pixels
    if decoded.shape != source.pixels.shape:
        return False, f"the stored medinr file decodes to {decoded.shape}, the source is now {source.pixels.shape}"
    middle = source.frames // 2
    original = source.frame_stack()[middle].astype(np.float64)
    medinr_frame = decoded.reshape(source.frame_stack().shape)[middle].astype(np.float64)
    jp2 = get_baseline("jpeg2000")
    frame_pixels = source.frame_stack()[middle]
    try:
        data, _ = encode_to_bpp(jp2, frame_pixels, point["bpp"], bits=source.bits_stored, signed=source.signed)
    except MedinrError as exc:
        return False, f"JPEG 2000 could not be matched to {point['bpp']:.3f} bpp on this image ({exc})"
    j2k_frame = jp2.decode(data, bits=source.bits_stored, signed=source.signed).astype(np.float64)
    j2k_bpp = 8 * len(data) / frame_pixels.size
    h, w = original.shape
    size = min(VISUAL_CROP, h, w)
    top, left = (h - size) // 2, (w - size) // 2
    view = (slice(top, top + size), slice(left, left + size))
    err_m, err_j = np.abs(medinr_frame - original), np.abs(j2k_frame - original)
    vmax = max(float(np.percentile(np.concatenate([err_m[view].ravel(), err_j[view].ravel()]), 99.5)), 1.0)
    lo, hi = float(original.min()), float(original.max())
    panels = [(original, "original", "gray", (lo, hi)),
              (medinr_frame, f"{name}\n{point['bpp']:.3f} bpp, {psnr(original, medinr_frame):.2f} dB", "gray",
               (lo, hi)),
              (j2k_frame, f"JPEG 2000\n{j2k_bpp:.3f} bpp, {psnr(original, j2k_frame):.2f} dB", "gray", (lo, hi)),
              (err_m, f"|error| {name}", "inferno", (0.0, vmax)), (err_j, "|error| JPEG 2000", "inferno", (0.0, vmax))]
    fig = _figure(15, 3.6)
    axes = fig.subplots(1, 5)
    for ax, (image, label, cmap, (vlo, vhi)) in zip(axes, panels):
        shown = ax.imshow(image[view], cmap=cmap, vmin=vlo, vmax=vhi, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    fig.colorbar(shown, ax=axes[3:], shrink=0.8, label="absolute error (stored values)")
    fig.suptitle(title)
    fig.savefig(path)
    frame = f", frame {middle + 1} of {source.frames}" if source.frames > 1 else ""
    return True, (f"{html.escape(record['id'])}{frame}: centre {size} x {size} px. PSNR over the whole frame; the "
            f"medinr bpp is that of the whole file{' (all frames)' if source.frames > 1 else ''}, JPEG 2000 was "
            "encoded at report time to match it. Error maps share one colour scale.")


# ---------------------------------------------------------------- tables and page

def _fmt(value: Any, spec: str = ".3g") -> str:
    return "&ndash;" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bd_table(bd: dict[str, Any]) -> str:
    rows = []
    for name, s in bd["per_codec"].items():
        curves = s["mean_curves"] or {}
        overlap = s["per_image_overlap_psnr_db"]
        curve_overlap = curves.get("bd_rate_overlap_psnr_db")
        window = s.get("bd_rate_window_percent") or {"mean": None, "median": None, "count": 0}
        rows.append([html.escape(name), _fmt(s["bd_rate_percent"]["mean"], "+.1f"),
                     _fmt(s["bd_rate_percent"]["median"], "+.1f"), f"{s['images_with_bd_rate']}/{s['images']}",
                     f"{_fmt(window['mean'], '+.1f')} / {_fmt(window['median'], '+.1f')} ({window['count']})",
                     _fmt(s["bd_psnr_db"]["mean"], "+.2f"),
                     f"{overlap[0]:.1f}&ndash;{overlap[1]:.1f}" if overlap else "&ndash;",
                     _fmt(curves.get("bd_rate_percent"), "+.1f"),
                     f"{curve_overlap[0]:.1f}&ndash;{curve_overlap[1]:.1f}" if curve_overlap else
                     html.escape(curves.get("bd_rate_reason") or "") or "&ndash;"])
    return _table([f"codec vs {html.escape(bd['anchor'])}", "BD-rate mean %", "median %", "images",
                   f"inside {html.escape(WINDOW_LABEL)}: mean / median % (images)", "BD-PSNR mean dB", "per-image overlaps (PSNR dB)", "BD-rate of mean curves %",
                   "its overlap (PSNR dB)"], rows)


def _finite_mean(values: list[Any]) -> float:
    finite = [v for v in values if _finite(v)]
    return float(np.mean(finite)) if finite else math.nan


def cost_table(entry: dict[str, Any], records: list[dict[str, Any]], bpp: float) -> str:
    rows = []
    for codec in entry["codecs"]:
        name = codec["name"]
        points = _nearest_points(records, name, bpp)
        status = f"{codec['images']} done, {codec['unsupported']} unsupported, {codec['errors']} errors"
        if not points:
            rows.append([html.escape(name), status] + ["&ndash;"] * 7)
            continue
        mean = {key: _finite_mean([p[key] for p in points]) for key in
                ("bpp", "compression_ratio", "psnr", "ms_ssim", "encode_seconds", "decode_seconds")}
        models = [p["model"] for p in points if p.get("model")]
        model = (f"{np.mean([m['parameters'] or 0 for m in models]):,.0f} params, "
                 f"{np.mean([m['model_bytes'] for m in models]):,.0f} B") if models else "none (transform codec)"
        rows.append([html.escape(name), status, _fmt(mean["bpp"], ".3f"), _fmt(mean["compression_ratio"], ".1f"),
                     _fmt(mean["psnr"], ".2f"), _fmt(mean["ms_ssim"], ".4f"), _fmt(mean["encode_seconds"], ".3g"),
                     _fmt(1000 * mean["decode_seconds"], ".3g"), model])
    return _table(["codec", "images", "bpp", "ratio", "PSNR dB", "MS-SSIM", "encode s", "decode ms",
                   "decoder model (mean)"], rows)


def cine_table(entry: dict[str, Any], records: list[dict[str, Any]], anchor: str, bpp: float) -> str:
    """The paper's cine table, measured: per codec at its point nearest ``bpp`` (mean over sequences), rate in
    bpp and Mbps, quality, temporal flicker beside the anchor's at the same bpp, time per frame."""
    rows = []
    for codec in entry["codecs"]:
        name = codec["name"]
        status = (f"{codec['images']} done, {codec['unsupported']} unsupported, {codec.get('unavailable', 0)} "
                  f"unavailable, {codec['errors']} errors")
        done = [r for r in records if r["codecs"].get(name, {}).get("status") == "done"]
        points = _nearest_points(done, name, bpp)
        if not points:
            rows.append([html.escape(name), status] + ["&ndash;"] * 9)
            continue
        mean = {key: _finite_mean([p.get(key) for p in points]) for key in
                ("bpp", "mbps", "psnr", "psnr_mean_frames", "ms_ssim", "temporal_flicker",
                 "encode_seconds_per_frame", "decode_ms_per_frame")}
        anchor_flicker = _finite_mean([flicker_at(r["codecs"][anchor]["points"], p["bpp"])
                                       for r, p in zip(done, points)
                                       if name != anchor and r["codecs"].get(anchor, {}).get("status") == "done"])
        rows.append([html.escape(name), status, _fmt(mean["bpp"], ".3f"), _fmt(mean["mbps"], ".3f"),
                     _fmt(mean["psnr"], ".2f"), _fmt(mean["psnr_mean_frames"], ".2f"), _fmt(mean["ms_ssim"], ".4f"),
                     _fmt(mean["temporal_flicker"], ".2f"), _fmt(anchor_flicker, ".2f"),
                     _fmt(mean["encode_seconds_per_frame"], ".3g"), _fmt(mean["decode_ms_per_frame"], ".3g")])
    return _table(["codec", "sequences", "bpp", "Mbps", "PSNR dB", "PSNR dB (mean of frames)", "MS-SSIM",
                   "flicker", f"{html.escape(anchor)} flicker at that bpp", "encode s / frame",
                   "decode ms / frame"], rows)


def _frame_rates(records: list[dict[str, Any]]) -> str:
    """Each sequence's frames and frame rate, saying where the rate was assumed."""
    items = [f"{html.escape(r['id'])}: {r.get('frames', '?')} frames at {_fmt(r.get('fps'), '.3g')} fps"
             + (" (no timing in the source: assumed)" if r.get("fps_assumed") else " (from the source's timing)")
             for r in records]
    return "<p class=note>Mbps at each sequence's frame rate. " + "; ".join(items) + ".</p>"


def unsupported_list(records: list[dict[str, Any]]) -> str:
    reasons: dict[tuple[str, str, str], int] = {}
    for record in records:
        for name, entry in record["codecs"].items():
            if entry["status"] != "done":
                key = (name, entry["status"], entry["reason"] or "")
                reasons[key] = reasons.get(key, 0) + 1
    if not reasons:
        return "<p>Every codec coded every image.</p>"
    items = "".join(f"<li><b>{html.escape(n)}</b> {s} on {c} image(s): {html.escape(r)}</li>"
                    for (n, s, r), c in sorted(reasons.items()))
    return f"<ul>{items}</ul>"


def per_image_table(records: list[dict[str, Any]], anchor: str) -> str:
    names = sorted({n for r in records for n in r["bd_vs_anchor"]})
    def cell(bd: dict[str, Any]) -> str:
        if bd.get("bd_rate_percent") is not None:
            return f"{bd['bd_rate_percent']:+.1f}"
        return f'<span title="{html.escape(bd.get("bd_rate_reason") or "not coded")}">&ndash;</span>'

    rows = [[html.escape(r["id"]), "&times;".join(map(str, r.get("shape", []))), str(r.get("bits_stored", ""))]
            + [cell(r["bd_vs_anchor"].get(n, {})) for n in names] for r in records]
    return _table(["image", "shape", "bits"] + [f"{html.escape(n)} BD-rate % vs {html.escape(anchor)}"
                                                for n in names], rows)


_CSS = """body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1320px;color:#222}
h1{font-size:24px}h2{border-bottom:2px solid #ccc;padding-bottom:4px;margin-top:36px}h3{margin-bottom:6px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f2f2f2}img{max-width:100%}
.note{color:#555;font-size:13px}code{background:#f4f4f4;padding:1px 4px}"""


def targets_text(cfg: Any) -> str:
    """medinr's still-image targets in words: fixed bpps, or per image where the anchor gives the window's PSNRs."""
    if cfg.medinr_window is not None:
        return f"per image, the bpps where {cfg.anchor} gives {', '.join(f'{p:g}' for p in cfg.medinr_window)} dB"
    return f"{', '.join(f'{b:g}' for b in cfg.medinr_bpps)} bpp"


def matched_bpp(cfg: Any, records: list[dict[str, Any]], sequences: bool) -> float:
    """The rate of the matched-rate bars and tables: the middle medinr target (with per-image targets, the median of
    those the records hold)."""
    if sequences:
        bpps = sorted(cfg.sequence_bpps or cfg.medinr_bpps)
    elif cfg.medinr_window is not None:
        bpps = sorted(float(p["rate"]) for r in records for name, entry in r["codecs"].items()
                      if name.startswith("medinr") for p in entry.get("points", [])) or sorted(cfg.medinr_bpps)
    else:
        bpps = sorted(cfg.medinr_bpps)
    return bpps[(len(bpps) - 1) // 2]


def _notes(document: dict[str, Any]) -> str:
    cfg = document["config"]
    not_built = document.get("not_built", NOT_BUILT)
    sequences = any(d.get("kind") == "sequences" for d in document["datasets"].values())
    video = [("Sequences: x264 and x265 through ffmpeg (4:0:0 gray at the bit depth the sequence's range needs, 10 "
              "bits at most for x264 and 12 for x265, one thread, CRF sweep, encoder banner SEI removed), per-frame "
              f"JPEG 2000, NeRV (frame index to frame, {cfg.get('nerv_steps')} fitting steps, 8-bit weights, "
              "entropy-coded); each such file carries a 6-byte side header. bpp is over all frames; flicker = mean "
              "|frame-to-frame change of the decoded &minus; that of the source|, in stored units.")]
    items = [
        f"Preprocessing: {html.escape(document['preprocessing'])}.",
        ("Every bpp is 8 &times; the real file's bytes / pixels, header included; every decoded image comes from "
         "the real decoder run on those bytes. PSNR peak = the source image's max &minus; min; "
         "PSNR with the 2<sup>bits</sup>&minus;1 peak is in the results file as <code>psnr_bits</code>. "
         f"LPIPS: {html.escape(document['metrics_info']['lpips'])}."),
        ("SPIHT: binary-uncoded (no arithmetic-coding stage, which would save roughly 5&ndash;10 % of the rate) "
         "on a CDF 9/7 wavelet, implemented in medinr; rate = exact bit budget of the embedded stream."),
        (f"COIN: SIREN of depth 5, float16 weights, Adam 2e-4 as published, but {cfg.get('coin_steps')} fitting "
         "steps instead of the published 50,000 (CPU budget), so its curve is below what COIN reaches."),
        ("Visual comparisons: the medinr file kept (base64) in the results is decoded at report time; the original "
         "is re-read from its recorded path with the recorded resize/crop; JPEG 2000 is encoded at report time at "
         "the medinr file's bpp."),
    ] + (video if sequences else []) + [f"{html.escape(name)}: {html.escape(why)}."
                                                for name, why in not_built.items()]
    return "<ul class=note>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def write_report(results: Path, out_dir: Path, *, visuals: bool = True) -> Path:
    """Write ``out_dir/index.html`` and its figures for a results file; returns the page's path."""
    from medinr.io.common import atomic_write

    document = load_results(results)
    cfg = config_from_dict(document["config"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    codecs = [c["name"] for c in document["codecs"]]
    sections = []
    for dataset, entry in document["datasets"].items():
        slug = _slug(dataset)
        ids = set(entry["images"])
        records = [r for r in document["images"] if r["id"] in ids]
        sequences = entry.get("kind") == "sequences"
        anchor = entry["bd_vs_anchor"]["anchor"]
        matched = matched_bpp(cfg, records, sequences)
        unit = "sequence(s)" if sequences else "image(s)"
        parts = [f"<h2>{html.escape(dataset)} <span class=note>({len(records)} {unit})</span></h2>"]
        if rd_figure(entry, records, f"{dataset}: rate-distortion (mean over images)", out_dir / f"rd_{slug}.png"):
            parts.append(f'<img src="rd_{slug}.png" alt="rate-distortion curves, {html.escape(dataset)}">')
        values = matched_values(records, codecs, anchor, matched)
        if bar_figure(values, matched, anchor, f"{dataset}: matched rate (per-image interpolation, mean)",
                      out_dir / f"bars_{slug}.png"):
            parts.append(f'<img src="bars_{slug}.png" alt="bar charts at matched rate, {html.escape(dataset)}">')
        parts.append(f"<p class=note>Bars: means over the images (n) whose curve covers {matched:g} bpp (or, right, "
                     f"the anchor's PSNR there); a codec is missing from a panel when no curve covers it.</p>")
        if sequences:
            parts.append(f"<h3>Cine table at the rate point nearest {matched:g} bpp</h3>")
            parts.append(cine_table(entry, records, anchor, matched) + _frame_rates(records))
        parts.append(f"<h3>Cost at the rate point nearest {matched:g} bpp</h3>")
        parts.append(cost_table(entry, records, matched))
        parts.append("<h3>BD-rate and BD-PSNR (Akima)</h3>"
                     + "".join(bd_table(bd) for bd in entry.get("bd_vs_anchors", [entry["bd_vs_anchor"]])))
        parts.append("<p class=note>Negative BD-rate = fewer bits than the anchor at equal PSNR. Per-image values "
                     "are computed over each image's overlap range; the mean-curve value over the overlap of the "
                     "mean curves, on the images both codecs coded.</p>")
        parts.append("<h3>Not coded</h3>" + unsupported_list(records))
        if visuals:
            made, caption = visual_figure(records, codecs, cfg, matched, f"{dataset}: matched bpp",
                                          out_dir / f"visual_{slug}.png")
            parts.append("<h3>Visual comparison at matched bpp</h3>")
            if made:
                parts.append(f'<img src="visual_{slug}.png" alt="visual comparison, {html.escape(dataset)}">')
            parts.append(f"<p class=note>{caption}</p>")
        parts.append("<details><summary>Per-image BD-rate</summary>"
                     + per_image_table(records, anchor) + "</details>")
        sections.append("\n".join(parts))
    machine = document["machine"]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>medinr benchmark</title><style>{_CSS}</style></head>
<body><h1>medinr benchmark report</h1>
<p>Codecs: {html.escape(', '.join(codecs))}. Anchor: {html.escape(document['bd_rate_vs_anchor']['anchor'])}
(sequences: {html.escape(', '.join(cfg.video_anchors))} where run). medinr targets: {html.escape(targets_text(cfg))}{
        '' if not cfg.sequence_bpps else ' (sequences ' + html.escape(', '.join(f'{b:g}' for b in cfg.sequence_bpps))
        + ' bpp)'}{' (quick run)' if cfg.quick else ''}.
Machine: {html.escape(str(machine.get('platform')))}, {machine.get('cpus')} CPUs, {cfg.jobs} job(s);
run time {document['elapsed_seconds'] / 60:.1f} min.</p>
{_notes(document)}
{''.join(sections)}
</body></html>
"""
    atomic_write(out_dir / PAGE, ".html", lambda tmp: tmp.write_text(page))
    return out_dir / PAGE
