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
updated once per wavefront from decoded values only. Encoder and decoder execute the same :func:`_run`
loop (closed loop); statistics are int64, probabilities are integer counts, and the one float step
(the blend) uses IEEE basic operations in a fixed order, so both sides compute bit-identical models on
every machine.
"""

from __future__ import annotations

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
        np.add.at(self.err, (sel[:, None], np.arange(self.k)[None, :]), errors)
        np.add.at(self.mix_err, (sel[:, None], np.arange(2)[None, :]), mix_errors)
        np.add.at(self.err_n, sel, 1)
        np.add.at(self.bias_sum, sel, signed_error)
        np.add.at(self.bias_n, sel, 1)
        full = self.err_n >= STAT_LIMIT
        if full.any():
            self.err[full] >>= 1
            self.mix_err[full] >>= 1
            self.err_n[full] >>= 1
        full = self.bias_n >= STAT_LIMIT // 4
        if full.any():
            self.bias_sum[full] >>= 1  # arithmetic shift: floor halving, same on every machine
            self.bias_n[full] >>= 1
        np.add.at(self.counts, (code, tokens), COUNT_INCREMENT)
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


def _wavefront(w: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the samples with ``2i + j == w``."""
    i = np.arange(max(0, -(-(w - width + 1) // 2)), min(height - 1, w // 2) + 1)
    return i, w - 2 * i


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


def _side_plane(side: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The side prediction in the padded layout (edges replicated) and its gradient in quantisation steps."""
    padded = np.pad(side, ((0, 0), (_TOP, 0), (_LEFT, _RIGHT)), mode="edge")
    p = np.pad(side, ((0, 0), (1, 1), (1, 1)), mode="edge")
    grad = (np.abs(p[:, 1:-1, 2:] - p[:, 1:-1, :-2]) + np.abs(p[:, 2:, 1:-1] - p[:, :-2, 1:-1])) // (4 * step)
    return padded.reshape(-1), grad.reshape(-1)


def _run(shape: tuple[int, int, int], delta: int, lo: int, hi: int, start: np.ndarray, side: np.ndarray | None,
         coder: _Encoder | _Decoder) -> np.ndarray:
    """The shared encode/decode loop; returns the reconstruction (F, H, W) int64."""
    frames, height, width = shape
    step = 2 * delta + 1
    row = width + _LEFT + _RIGHT
    frame_size = (height + _TOP) * row
    r = np.repeat(start.astype(np.int64), frame_size).reshape(frames, height + _TOP, row)
    mag = np.zeros_like(r)  # |q| of decoded samples, 0 on the padding
    r, mag = r.reshape(-1), mag.reshape(-1)
    side_plane, extra = (None, None) if side is None else _side_plane(side, step)
    max_u = 2 * ((hi - lo + delta) // step) + 1
    model = _Model(alphabet_size(max_u), frames, side is not None)
    fronts = 2 * (height - 1) + width
    for g in range(fronts + FRAME_LAG * (frames - 1)):
        parts = [(f, *_wavefront(g - FRAME_LAG * f, height, width))
                 for f in range(max(0, (g - fronts) // FRAME_LAG + 1), min(frames - 1, g // FRAME_LAG) + 1)]
        fs = np.concatenate([np.full(len(i), f) for f, i, _ in parts])
        ii = np.concatenate([i for _, i, _ in parts])
        jj = np.concatenate([j for _, _, j in parts])
        at = fs * frame_size + (ii + _TOP) * row + jj + _LEFT
        flat = (fs * height + ii) * width + jj
        has_prev = fs > 0

        cands = _predictors(r, side_plane, at, row, frame_size if frames > 1 else None)
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
        mag[at] = np.abs(q)
        first, last = (jj == 0) & (ii < height - 1), jj == width - 1
        r[at[first] + row - 1] = r[at[first] + row - 2] = recon[first]  # next row's left padding: this sample
        r[at[last] + 1] = r[at[last] + 2] = recon[last]  # this row's right padding: its last sample
        model.update(sel, code, tokens, np.abs(recon[None, :] - cands).T, np.abs(recon[None, :] - mixes).T,
                     recon - base)
    return r.reshape(frames, height + _TOP, row)[:, _TOP:, _LEFT:_LEFT + width]


class _Encoder:
    """Quantises the true prediction errors and codes them."""

    def __init__(self, target: np.ndarray) -> None:
        self.target = target.reshape(-1)
        self.coder = constriction.stream.queue.RangeEncoder()
        self.tokens = constriction.stream.model.Categorical(perfect=False)
        self.uniform = constriction.stream.model.Uniform()

    def code(self, pred: np.ndarray, flat: np.ndarray, step: int, delta: int,
             probs: np.ndarray, flip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quantised errors of the samples at ``flat`` and their tokens."""
        err = self.target[flat] - pred
        q = np.sign(err) * ((np.abs(err) + delta) // step)
        tokens, nbits, raw = tokenise(_zigzag(np.where(flip, -q, q)))
        self.coder.encode(tokens.astype(np.int32), self.tokens, probs)
        for lo_bit in range(0, int(nbits.max(initial=0)), _RAW_CHUNK):
            sel = nbits > lo_bit
            width = np.minimum(nbits[sel] - lo_bit, _RAW_CHUNK)
            chunk = (raw[sel] >> lo_bit) & ((np.int64(1) << width) - 1)
            self.coder.encode(chunk.astype(np.int32), self.uniform, (np.int64(1) << width).astype(np.int32))
        return q, tokens

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


def _check(shape: tuple[int, int, int], delta: int, lo: int, hi: int, side: np.ndarray | None) -> None:
    if delta < 0 or not lo <= hi or max(-lo, hi) > MAX_ABS_VALUE:
        raise BitstreamError("corrupted residual section (invalid error bound or value range)")
    if side is not None and side.shape != shape:
        raise ValueError(f"side prediction of shape {side.shape} for an image of shape {shape}")


def encode_stack(target: np.ndarray, delta: int, lo: int, hi: int,
                 side: np.ndarray | None = None) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Code ``target`` (F, H, W), every value in ``[lo, hi]``, with max error ``delta``.

    Returns (range-coder bytes, per-frame start values, reconstruction, int64). ``side`` (same shape,
    int64 in ``[lo, hi]``), an outside prediction the decoder also has, adds guided predictors and its
    gradient to the activity.
    """
    target = np.asarray(target, dtype=np.int64)
    _check(target.shape, delta, lo, hi, side)
    start = target[:, 0, 0].copy()
    encoder = _Encoder(target)
    recon = _run(target.shape, delta, lo, hi, start, side, encoder)
    return encoder.finish(), start, recon


def decode_stack(body: bytes, shape: tuple[int, int, int], delta: int, lo: int, hi: int, start: np.ndarray,
                 side: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`encode_stack`: the reconstruction (F, H, W) int64."""
    _check(shape, delta, lo, hi, side)
    return _run(shape, delta, lo, hi, start, side, _Decoder(body))
