"""Checkerboard context coding of integer latent grids with a Laplace (mean, scale) per symbol.

Levels are coded coarsest first. Each level takes two passes (He et al. 2021, "checkerboard context"):
the anchors ((i + j) even) are predicted from the coarser level only, the others also from their four
anchor neighbours, so a whole pass is one vectorised model evaluation and vectorised calls of constriction's
range coder (one per pass, or one per table for table coding, below), on encode and decode alike.

Determinism: a single differing probability corrupts the rest of the stream, so the predictor hands
over means already on a ``1 / 2**MEAN_FRAC`` grid and integer log-scale indices (scale =
``2 ** (index / SCALE_STEPS)``, from a fixed table), and the encoder runs exactly the decoder's two
passes on exactly the decoder's partial grids. :func:`fixed_point` is the helper predictors use to
compute in exact fixed point inside float64 (see :mod:`medinr.models.grid`).

Table coding (format 1.3, ``tables=True``): constriction's per-symbol Laplace costs about 170 ns a symbol
(a quantile search with exponentials), a fixed categorical table about 35 ns. A large pass (at least
TABLE_MIN_SYMBOLS symbols, level span at most TABLE_MAX_SPAN) therefore codes each symbol's residual from its
rounded mean with one table per (scale index, mean fraction bin): symbols are grouped by table (a stable sort, so
the decoder knows the order before decoding), each group in one call. On 512 px cxr crops at 0.5 bpp this coded
the same size to 0.1 % and range decoding went from 43-57 to 18-25 ms. Table weights are computed in float64 and
rounded to integers on a 2**-20 grid, so a platform's last-bit difference in ``exp`` can change a table only if it
straddles a rounding boundary (about 1e-13 per entry); constriction quantises the integers deterministically.
Smaller passes, and every pass of a 1.2 stream, keep the per-symbol Laplace.

Interpolated levels (format 1.8, ``interpolation``): a level without a parent (a wavelet's approximation band, a
pyramid's coarsest level) gives the context network nothing to read on its first pass, and its trained second
pass did no better (5.5-7.7 bits a coefficient on either pass; a 1024 px cxr/train proxy at 0.03-0.12 bpp, where
that 32x32 band was 6-21 % of the latent bits). Such a 2D level is instead coded by interpolation, coarse to fine
(:func:`interpolation_passes`): its even-even subgrid first (recursively, down to one sample), then the odd-odd
positions from their four diagonal neighbours, then the rest from their four direct ones; each symbol's mean is the
median of its known neighbours (their mean when fewer than four) and its scale ``base + slope * activity``, the
activity being their mean absolute deviation, with (base, slope) one byte per stream (:class:`Interpolation`). On
that proxy the band took 28-26 % fewer bits (ideal code lengths).

Slice scales (format 1.12, :func:`with_slice_scales`): a level whose first axis indexes something the context
network does not see, such as a ``grid-video`` level's temporal frequencies, can carry one log-scale offset per
index along that axis, in 1/8 octaves, one signed varint each ahead of the section. The DC coefficients of a
sequence's latents are far larger than its high frequencies, which the network tells apart only through their
neighbours: on cine/train (20 frames, 256 px, ``balanced``, 1.11 files) an offset per (level, frequency) chosen
afterwards cut the ideal code length by 14.9 / 6.7 / 5.7 % at 0.05 / 0.2 / 1 bpp.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import constriction
import numpy as np

from medinr.errors import BitstreamError
from medinr.varint import read_svarint, write_svarint

MEAN_FRAC = 6
SCALE_STEPS = 16
#: log-scale indices are clipped to this range: scales 2**-5 .. 2**10
SCALE_INDEX_RANGE = (-5 * SCALE_STEPS, 10 * SCALE_STEPS)
#: largest latent magnitude a stream may hold (keeps predictor arithmetic exact)
MAX_ABS_LATENT = 2**12 - 1
_SCALE_INDICES = np.arange(SCALE_INDEX_RANGE[0], SCALE_INDEX_RANGE[1] + 1)
#: the scale of every allowed index: 2 ** (index // SCALE_STEPS) times a 2 ** (k / SCALE_STEPS) table, so that no
#: platform's pow() can make it differ
_SCALE_TABLE = np.ldexp(np.array([2.0 ** (k / SCALE_STEPS) for k in range(SCALE_STEPS)])
                        [_SCALE_INDICES % SCALE_STEPS], _SCALE_INDICES // SCALE_STEPS)

#: a pass is table-coded when it has at least this many symbols and its level's span (max - min) is at most
#: TABLE_MAX_SPAN (tables of 2 * span + 1 residuals; smaller passes cost more to tabulate than they save)
TABLE_MIN_SYMBOLS = 8192
TABLE_MAX_SPAN = 511
#: table means: bins of the mean's fraction (at 8 bins the size matched the per-symbol coder's to 0.1 %)
MEAN_BINS = 8
#: table weights are integers at this scale (at least 1: every residual stays codable)
TABLE_WEIGHT_SCALE = 2.0**20
#: built tables, by (group, span), shared by the encoder's many trial codings (cleared when it grows past this)
_TABLE_CACHE_SIZE = 20000
_table_cache: dict[tuple[int, int], constriction.stream.model.Categorical] = {}

#: predict(level, current grid (undecoded = 0), parent grid or None, pass (0: anchors, 1: the rest)) -> (means,
#: scale indices) of that pass's positions (:func:`pass_masks`) in row-major order (only those are evaluated: half
#: the work of a full-grid prediction)
Predictor = Callable[[int, np.ndarray, np.ndarray | None, int], tuple[np.ndarray, np.ndarray]]


#: interpolation rule tables (:class:`Interpolation`): base scales 2**((k - 4) / 2), k = 0..15 (0.25 .. 45), from
#: exact constants; slopes k / 8
_ROOT2 = np.sqrt(2.0)
INTERPOLATION_BASES = np.array([np.ldexp(_ROOT2 if k % 2 else 1.0, (k - 4) // 2) for k in range(16)])
INTERPOLATION_SLOPES = np.arange(16) / 8.0
#: geometric midpoints between consecutive table scales: a scale's index is its bin (no log of a computed value)
_SCALE_BOUNDS = np.sqrt(_SCALE_TABLE[:-1] * _SCALE_TABLE[1:])


#: slice scale offsets (:func:`with_slice_scales`) are multiples of this many scale indices (1/8 octave), at most
#: MAX_SLICE_OFFSET of them either way (one varint byte each)
SLICE_OFFSET_STEP = 2
MAX_SLICE_OFFSET = 63


def fixed_point(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """Round to the nearest multiple of ``2**-frac_bits`` (an exact operation in float64)."""
    return np.rint(np.ldexp(x, frac_bits)) * 2.0**-frac_bits


def scales_of(indices: np.ndarray) -> np.ndarray:
    """Scale ``2 ** (index / SCALE_STEPS)`` of integer indices within SCALE_INDEX_RANGE, from a table (no
    transcendental calls)."""
    return _SCALE_TABLE[np.asarray(indices, dtype=np.int64) - SCALE_INDEX_RANGE[0]]


def anchors(shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of the first pass's positions: the checkerboard's even squares."""
    return (np.indices(shape).sum(axis=0) % 2) == 0


