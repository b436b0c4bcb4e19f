"""Context-modelled near-lossless / lossless coding of an integer image stack.

Every sample is predicted from already-decoded neighbours, the prediction error is quantised with
step ``2δ + 1`` (JPEG-LS's rule, so every reconstructed sample is within ``δ`` of the source) and the
quantised error is coded with constriction's range coder under an adaptive context model:

* **Prediction** (a small CALIC / JPEG XL weighted-predictor style mixture): candidates W, N, plane,
  MED, averages; with a side prediction the decoder also has (the INR's), that prediction corrected by
  the W, N and MED differences to it; in a stack, the same built on the previous frame. Per selection
  context (equality pattern of the neighbours x activity x frame position) each candidate's recent
  absolute error is tracked; the prediction is either the blend weighted by inverse squared mean error
  or the single best candidate, whichever has erred less in that context, plus a per-context bias
  correction (CALIC's error feedback); the error's sign is flipped where that bias is negative (JPEG-LS).
* **Coding contexts**: the activity (neighbouring quantised error magnitudes, local gradients, the side
  prediction's gradient, and the best candidate's mean error) quantised on a log scale, times two
  equality bits, selects an adaptive histogram over "hybrid-uint" tokens (small values direct,
  larger ones as exponent + one mantissa bit, the remaining low bits sent raw).

Vectorisation with exact decodability: samples are visited in wavefronts ``2i + j = const`` (every
neighbour used, W, WW, N, NW, NE, NN, lies on an earlier wavefront), frame ``f`` runs ``FRAME_LAG``
wavefronts behind frame ``f - 1`` (so its co-located neighbours are decoded), and all statistics are
updated once per wavefront from decoded values only. Large frames are split into tiles (format 1.4,
:class:`_Layout`) whose wavefronts run side by side, sharing the statistics. Encoder and decoder execute
the same :func:`_run` loop (closed loop); statistics are int64, probabilities are integer counts, and the one float step
(the blend) uses IEEE basic operations in a fixed order, so both sides compute bit-identical models on
every machine.
"""

from __future__ import annotations

import math

import constriction
import numpy as np

from medinr.errors import BitstreamError

#: frame f's wavefront runs this many steps behind frame f-1's (>= 3 keeps (f-1, i+1, j) and (f-1, i, j+1) causal)
FRAME_LAG = 3
#: tokens below this are the value itself; above, exponent and one mantissa bit
DIRECT_TOKENS = 16
#: activity bin edges (in quantisation steps): bin = number of edges <= activity
ACTIVITY_EDGES = np.array([1, 2, 3, 4, 6, 8, 11, 15, 20, 27, 36, 48, 64, 85, 113, 150, 200, 270, 360, 480, 640, 850])
SELECT_ACTIVITY_EDGES = np.array([3, 12, 48])
#: adaptive histogram increment per coded token and the row total that triggers halving
COUNT_INCREMENT = 24
COUNT_LIMIT = 1 << 16
#: predictor-error and bias statistics are halved once a context has seen this many samples
STAT_LIMIT = 256
#: largest sample magnitude a stream may describe (keeps every intermediate exact in int64 and float64)
MAX_ABS_VALUE = 2**40
_RAW_CHUNK = 16
#: smallest tile side the encoder uses (:func:`tile_for`; format 1.4, 0 = whole frames as in 1.1-1.3). On 512 px
#: crops of three cxr/train images (8-bit, and scaled to 12 bits with noise) at δ = 0, 2 and 8, tiles of 128 cost
#: +0.0 to +1.8 % bytes (64: +0.1 to +5.8 %) and code 2.5x faster; 200 px MR slices split into 128 + 72 cost up to 3 %
TILE = 128
#: tile sides a stream may state (a forged size cannot make the decoder allocate a buffer per sample)
MIN_TILE, MAX_TILE = 16, 1 << 16
#: added to every candidate's mean recent error before inverse-square weighting (keeps weights finite)
BLEND_EPS = 2.0

