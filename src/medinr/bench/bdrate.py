"""Bjontegaard deltas between two rate-distortion curves (bjontegaard package, Akima interpolation).

Curves are lists of ``(bpp, psnr)`` points. Before the delta each curve is cleaned, and every change is
recorded in the result: points with a non-finite or non-positive value (lossless points have infinite
PSNR) are dropped, points are sorted by rate, and a point whose PSNR does not rise above the last kept
point is dropped, because the interpolation needs PSNR strictly increasing with rate.
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


def _bd(metric: str, anchor: Curve, test: Curve) -> BDResult:
    import bjontegaard

    ra, da, notes_a = clean_curve(anchor, "anchor")
    rt, dt, notes_t = clean_curve(test, "test")
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


def bd_rate(anchor: Curve, test: Curve) -> BDResult:
    """Average bpp change of ``test`` against ``anchor`` at equal PSNR, in percent (negative = fewer bits)."""
    return _bd("bd-rate", anchor, test)


def bd_psnr(anchor: Curve, test: Curve) -> BDResult:
    """Average PSNR change of ``test`` against ``anchor`` at equal bpp, in dB (positive = better)."""
    return _bd("bd-psnr", anchor, test)