@functools.lru_cache(maxsize=64)
def pass_masks(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The two passes' position masks of a level (anchors, then the rest); cached, read-only."""
    first = anchors(shape)
    masks = (first, ~first)
    for mask in masks:
        mask.flags.writeable = False
    return masks


def scale_indices_of(scales: np.ndarray) -> np.ndarray:
    """Index of the table scale nearest (in log) to each positive scale, clipped to SCALE_INDEX_RANGE; comparisons
    only, so the same on every platform."""
    return np.searchsorted(_SCALE_BOUNDS, scales) + SCALE_INDEX_RANGE[0]


@dataclass(frozen=True)
class Interpolation:
    """How interpolated levels scale their symbols (format 1.8): one byte, the base's index (high nibble,
    INTERPOLATION_BASES) and the slope's (low nibble, INTERPOLATION_SLOPES)."""

    code: int

    def scales(self, activity: np.ndarray) -> np.ndarray:
        return INTERPOLATION_BASES[self.code >> 4] + INTERPOLATION_SLOPES[self.code & 15] * activity


#: neighbour offsets of the diagonal and the direct interpolation passes
_DIAGONAL = ((-1, -1), (-1, 1), (1, -1), (1, 1))
_DIRECT = ((-1, 0), (1, 0), (0, -1), (0, 1))


@functools.lru_cache(maxsize=64)
def interpolation_passes(shape: tuple[int, int]) -> tuple[tuple[np.ndarray, tuple[tuple[int, int], ...]], ...]:
    """An interpolated level's passes in coding order: (position mask, neighbour offsets), the first pass (the
    single sample at (0, 0)) with no neighbours. A pass's neighbours inside the grid are all coded before it (on a
    lattice of stride t, the diagonal pass's are on the stride-2t lattice, the direct pass's there or on the
    diagonal pass), and every position after the first has one (up and/or left)."""
    height, width = shape
    if height == 1 and width == 1:
        return ((np.ones(shape, dtype=bool), ()),)
    passes = []
    for mask, offsets in interpolation_passes(((height + 1) // 2, (width + 1) // 2)):
        spread = np.zeros(shape, dtype=bool)
        spread[::2, ::2] = mask
        passes.append((spread, tuple((2 * dy, 2 * dx) for dy, dx in offsets)))
    rows, cols = np.indices(shape)
    passes.append(((rows % 2 == 1) & (cols % 2 == 1), _DIAGONAL))
    passes.append(((rows + cols) % 2 == 1, _DIRECT))
    for mask, _ in passes:
        mask.flags.writeable = False
    return tuple((mask, offsets) for mask, offsets in passes if mask.any())


def _interpolation_stats(current: np.ndarray, mask: np.ndarray,
                         offsets: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    """(means, activities) of a pass's positions from their neighbours inside the grid (all coded before the pass,
    see :func:`interpolation_passes`), exact in float64 (integer sums, one correctly rounded division each): the
    median of four, else their mean; their mean absolute deviation."""
    at = np.nonzero(mask)
    if not offsets:
        return np.zeros(len(at[0])), np.zeros(len(at[0]))
    values, present = [], []
    for dy, dx in offsets:
        y, x = at[0] + dy, at[1] + dx
        inside = (y >= 0) & (y < current.shape[0]) & (x >= 0) & (x < current.shape[1])
        y, x = np.where(inside, y, 0), np.where(inside, x, 0)
        values.append(np.where(inside, current[y, x], 0.0))
        present.append(inside)
    v, k = np.array(values), np.array(present)
    count = k.sum(axis=0)
    total = (v * k).sum(axis=0)
    middle = total - np.where(k, v, np.inf).min(axis=0) - np.where(k, v, -np.inf).max(axis=0)
    means = np.where(count == 4, middle / 2, total / count)
    activity = (np.abs(count * v - total) * k).sum(axis=0) / (count * count)
    return fixed_point(means, MEAN_FRAC), activity


@functools.lru_cache(maxsize=64)
def _pass_slices(shape: tuple[int, ...], checker_pass: int) -> np.ndarray:
    """Index along the first axis of each position of a checkerboard pass, in the pass's (row-major) order."""
    slices = np.nonzero(pass_masks(shape)[checker_pass])[0]
    slices.flags.writeable = False
    return slices


def with_slice_scales(predict: Predictor, offsets: list[np.ndarray | None]) -> Predictor:
    """``predict`` with each position's scale index raised by ``SLICE_OFFSET_STEP * offsets[level][i]``, i its
    index along the level's first axis (a level whose entry is None unchanged), clipped to SCALE_INDEX_RANGE."""

    def shifted(level: int, current: np.ndarray, parent: np.ndarray | None,
                checker_pass: int) -> tuple[np.ndarray, np.ndarray]:
        means, indices = predict(level, current, parent, checker_pass)
        if offsets[level] is None:
            return means, indices
        shift = SLICE_OFFSET_STEP * offsets[level][_pass_slices(current.shape, checker_pass)]
        return means, np.clip(indices + shift, *SCALE_INDEX_RANGE)

    return shifted


def choose_slice_offsets(levels: list[np.ndarray], predict: Predictor, counts: list[int],
                         parents: list[int | None] | None = None) -> list[np.ndarray | None]:
    """Per level with a nonzero count (the length of its first axis), the offset of each slice along that axis
    that codes it in the fewest ideal bits under ``predict`` (an encoder's, which knows every level), from the
    whole range; None for the others. Exact and quick: a slice's (|residual|, scale index) pairs are counted once,
    then every offset is costed on the distinct pairs (a few thousand where a slice has tens of thousands of
    symbols)."""
    parents = _parents(len(levels), parents)
    offsets = np.arange(-MAX_SLICE_OFFSET, MAX_SLICE_OFFSET + 1)
    span = SCALE_INDEX_RANGE[1] - SCALE_INDEX_RANGE[0] + 1
    out: list[np.ndarray | None] = []
    for s, (z, count) in enumerate(zip(levels, counts)):
        if not count:
            out.append(None)
            continue
        parent = None if parents[s] is None else levels[parents[s]].astype(np.float64)
        current = z.astype(np.float64)
        residual, index = np.empty(z.shape), np.empty(z.shape, dtype=np.int64)
        for checker_pass, mask in enumerate(pass_masks(z.shape)):
            means, indices = predict(s, current, parent, checker_pass)
            residual[mask], index[mask] = np.abs(z[mask] - means), indices
        chosen = []
        for r, i in zip(residual.reshape(count, -1), index.reshape(count, -1)):
            pairs, weight = np.unique(np.rint(np.ldexp(r, MEAN_FRAC)).astype(np.int64) * span
                                      + (i - SCALE_INDEX_RANGE[0]), return_counts=True)
            magnitude, base = np.ldexp(pairs // span, -MEAN_FRAC), pairs % span + SCALE_INDEX_RANGE[0]
            shifted = np.clip(base[None] + SLICE_OFFSET_STEP * offsets[:, None], *SCALE_INDEX_RANGE)
            chosen.append(offsets[np.argmin(laplace_bits(magnitude[None], scales_of(shifted)) @ weight)])
        out.append(np.array(chosen, dtype=np.int64))
    return out


def write_slice_offsets(offsets: list[np.ndarray | None]) -> bytes:
    """The offsets of every level that has them, finest level first, one signed varint each."""
    return b"".join(write_svarint(int(v)) for level in offsets if level is not None for v in level)


def read_slice_offsets(data: bytes, counts: list[int]) -> tuple[list[np.ndarray | None], int]:
    """Inverse of :func:`write_slice_offsets` given each level's offset count (0: none): (offsets, bytes read)."""
    pos, out = 0, []
    for count in counts:
        values = []
        for _ in range(count):
            value, pos = read_svarint(data, pos, "latent section (slice scales)")
            if abs(value) > MAX_SLICE_OFFSET:
                raise BitstreamError("corrupted latent section (slice scale out of range)")
            values.append(value)
        out.append(np.array(values, dtype=np.int64) if count else None)
    return out, pos


PassModel = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _level_passes(level: int, shape: tuple[int, ...], predict: Predictor, parent: np.ndarray | None,
                  interpolation: Interpolation | None) -> list[tuple[np.ndarray, PassModel]]:
    """A level's passes in coding order: (position mask, model), the model giving that pass's (means, scale
    indices) from the grid decoded so far. Interpolated when ``interpolation`` is given and the level is 2D with no
    parent; otherwise the context network's two checkerboard passes."""
    if interpolation is None or parent is not None or len(shape) != 2:
        return [(mask, lambda current, index=index: predict(level, current, parent, index))
                for index, mask in enumerate(pass_masks(shape))]
    rule = interpolation

    def model(current: np.ndarray, mask: np.ndarray, offsets: tuple[tuple[int, int], ...]) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
        means, activity = _interpolation_stats(current, mask, offsets)
        if not offsets:  # the first sample: nothing known
            return means, np.full(len(means), SCALE_INDEX_RANGE[1])
        return means, scale_indices_of(rule.scales(activity))

    return [(mask, functools.partial(model, mask=mask, offsets=offsets))
            for mask, offsets in interpolation_passes(shape)]


def laplace_bits(residuals: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Ideal code length in bits of integer-interval residuals (value - mean) under Laplaces of these scales."""
    d = np.abs(residuals)
    near = np.exp(-np.abs(d - 0.5) / scales)  # exp(-|x| / s) at the interval's end nearer the mean ...
    far = np.exp(-(d + 0.5) / scales)  # ... and at its far end
    mass = np.where(d < 0.5, 1 - 0.5 * (near + far), 0.5 * (near - far))
    return -np.log2(np.maximum(mass, 2.0**-24))


def choose_interpolation(levels: list[np.ndarray], predict: Predictor,
                         parents: list[int | None] | None = None) -> Interpolation | None:
    """The interpolation rule that codes the parentless 2D levels in the fewest ideal bits, or None when the
    context network codes them in fewer (counting the rule's byte)."""
    parents = _parents(len(levels), parents)
    chosen = [s for s, p in enumerate(parents) if p is None and levels[s].ndim == 2 and np.ptp(levels[s]) > 0]
    if not chosen:
        return None
    network_bits, root_bits, residuals, activities = 8.0, 0.0, [], []
    for s in chosen:
        z = levels[s].astype(np.float64)
        current = np.zeros(z.shape)
        for mask, model in _level_passes(s, z.shape, predict, None, None):
            means, indices = model(current)
            network_bits += float(laplace_bits(z[mask] - means, scales_of(indices)).sum())
            current[mask] = z[mask]
        root = z[interpolation_passes(z.shape)[0][0]]  # the first sample, under the widest scale whatever the rule
        root_bits += float(laplace_bits(root, scales_of(np.array([SCALE_INDEX_RANGE[1]]))).sum())
        for mask, offsets in interpolation_passes(z.shape)[1:]:
            means, activity = _interpolation_stats(z, mask, offsets)
            residuals.append(z[mask] - means)
            activities.append(activity)
    residual, activity = np.concatenate(residuals), np.concatenate(activities)
    codes = np.arange(256)  # every rule at once, (rule, sample): a loop over them took 8 of 30 ms a 512 px coding
    scales = INTERPOLATION_BASES[codes >> 4, None] + INTERPOLATION_SLOPES[codes & 15, None] * activity
    bits = laplace_bits(residual, scales_of(scale_indices_of(scales))).sum(axis=1)
    best = int(np.argmin(bits))
    return Interpolation(best) if float(bits[best]) + root_bits < network_bits else None


def _model_args(means: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(means, dtype=np.float64), np.ascontiguousarray(scales_of(indices), dtype=np.float64)


def _table_weights(groups: np.ndarray, span: int) -> np.ndarray:
    """Integer weights, (len(groups), 2 span + 1), of the residuals -span..span from a symbol's rounded mean under
    a Laplace at each group's scale (index ``group // MEAN_BINS``) and mean (its fraction bin's centre); each
    interval's mass from the side of the mean it lies on, so that no tail loses it to cancellation."""
    scale = scales_of(groups // MEAN_BINS + SCALE_INDEX_RANGE[0])[:, None]
    mean = ((groups % MEAN_BINS + 0.5) / MEAN_BINS - 0.5)[:, None]
    residual = np.arange(-span, span + 1)[None]
    upper = np.exp(-np.abs(residual - mean + 0.5) / scale)  # exp(-|x| / s) at the interval's two ends
    lower = np.exp(-np.abs(residual - mean - 0.5) / scale)
    mass = np.where(residual > 0, 0.5 * (lower - upper), np.where(residual < 0, 0.5 * (upper - lower),
                                                                  1 - 0.5 * (upper + lower)))
    return np.maximum(1.0, np.rint(mass * TABLE_WEIGHT_SCALE))


def _tables(groups: np.ndarray, span: int) -> list[constriction.stream.model.Categorical]:
    """The categorical model of each group at this span, built (vectorised) the first time it is needed."""
    missing = [int(g) for g in groups if (int(g), span) not in _table_cache]
    if len(_table_cache) + len(missing) > _TABLE_CACHE_SIZE:  # full: start again, with every table of this pass
        _table_cache.clear()
        missing = [int(g) for g in groups]
    if missing:
        for group, weights in zip(missing, _table_weights(np.array(missing), span)):
            _table_cache[group, span] = constriction.stream.model.Categorical(weights, perfect=False)
    return [_table_cache[int(g), span] for g in groups]


def _table_order(means: np.ndarray, indices: np.ndarray, low: int,
                 high: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A table-coded pass's plan: each symbol's rounded mean (clipped to the level's range), the coding order (by
    table, stable), and the tables used with their symbol counts, in that order."""
    centre = np.clip(np.rint(means), low, high).astype(np.int64)
    bins = np.clip(np.floor((means - centre + 0.5) * MEAN_BINS), 0, MEAN_BINS - 1).astype(np.int64)
    group = ((indices - SCALE_INDEX_RANGE[0]) * MEAN_BINS + bins).astype(np.int16)  # < 2**15: numpy's radix sort
    order = np.argsort(group, kind="stable")
    ordered = group[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return centre, order, ordered[starts].astype(np.int64), np.diff(np.r_[starts, len(group)])


def _table_coded(symbols: int, low: int, high: int, tables: bool) -> bool:
    return tables and symbols >= TABLE_MIN_SYMBOLS and high - low <= TABLE_MAX_SPAN


def _parents(count: int, parents: list[int | None] | None) -> list[int | None]:
    """Each level's parent (a later, so earlier coded, level): by default s + 1, none for the last."""
    chain = parents if parents is not None else [s + 1 if s + 1 < count else None for s in range(count)]
    if len(chain) != count or any(p is not None and not s < p < count for s, p in enumerate(chain)):
        raise ValueError("each level's parent must be a later level")
    return chain


def encode_levels(levels: list[np.ndarray], predict: Predictor, parents: list[int | None] | None = None,
                  interpolation: Interpolation | None = None) -> bytes:
    """Code integer grids (finest first, level s+1 the parent of s unless ``parents`` says otherwise, see
    :meth:`medinr.models.grid.GridConfig.parents`) into one byte string (table coding, 1.3), the last level first.
    ``interpolation`` (format 1.8): parentless 2D levels are interpolated under this rule, whose byte leads."""
    parents = _parents(len(levels), parents)
    side = bytearray() if interpolation is None else bytearray([interpolation.code])
    coder = constriction.stream.queue.RangeEncoder()
    for s in reversed(range(len(levels))):
        z = np.asarray(levels[s], dtype=np.int64)
        low, high = int(z.min()), int(z.max())
        if max(-low, high) > MAX_ABS_LATENT:
            raise ValueError(f"latent magnitude {max(-low, high)} exceeds {MAX_ABS_LATENT}")
        side += write_svarint(low)
        side += write_svarint(high - low)
        if low == high:
            continue
        parent = None if parents[s] is None else levels[parents[s]].astype(np.float64)
        model = constriction.stream.model.QuantizedLaplace(low, high)
        current = np.zeros(z.shape)
        for mask, pass_model in _level_passes(s, z.shape, predict, parent, interpolation):
            values = z[mask]
            means, indices = pass_model(current)
            if _table_coded(len(values), low, high, True):
                centre, order, groups, counts = _table_order(means, indices, low, high)
                residuals = np.ascontiguousarray((values - centre)[order] + (high - low), dtype=np.int32)
                for table, start, count in zip(_tables(groups, high - low), np.cumsum(counts) - counts, counts):
                    coder.encode(residuals[start:start + count], table)
            else:
                coder.encode(np.ascontiguousarray(values, dtype=np.int32), model, *_model_args(means, indices))
            current[mask] = values
    return bytes(side) + coder.get_compressed().tobytes()


def decode_levels(data: bytes, shapes: list[tuple[int, ...]], predict: Predictor,
                  tables: bool = True, parents: list[int | None] | None = None,
                  interpolated: bool = False) -> list[np.ndarray]:
    """Inverse of :func:`encode_levels` given each level's shape (finest first) and ``parents``; int64 grids.
    ``tables``: the stream uses table coding (format 1.3; False for 1.2 streams); ``interpolated``: it starts with
    an interpolation rule (format 1.8)."""
    parents = _parents(len(shapes), parents)
    pos, ranges, interpolation = 0, [], None
    if interpolated:
        if not data:
            raise BitstreamError("truncated latent section (interpolation rule)")
        interpolation, pos = Interpolation(data[0]), 1
    for _ in shapes:
        low, pos = read_svarint(data, pos, "latent section (side information)")
        span, pos = read_svarint(data, pos, "latent section (side information)")
        if span < 0 or max(-low, low + span) > MAX_ABS_LATENT:
            raise BitstreamError("corrupted latent section (invalid symbol range)")
        ranges.append((low, low + span))
    body = data[pos:]
    if len(body) % 4:
        raise BitstreamError("corrupted latent section (payload not word-aligned)")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(body, dtype=np.uint32).copy())
    levels: list[np.ndarray] = [np.zeros(0)] * len(shapes)
    for s, (low, high) in zip(reversed(range(len(shapes))), ranges):
        current = np.full(shapes[s], float(low))
        if low != high:
            parent = None if parents[s] is None else levels[parents[s]].astype(np.float64)
            model = constriction.stream.model.QuantizedLaplace(low, high)
            current[:] = 0.0
            for mask, pass_model in _level_passes(s, current.shape, predict, parent, interpolation):
                means, indices = pass_model(current)
                try:
                    if _table_coded(len(means), low, high, tables):
                        centre, order, groups, counts = _table_order(means, indices, low, high)
                        values = np.empty(len(means), dtype=np.int64)
                        values[order] = np.concatenate([decoder.decode(table, int(count)) for table, count
                                                        in zip(_tables(groups, high - low), counts)])
                        values += centre - (high - low)
                        if values.min() < low or values.max() > high:
                            raise BitstreamError("corrupted latent section (latent outside its level's range)")
                        current[mask] = values
                    else:
                        current[mask] = decoder.decode(model, *_model_args(means, indices))
                except BitstreamError:
                    raise
                except Exception as exc:  # constriction raises plain errors on garbage input
                    raise BitstreamError(f"corrupted latent section ({exc})") from exc
        levels[s] = current.astype(np.int64)
    return levels
