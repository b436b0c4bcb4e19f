"""Checkerboard context coding of integer latent grids with per-symbol Laplace (mean, scale).

Levels are coded coarsest first. Each level takes two passes (He et al. 2021, "checkerboard context"):
the anchors ((i + j) even) are predicted from the coarser level only, the others also from their four
anchor neighbours, so a whole pass is one vectorised model evaluation and one vectorised call of
constriction's range coder, on encode and decode alike.

Determinism: a single differing probability corrupts the rest of the stream, so the predictor hands
over means already on a ``1 / 2**MEAN_FRAC`` grid and integer log-scale indices (scale =
``2 ** (index / SCALE_STEPS)``, from a fixed table), and the encoder runs exactly the decoder's two
passes on exactly the decoder's partial grids. :func:`fixed_point` is the helper predictors use to
compute in exact fixed point inside float64 (see :mod:`medinr.models.grid`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

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

#: predict(level, current grid (undecoded = 0), parent grid or None, pass (0: anchors, 1: the rest)) -> (means,
#: scale indices) of that pass's positions (:func:`pass_masks`) in row-major order (only those are evaluated: half
#: the work of a full-grid prediction)
Predictor = Callable[[int, np.ndarray, np.ndarray | None, int], tuple[np.ndarray, np.ndarray]]


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


def _model_args(means: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(means, dtype=np.float64), np.ascontiguousarray(scales_of(indices), dtype=np.float64)


def encode_levels(levels: list[np.ndarray], predict: Predictor) -> bytes:
    """Code integer grids (finest first, level s+1 the parent of s) into one byte string."""
    side = bytearray()
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
        parent = levels[s + 1].astype(np.float64) if s + 1 < len(levels) else None
        model = constriction.stream.model.QuantizedLaplace(low, high)
        current = np.zeros(z.shape)
        for index, mask in enumerate(pass_masks(z.shape)):
            coder.encode(np.ascontiguousarray(z[mask], dtype=np.int32), model,
                         *_model_args(*predict(s, current, parent, index)))
            current[mask] = z[mask]
    return bytes(side) + coder.get_compressed().tobytes()


def decode_levels(data: bytes, shapes: list[tuple[int, ...]], predict: Predictor) -> list[np.ndarray]:
    """Inverse of :func:`encode_levels` given each level's shape (finest first); int64 grids."""
    pos, ranges = 0, []
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
            parent = levels[s + 1].astype(np.float64) if s + 1 < len(shapes) else None
            model = constriction.stream.model.QuantizedLaplace(low, high)
            current[:] = 0.0
            for index, mask in enumerate(pass_masks(current.shape)):
                args = _model_args(*predict(s, current, parent, index))
                try:
                    current[mask] = decoder.decode(model, *args)
                except Exception as exc:  # constriction raises plain errors on garbage input
                    raise BitstreamError(f"corrupted latent section ({exc})") from exc
        levels[s] = current.astype(np.int64)
    return levels
