"""Rate-control primitives shared by the architectures: targets and monotone searches over one integer knob."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateTarget:
    """``bpp``: file size; ``psnr``: smallest file reaching it; ``quality``: the architecture's natural point."""

    mode: str
    value: float | None = None

    @classmethod
    def from_args(cls, bpp: float | None, psnr: float | None) -> RateTarget:
        if bpp is not None:
            return cls("bpp", bpp)
        if psnr is not None:
            return cls("psnr", psnr)
        return cls("quality")


def largest_true(ok: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """Largest k in [lo, hi] with ``ok(k)``, for ``ok`` true below a threshold and false above; None if never."""
    if not ok(lo):
        return None
    if ok(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def closest_size(size: Callable[[int], int], budget: float, lo: int, hi: int) -> int:
    """k in [lo, hi] whose size is closest to ``budget``, for ``size`` decreasing in k."""
    below = largest_true(lambda k: size(k) >= budget, lo, hi)
    if below is None:
        return lo
    candidates = [below] + ([below + 1] if below < hi else [])
    return min(candidates, key=lambda k: abs(size(k) - budget))


def closest_size_fine(size: Callable[[float], int], budget: float, lo: int, hi: int, tolerance: float = 0.005,
                      most: int = 20) -> float:
    """x in [lo, hi] whose size is closest to ``budget``, for ``size`` decreasing in x and defined between the
    integers too: :func:`closest_size` on the integers, then bisection between the two that bracket the budget
    until their sizes differ by at most ``tolerance`` of it (at most ``most`` halvings). For knobs the decoder
    never sees (a dead zone), where one integer step can move the size by several %, and trained latents can
    crowd within 1/1000 of a rounding boundary (straight-through training leaves them there)."""
    below = largest_true(lambda k: size(k) >= budget, lo, hi)
    if below is None or below == hi:
        return lo if below is None else hi
    a, b = float(below), float(below + 1)  # size(a) >= budget > size(b)
    for _ in range(most):
        if size(a) - size(b) <= tolerance * budget:
            break
        mid = 0.5 * (a + b)
        a, b = (mid, b) if size(mid) >= budget else (a, mid)
    return min((a, b), key=lambda x: abs(size(x) - budget))