# padded layout: 2 rows above, 2 columns left and right of every frame
_TOP, _LEFT, _RIGHT = 2, 2, 2


def tokenise(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hybrid-uint split of non-negative ints: (token, number of raw bits, raw bits)."""
    u = np.asarray(u, dtype=np.int64)
    n = np.frexp(np.maximum(u, 1).astype(np.float64))[1].astype(np.int64) - 1  # floor(log2 u), exact below 2**53
    big = u >= DIRECT_TOKENS
    nbits = np.where(big, n - 1, 0)
    mantissa = (u >> np.maximum(nbits, 0)) & 1
    tokens = np.where(big, DIRECT_TOKENS + 2 * (n - 4) + mantissa, u)
    raw = np.where(big, u & ((np.int64(1) << nbits) - 1), 0)
    return tokens, nbits, raw


def token_bits(tokens: np.ndarray) -> np.ndarray:
    """Raw bits that follow each token."""
    return np.where(tokens >= DIRECT_TOKENS, (tokens - DIRECT_TOKENS) // 2 + 3, 0)


def detokenise(tokens: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Inverse of :func:`tokenise`."""
    big = tokens >= DIRECT_TOKENS
    n = (tokens - DIRECT_TOKENS) // 2 + 4
    lead = (np.int64(2) | ((tokens - DIRECT_TOKENS) & 1)) << np.maximum(n - 1, 0)
    return np.where(big, lead | raw, tokens)


def alphabet_size(max_value: int) -> int:
    """Tokens needed for values up to ``max_value``."""
    return int(tokenise(np.array([max_value]))[0][0]) + 1


def _zigzag(q: np.ndarray) -> np.ndarray:
    return np.where(q >= 0, 2 * q, -2 * q - 1)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    return np.where(u & 1, -((u + 1) >> 1), u >> 1)


def _med(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """LOCO-I / JPEG-LS median edge detector."""
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    return np.where(c >= hi, lo, np.where(c <= lo, hi, a + b - c))


def _bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, values, side="right")


def _add_at(target: np.ndarray, index: np.ndarray, values: np.ndarray | None = None, count: int = 1) -> None:
    """``target.flat[index] += values`` (or ``+= count``) for repeated indices, exactly: bincount's float64 sums
    are exact integers while every partial sum stays below 2**53 (always for 8-32 bit samples); np.add.at, 10x
    slower, otherwise."""
    flat = target.reshape(-1)  # a view: target is contiguous
    if values is None:
        flat += count * np.bincount(index, minlength=flat.size)
    elif len(values) and int(np.abs(values).max()) * len(values) >= 2**53:
        np.add.at(flat, index, values)
    else:
        flat += np.bincount(index, weights=values, minlength=flat.size).astype(np.int64)


class _Model:
    """All adaptive state: predictor errors, biases and token histograms, updated per wavefront."""

    SPATIAL = 7
    GUIDED = 4

    def __init__(self, tokens: int, frames: int, side: bool) -> None:
        #: candidates: spatial, then side-guided (if any), then previous-frame-guided (last GUIDED, if any)
        self.temporal = frames > 1
        self.k = self.SPATIAL + self.GUIDED * (int(side) + int(self.temporal))
        self.select_contexts = 2 * 32 * (len(SELECT_ACTIVITY_EDGES) + 1)
        self.err = np.zeros((self.select_contexts, self.k), dtype=np.int64)
        #: accumulated errors of the two ways to combine candidates: blended, and the single best one
        self.mix_err = np.zeros((self.select_contexts, 2), dtype=np.int64)
        self.err_n = np.zeros(self.select_contexts, dtype=np.int64)
        self.bias_sum = np.zeros(self.select_contexts, dtype=np.int64)
        self.bias_n = np.zeros(self.select_contexts, dtype=np.int64)
        self.code_contexts = 4 * (len(ACTIVITY_EDGES) + 1)
        self.counts = np.ones((self.code_contexts, tokens), dtype=np.int64)

    def update(self, sel: np.ndarray, code: np.ndarray, tokens: np.ndarray, errors: np.ndarray,
               mix_errors: np.ndarray, signed_error: np.ndarray) -> None:
        _add_at(self.err, (sel[:, None] * self.k + np.arange(self.k)).ravel(), errors.ravel())
        _add_at(self.mix_err, (sel[:, None] * 2 + np.arange(2)).ravel(), mix_errors.ravel())
        _add_at(self.err_n, sel)
        _add_at(self.bias_sum, sel, signed_error)
        _add_at(self.bias_n, sel)
        full = self.err_n >= STAT_LIMIT
        if full.any():
            self.err[full] >>= 1
            self.mix_err[full] >>= 1
            self.err_n[full] >>= 1
        full = self.bias_n >= STAT_LIMIT // 4
        if full.any():
            self.bias_sum[full] >>= 1  # arithmetic shift: floor halving, same on every machine
            self.bias_n[full] >>= 1
        _add_at(self.counts, code * self.counts.shape[1] + tokens, None, COUNT_INCREMENT)
        heavy = self.counts.sum(axis=1) > COUNT_LIMIT  # int64 sums: exact in any order
        if heavy.any():
            self.counts[heavy] = (self.counts[heavy] + 1) >> 1

    def bias(self, sel: np.ndarray) -> np.ndarray:
        """Rounded mean recent error of each selection context (integer division: exact)."""
        n = self.bias_n[sel]
        return np.where(n > 0, (2 * self.bias_sum[sel] + n) // np.maximum(2 * n, 1), 0)


def _masked_errors(model: _Model, sel: np.ndarray, has_prev: np.ndarray) -> np.ndarray:
    """Accumulated errors (n, K) of each candidate in each sample's context; previous-frame candidates
    (the last GUIDED) are unusable (huge error) in a stack's first frame."""
    errors = model.err[sel]
    if model.temporal:
        unusable = ~has_prev[:, None] & (np.arange(model.k)[None, :] >= model.k - model.GUIDED)
        errors = np.where(unusable, 1 << 60, errors)
    return errors


def _blend(cands: np.ndarray, errors: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Candidates (K, n) mixed with weights 1 / (mean recent error + BLEND_EPS)**2 from their
    accumulated ``errors`` (n, K) over ``counts`` (n,) samples.

    Float64 with basic operations in a fixed order (an explicit loop over candidates), then ``rint``:
    identical on every IEEE-754 machine; unusable candidates get weight exactly 0.
    """
    mean = errors / np.maximum(counts, 1)[:, None].astype(np.float64) + BLEND_EPS
    num, den = np.zeros(len(counts)), np.zeros(len(counts))
    for k in range(len(cands)):
        w = np.where(errors[:, k] >= 1 << 60, 0.0, 1.0 / (mean[:, k] * mean[:, k]))
        num = num + w * cands[k]
        den = den + w
    return np.rint(num / den).astype(np.int64)


def _guided(ref: np.ndarray, at: np.ndarray, row: int, west: np.ndarray, north: np.ndarray,
            nw: np.ndarray) -> list[np.ndarray]:
    """Predictors from a reference plane (the previous frame, or an outside prediction) at ``at``: the
    reference itself, and the reference plus the W, N and MED-combined differences to it."""
    p, pw, pn, pnw = ref[at], ref[at - 1], ref[at - row], ref[at - row - 1]
    return [p, p + west - pw, p + north - pn, p + _med(west - pw, north - pn, nw - pnw)]


def _predictors(r: np.ndarray, side: np.ndarray | None, at: np.ndarray, row: int, frame: int | None) -> np.ndarray:
    """Candidate predictions (K, n) from the padded reconstruction (and side plane) at flat positions ``at``."""
    west = r[at - 1]
    north, nw, ne = r[at - row], r[at - row - 1], r[at - row + 1]
    cands = [west, north, west + north - nw, _med(west, north, nw), (west + north + 1) >> 1,
             west + ne - north, (2 * (west + north) + ne - nw + 2) >> 2]
    if side is not None:
        cands += _guided(side, at, row, west, north, nw)
    if frame is not None:  # co-located in the previous frame (self, still undecoded, in the first frame)
        cands += _guided(r, np.where(at >= frame, at - frame, at), row, west, north, nw)
    return np.stack(cands)


class _Layout:
    """Where every sample of an (F, H, W) stack is kept and when it is coded.

    Each frame is split into tiles of ``tile`` x ``tile`` samples (the last row and column of tiles may be smaller;
    ``tile`` 0: one tile per frame, the 1.1 layout). Every tile has its own padded buffer (_TOP rows above, _LEFT
    and _RIGHT columns beside), so it is predicted from its own samples only and all tiles of a frame run their
    wavefronts ``2i + j`` side by side: a 512 px frame in 128 px tiles takes 382 wavefronts instead of 1534.
    Within a wavefront the samples are ordered by frame, tile, then row (the coded symbol order).
    """

    def __init__(self, shape: tuple[int, int, int], tile: int) -> None:
        _, height, width = shape
        th, tw = (min(tile, height), min(tile, width)) if tile else (height, width)
        self.tiles_y, self.tiles_x = -(-height // th), -(-width // tw)
        self.row = tw + _LEFT + _RIGHT
        self.block = (th + _TOP) * self.row
        self.frame_stride = self.tiles_y * self.tiles_x * self.block
        self.shape, self.tile_shape = shape, (th, tw)
        (ty, i), (tx, j) = np.divmod(np.arange(height), th), np.divmod(np.arange(width), tw)
        tile_h, tile_w = np.minimum(th, height - ty * th), np.minimum(tw, width - tx * tw)  # per row / column

        def plane(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:  # (H, W) from per-row and per-column terms
            return (rows[:, None] + cols[None, :]).ravel()

        front = plane(2 * i, j)
        tile_id = plane(ty * self.tiles_x, tx)
        # coding order: wavefront, tile, row (keys unique: a stable integer sort is a radix sort)
        order = np.argsort((front * self.tiles_y * self.tiles_x + tile_id) * th + np.repeat(i, width), kind="stable")
        # one frame's samples in coding order: buffer position, flat index, and the padding each one fills
        self.at = plane((i + _TOP) * self.row, j + _LEFT)[order] + tile_id[order] * self.block
        self.flat = order
        self.first = ((i < tile_h - 1)[:, None] & (j == 0)[None, :]).ravel()[order]  # the next row's left padding
        self.last = np.tile(j == tile_w - 1, height)[order]  # this row's right padding
        self.fronts = int(front.max()) + 1
        self.bounds = np.searchsorted(front[order], np.arange(self.fronts + 1))

    def wavefront(self, g: int) -> tuple[np.ndarray, ...]:
        """Step ``g``: buffer positions, flat indices, frame numbers, and first / last-in-row flags of its samples
        (frame f runs FRAME_LAG wavefronts behind frame f - 1)."""
        frames, height, width = self.shape
        picked = [(f, slice(self.bounds[g - FRAME_LAG * f], self.bounds[g - FRAME_LAG * f + 1]))
                  for f in range(max(0, (g - self.fronts) // FRAME_LAG + 1), min(frames - 1, g // FRAME_LAG) + 1)]
        return (np.concatenate([self.at[s] + f * self.frame_stride for f, s in picked]),
                np.concatenate([self.flat[s] + f * height * width for f, s in picked]),
                np.concatenate([np.full(s.stop - s.start, f) for f, s in picked]),
                np.concatenate([self.first[s] for _, s in picked]),
                np.concatenate([self.last[s] for _, s in picked]))

    def padded(self, planes: np.ndarray) -> np.ndarray:
        """An (F, H, W) plane the decoder also has, in the buffer layout with every tile's edges replicated."""
        _, height, width = self.shape
        th, tw = self.tile_shape
        pi, pj = np.divmod(np.arange(self.block), self.row)
        by, bx = np.divmod(np.arange(self.tiles_y * self.tiles_x), self.tiles_x)
        rows = by[:, None] * th + np.clip(pi[None, :] - _TOP, 0, np.minimum(th, height - by * th)[:, None] - 1)
        cols = bx[:, None] * tw + np.clip(pj[None, :] - _LEFT, 0, np.minimum(tw, width - bx * tw)[:, None] - 1)
        gather = (rows * width + cols).reshape(-1)  # each buffer cell's source sample
        return np.concatenate([plane.reshape(-1)[gather] for plane in planes])


def _side_gradient(side: np.ndarray, step: int) -> np.ndarray:
    """The side prediction's gradient in quantisation steps, per flat sample (edges replicated per frame)."""
    p = np.pad(side, ((0, 0), (1, 1), (1, 1)), mode="edge")
    grad = (np.abs(p[:, 1:-1, 2:] - p[:, 1:-1, :-2]) + np.abs(p[:, 2:, 1:-1] - p[:, :-2, 1:-1])) // (4 * step)
    return grad.reshape(-1)


def _run(shape: tuple[int, int, int], delta: int, lo: int, hi: int, start: np.ndarray, side: np.ndarray | None,
         coder: _Encoder | _Decoder, tile: int = 0) -> np.ndarray:
    """The shared encode/decode loop; returns the reconstruction (F, H, W) int64."""
    frames, height, width = shape
    step = 2 * delta + 1
    layout = _Layout(shape, tile)
    row = layout.row
    r = np.repeat(start.astype(np.int64), layout.frame_stride)
    mag = np.zeros_like(r)  # |q| of decoded samples, 0 on the padding
    side_plane, extra = (None, None) if side is None else (layout.padded(side), _side_gradient(side, step))
    max_u = 2 * ((hi - lo + delta) // step) + 1
    model = _Model(alphabet_size(max_u), frames, side is not None)
    out = np.zeros(frames * height * width, dtype=np.int64)
    for g in range(layout.fronts + FRAME_LAG * (frames - 1)):
        at, flat, fs, first, last = layout.wavefront(g)
        has_prev = fs > 0

        cands = _predictors(r, side_plane, at, row, layout.frame_stride if frames > 1 else None)
        west, ww, north, nn, nw, ne = r[at - 1], r[at - 2], r[at - row], r[at - 2 * row], r[at - row - 1], r[at - row + 1]
        activity = (2 * (mag[at - 1] + mag[at - row]) + mag[at - row - 1] + mag[at - row + 1] + mag[at - 2]
                    + mag[at - 2 * row])
        grad = (np.abs(west - ww) + np.abs(north - nw) + np.abs(north - ne) + np.abs(west - nw)
                + np.abs(north - nn)) // step
        energy = activity + grad // 2 + (0 if extra is None else extra[flat])
        pattern = ((west == ww) * 1 + (north == nn) * 2 + (west == nw) * 4 + (north == nw) * 8
                   + (north == ne) * 16)
        sel = (has_prev * 32 + pattern) * (len(SELECT_ACTIVITY_EDGES) + 1) + _bin(energy, SELECT_ACTIVITY_EDGES)
        errors = _masked_errors(model, sel, has_prev)
        mixes = np.stack([_blend(cands, errors, model.err_n[sel]), cands[errors.argmin(axis=1), np.arange(len(sel))]])
        base = np.where(model.mix_err[sel, 1] < model.mix_err[sel, 0], mixes[1], mixes[0])
        pred = np.clip(base + model.bias(sel), lo, hi)
        # coding context: neighbourhood energy and the best candidate's recent mean error, both in steps
        expected = 4 * errors.min(axis=1) // (np.maximum(model.err_n[sel], 1) * step)
        code = ((west == ww) * 1 + (north == nn) * 2) * (len(ACTIVITY_EDGES) + 1) + _bin(
            (energy + expected) // 2, ACTIVITY_EDGES)

        probs = model.counts[code].astype(np.float64)
        flip = model.bias_sum[sel] < 0
        q, tokens = coder.code(pred, flat, step, delta, probs, flip)
        recon = pred + q * step
        r[at] = recon
        out[flat] = recon
        mag[at] = np.abs(q)
        r[at[first] + row - 1] = r[at[first] + row - 2] = recon[first]  # next row's left padding: this sample
        r[at[last] + 1] = r[at[last] + 2] = recon[last]  # this row's right padding: its last sample
        model.update(sel, code, tokens, np.abs(recon[None, :] - cands).T, np.abs(recon[None, :] - mixes).T,
                     recon - base)
    return out.reshape(shape)


class _Encoder:
    """Quantises the true prediction errors and codes them.

    ``rdo``: 0 rounds every error to the nearest step (error within δ). Above 0 each sample takes, of that level
    and the next one towards zero, the one with the smaller squared error + λ · its code length under the current
    model, λ = ``rdo`` · 2 ln 2 · step² / 12 (the high-rate slope of a uniform quantiser): the error is then no
    longer bounded by δ."""

    def __init__(self, target: np.ndarray, rdo: float = 0.0) -> None:
        self.target = target.reshape(-1)
        self.rdo = rdo
        self.coder = constriction.stream.queue.RangeEncoder()
        self.tokens = constriction.stream.model.Categorical(perfect=False)
        self.uniform = constriction.stream.model.Uniform()

    def code(self, pred: np.ndarray, flat: np.ndarray, step: int, delta: int,
             probs: np.ndarray, flip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quantised errors of the samples at ``flat`` and their tokens."""
        err = self.target[flat] - pred
        q = np.sign(err) * ((np.abs(err) + delta) // step)
        if self.rdo:
            q = self._rate_distortion_choice(err, q, step, probs, flip)
        tokens, nbits, raw = tokenise(_zigzag(np.where(flip, -q, q)))
        self.coder.encode(tokens.astype(np.int32), self.tokens, probs)
        for lo_bit in range(0, int(nbits.max(initial=0)), _RAW_CHUNK):
            sel = nbits > lo_bit
            width = np.minimum(nbits[sel] - lo_bit, _RAW_CHUNK)
            chunk = (raw[sel] >> lo_bit) & ((np.int64(1) << width) - 1)
            self.coder.encode(chunk.astype(np.int32), self.uniform, (np.int64(1) << width).astype(np.int32))
        return q, tokens

    def _rate_distortion_choice(self, err: np.ndarray, q: np.ndarray, step: int, probs: np.ndarray,
                                flip: np.ndarray) -> np.ndarray:
        """Per sample, ``q`` or the level next to it towards zero, whichever has the smaller D + λR."""
        lam = self.rdo * 2 * math.log(2) * step * step / 12
        log_total = np.log2(probs.sum(axis=1))
        rows = np.arange(len(q))

        def cost(levels: np.ndarray) -> np.ndarray:
            tokens, nbits, _ = tokenise(_zigzag(np.where(flip, -levels, levels)))
            bits = log_total - np.log2(probs[rows, tokens]) + nbits
            return np.square(err - levels * step, dtype=np.float64) + lam * bits

        inward = q - np.sign(q)
        return np.where(cost(inward) < cost(q), inward, q)

    def finish(self) -> bytes:
        return self.coder.get_compressed().tobytes()


class _Decoder:
    """Decodes quantised prediction errors; any failure of the range coder is a BitstreamError."""

    def __init__(self, body: bytes) -> None:
        if len(body) % 4:
            raise BitstreamError("corrupted residual section (payload not word-aligned)")
        self.coder = constriction.stream.queue.RangeDecoder(np.frombuffer(body, dtype=np.uint32).copy())
        self.tokens = constriction.stream.model.Categorical(perfect=False)
        self.uniform = constriction.stream.model.Uniform()

    def code(self, pred: np.ndarray, flat: np.ndarray, step: int, delta: int,
             probs: np.ndarray, flip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decoded quantised errors and their tokens (``pred``, ``flat`` unused: the encoder's signature)."""
        try:
            tokens = np.asarray(self.coder.decode(self.tokens, probs), dtype=np.int64)
            nbits = token_bits(tokens)
            raw = np.zeros_like(tokens)
            for lo_bit in range(0, int(nbits.max(initial=0)), _RAW_CHUNK):
                sel = nbits > lo_bit
                width = np.minimum(nbits[sel] - lo_bit, _RAW_CHUNK)
                chunk = np.asarray(self.coder.decode(self.uniform, (np.int64(1) << width).astype(np.int32)))
                raw[sel] |= chunk.astype(np.int64) << lo_bit
        except Exception as exc:  # constriction raises plain errors on garbage input
            raise BitstreamError(f"corrupted residual section ({exc})") from exc
        q = _unzigzag(detokenise(tokens, raw))
        return np.where(flip, -q, q), tokens


def _check(shape: tuple[int, int, int], delta: int, lo: int, hi: int, side: np.ndarray | None, tile: int) -> None:
    if delta < 0 or not lo <= hi or max(-lo, hi) > MAX_ABS_VALUE:
        raise BitstreamError("corrupted residual section (invalid error bound or value range)")
    if tile and not MIN_TILE <= tile <= MAX_TILE:
        raise BitstreamError(f"corrupted residual section (tile size {tile} outside {MIN_TILE}-{MAX_TILE})")
    if side is not None and side.shape != shape:
        raise ValueError(f"side prediction of shape {side.shape} for an image of shape {shape}")


def tile_for(height: int, width: int) -> int:
    """The encoder's tile side for a frame: the longer side split into as many tiles of at least TILE as fit, or 0
    (one tile, the 1.1 layout) for a frame under 4 * TILE, which codes in under 0.5 s untiled (2 cores)."""
    side = max(height, width)
    return -(-side // (side // TILE)) if side >= 4 * TILE else 0


def encode_stack(target: np.ndarray, delta: int, lo: int, hi: int, side: np.ndarray | None = None,
                 tile: int = 0, rdo: float = 0.0) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Code ``target`` (F, H, W), every value in ``[lo, hi]``, with max error ``delta``, in tiles of ``tile``
    samples (0: whole frames, see :class:`_Layout`); ``rdo`` > 0 quantises rate-distortion optimally instead,
    without the bound (:class:`_Encoder`; the decoder is the same).

    Returns (range-coder bytes, per-frame start values, reconstruction, int64). ``side`` (same shape,
    int64 in ``[lo, hi]``), an outside prediction the decoder also has, adds guided predictors and its
    gradient to the activity.
    """
    target = np.asarray(target, dtype=np.int64)
    _check(target.shape, delta, lo, hi, side, tile)
    start = target[:, 0, 0].copy()
    if rdo and not delta:
        raise ValueError("rate-distortion quantisation needs a step: max error 0 is lossless")
    encoder = _Encoder(target, rdo)
    recon = _run(target.shape, delta, lo, hi, start, side, encoder, tile)
    return encoder.finish(), start, recon


def decode_stack(body: bytes, shape: tuple[int, int, int], delta: int, lo: int, hi: int, start: np.ndarray,
                 side: np.ndarray | None = None, tile: int = 0) -> np.ndarray:
    """Inverse of :func:`encode_stack`: the reconstruction (F, H, W) int64."""
    _check(shape, delta, lo, hi, side, tile)
    return _run(shape, delta, lo, hi, start, side, _Decoder(body), tile)
