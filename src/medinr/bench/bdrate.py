"""Bjontegaard deltas between two rate-distortion curves (bjontegaard package, Akima interpolation).

Curves are lists of ``(bpp, psnr)`` points. Before the delta each curve is cleaned, and every change is
recorded in the result: points with a non-finite or non-positive value (lossless points have infinite
PSNR) are dropped, points are sorted by rate, and a point whose PSNR does not rise above the last kept
point is dropped, because the interpolation needs PSNR strictly increasing with rate.

A BD-rate can be limited to a PSNR window (the issues' targets are "over the range where JPEG 2000 gives
35-50 dB"): both curves are cut at the window's edges inside their overlap, with end points interpolated
linearly in log rate, and the delta integrates over that interval only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

Curve = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class BDResult:
    """One Bjontegaard delta: ``value`` in ``unit``, or None with ``reason`` when it cannot be computed.

    ``overlap`` is the interval both curves cover on the integration axis (PSNR in dB for BD-rate,
    bpp for BD-PSNR); ``points`` counts the cleaned points of (anchor, test) inside it; ``notes``
    says which points were dropped and why.
    """

    metric: str
    value: float | None
    unit: str
    overlap: tuple[float, float] | None
    points: tuple[int, int]
    notes: tuple[str, ...] = field(default_factory=tuple)
    reason: str | None = None


def clean_curve(curve: Curve, label: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rates and PSNRs sorted by rate with PSNR strictly increasing, plus notes on what was dropped."""
    notes: list[str] = []
    pts = sorted(((float(r), float(d)) for r, d in curve), key=lambda p: (p[0], -p[1]))
    finite = [(r, d) for r, d in pts if math.isfinite(r) and math.isfinite(d) and r > 0]
    if len(finite) < len(pts):
        notes.append(f"{label}: dropped {len(pts) - len(finite)} point(s) with non-finite PSNR or rate <= 0")
    kept: list[tuple[float, float]] = []
    for r, d in finite:
        if kept and (d <= kept[-1][1] or r == kept[-1][0]):
            notes.append(f"{label}: dropped non-monotonic point ({r:.4g} bpp, {d:.4g} dB)")
            continue
        kept.append((r, d))
    rates = np.array([r for r, _ in kept], dtype=np.float64)
    psnrs = np.array([d for _, d in kept], dtype=np.float64)
    return rates, psnrs, notes


def axis_name(metric: str) -> str:
    """The axis a delta integrates over: PSNR for BD-rate, bpp for BD-PSNR."""
    return "PSNR" if metric == "bd-rate" else "bpp"


#: PSNR window (dB) of the bench's windowed BD-rate: the issues' targets are "over the range where JPEG 2000 gives
#: 35-50 dB"
BD_WINDOW_DB = (35.0, 50.0)
WINDOW_LABEL = f"{BD_WINDOW_DB[0]:g}-{BD_WINDOW_DB[1]:g} dB"
#: a windowed BD-rate needs at least this much PSNR overlap inside the window, in dB
MIN_WINDOW_OVERLAP_DB = 1.0


def _cut(rates: np.ndarray, psnrs: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The curve between PSNRs ``lo`` and ``hi`` (inside its span), end points interpolated in log rate."""
    inside = (psnrs > lo) & (psnrs < hi)
    edges = np.exp(np.interp([lo, hi], psnrs, np.log(rates)))
    return (np.concatenate([[edges[0]], rates[inside], [edges[1]]]),
            np.concatenate([[lo], psnrs[inside], [hi]]))


def _bd(metric: str, anchor: Curve, test: Curve, window: tuple[float, float] | None = None) -> BDResult:
    import bjontegaard

    ra, da, notes_a = clean_curve(anchor, "anchor")
    rt, dt, notes_t = clean_curve(test, "test")
    if window is not None and min(len(ra), len(rt)) >= 2:
        lo, hi = max(da.min(), dt.min(), window[0]), min(da.max(), dt.max(), window[1])
        if hi - lo < MIN_WINDOW_OVERLAP_DB:
            return BDResult(metric, None, "%", None, (0, 0), tuple(notes_a + notes_t),
                            f"less than {MIN_WINDOW_OVERLAP_DB:g} dB of the curves' PSNR overlap inside "
                            f"{window[0]:g}-{window[1]:g} dB")
        (ra, da), (rt, dt) = _cut(ra, da, lo, hi), _cut(rt, dt, lo, hi)
    notes = tuple(notes_a + notes_t)
    unit, axis_a, axis_t = ("%", da, dt) if metric == "bd-rate" else ("dB", ra, rt)
    if min(len(ra), len(rt)) < 2:
        return BDResult(metric, None, unit, None, (len(ra), len(rt)), notes,
                        f"fewer than 2 usable points (anchor {len(ra)}, test {len(rt)})")
    lo, hi = max(axis_a.min(), axis_t.min()), min(axis_a.max(), axis_t.max())
    inside = (int(np.sum((axis_a >= lo) & (axis_a <= hi))), int(np.sum((axis_t >= lo) & (axis_t <= hi))))
    if hi <= lo:
        return BDResult(metric, None, unit, None, (0, 0), notes, f"the curves do not overlap in {axis_name(metric)}")
    if min(inside) < 2:
        return BDResult(metric, None, unit, (float(lo), float(hi)), inside, notes,
                        f"fewer than 2 points of each curve in the overlap (anchor {inside[0]}, test {inside[1]})")
    fn = bjontegaard.bd_rate if metric == "bd-rate" else bjontegaard.bd_psnr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the overlap is reported in the result instead
        value = fn(ra, da, rt, dt, method="akima", require_matching_points=False, min_overlap=0.0)
    return BDResult(metric, float(value), unit, (float(lo), float(hi)), inside, notes)


def bd_rate(anchor: Curve, test: Curve, window: tuple[float, float] | None = None) -> BDResult:
    """Average bpp change of ``test`` against ``anchor`` at equal PSNR, in percent (negative = fewer bits), over
    the curves' PSNR overlap, or only the part of it inside ``window`` (dB)."""
    return _bd("bd-rate", anchor, test, window)


def bd_psnr(anchor: Curve, test: Curve) -> BDResult:
    """Average PSNR change of ``test`` against ``anchor`` at equal bpp, in dB (positive = better)."""
    return _bd("bd-psnr", anchor, test)
