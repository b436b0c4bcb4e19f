"""Bit-exact predictions: the same integer image on every machine, thread count and library build.

Near-lossless and lossless coding (:mod:`medinr.residual`) code the source minus a prediction, so the
decoder must compute *exactly* the encoder's prediction. The ``seed`` decoder runs float32 torch
matmuls and ``torch.sin``, whose results depend on the BLAS kernel, the SIMD width and the thread
count. This module evaluates the same network with a float64 NumPy forward that is exact by
construction:

* only IEEE-754 basic operations (``+ - * /``), ``rint``, comparisons and selections, each one a
  separate NumPy ufunc call, so every intermediate is rounded to float64 by the standard's rule (no
  fused multiply-add, no extended precision, no reduction whose order NumPy may change);
* every dot product is an explicit loop over the input dimension, ``acc = acc + x[..., k] * w[k]``,
  never BLAS, ``einsum`` or ``sum``;
* our own sine (:func:`sine`: range reduction with ``rint`` and a fixed odd polynomial) and 2**x
  (:func:`exp2`: a fixed Taylor polynomial), instead of libm or SIMD transcendentals that differ by
  an ulp between CPUs;
* tiny inputs to the sine are flushed to zero, so no intermediate is ever subnormal and a process
  running with flush-to-zero (which some libraries switch on) computes the same values;
* the prediction is rounded to integers with ``rint`` (ties to even) and clipped to the source range.

The forward follows the torch model closely (float32 coordinates and frequencies, the same layer
order), so the exact prediction is within about 1e-6 of what the encoder fitted; it just does not
depend on the machine. Inputs to it are deterministic too: the dequantised parameters use steps
from an exact table (:func:`exact_steps`), and the init tensors are fixed float32 values.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from medinr.archs.seed import parse_payload
from medinr.errors import BitstreamError
from medinr.meta.inits import Init
from medinr.models.seed import SeedConfig
from medinr.preprocess import Normalisation
from medinr.quant import STEP_OFFSET, STEPS_PER_OCTAVE

_PI = 3.141592653589793
_TWO_PI = 6.283185307179586
_INV_TWO_PI = 0.15915494309189535
_HALF_PI = 1.5707963267948966
_LN2 = 0.6931471805599453
#: odd Taylor coefficients of sin on [-pi/2, pi/2] (degree 19: error below 1e-15 there)
_SIN_COEFFS = tuple((-1.0) ** n / math.factorial(2 * n + 1) for n in range(10))
#: below this magnitude the sine's argument is treated as 0 (keeps every intermediate normal)
_FLUSH = 2.0**-200
#: pixels per evaluated chunk (keeps the working set in cache)
_CHUNK = 1 << 15


def sine(x: np.ndarray) -> np.ndarray:
    """sin(x) in float64 from basic operations only: identical bits on every IEEE-754 machine."""
    x = np.where(np.abs(x) < _FLUSH, 0.0, x)
    r = x - np.rint(x * _INV_TWO_PI) * _TWO_PI  # about [-pi, pi]
    r = np.where(r > _HALF_PI, _PI - r, r)
    r = np.where(r < -_HALF_PI, -_PI - r, r)  # [-pi/2, pi/2], same sine
    z = r * r
    acc = np.full_like(r, _SIN_COEFFS[-1])
    for c in _SIN_COEFFS[-2::-1]:
        acc = acc * z + c
    return acc * r


def cosine(x: np.ndarray) -> np.ndarray:
    """cos(x) = sin(x + pi/2), with :func:`sine`."""
    return sine(x + _HALF_PI)


def exp2(x: float) -> float:
    """2**x for a scalar from an integer power and a fixed Taylor polynomial of e**(f ln 2), f in [0, 1)."""
    whole = int(np.floor(x))
    f = (x - whole) * _LN2
    term, acc = 1.0, 1.0
    for n in range(1, 30):
        term = term * f / n
        acc = acc + term
    return float(np.ldexp(acc, whole))


def exact_steps(indices: np.ndarray) -> np.ndarray:
    """Quantisation steps ``2 ** ((index - STEP_OFFSET) / STEPS_PER_OCTAVE)`` from an exact table."""
    table = np.array([exp2(k / STEPS_PER_OCTAVE) for k in range(STEPS_PER_OCTAVE)])
    shifted = np.asarray(indices, dtype=np.int64) - STEP_OFFSET
    return np.ldexp(table[shifted % STEPS_PER_OCTAVE], shifted // STEPS_PER_OCTAVE)


def _frequencies(config: SeedConfig) -> np.ndarray:
    """Band frequencies (S, K) as the model's float32 values, computed without libm."""
    values = [[_PI * exp2(s + k / config.freqs_per_band) for k in range(config.freqs_per_band)]
              for s in range(config.scales)]
    return np.array(values, dtype=np.float32)


def _axis_features(n: int, freqs: np.ndarray) -> np.ndarray:
    """Per-axis Fourier features (S, n, 2K): [sin, cos] of float32 coordinate x frequency, in float64."""
    coords = (np.arange(n, dtype=np.float32) + np.float32(0.5)) / np.float32(n) * np.float32(2) - np.float32(1)
    angles = (coords[None, :, None] * freqs[:, None, :]).astype(np.float64)  # float32 products, as torch
    return np.concatenate([sine(angles), cosine(angles)], axis=-1)


def _dot(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x (..., a) @ w (a, b) as a fixed-order loop over a (no BLAS)."""
    acc = x[..., 0, None] * w[0]
    for k in range(1, w.shape[0]):
        acc = acc + x[..., k, None] * w[k]
    return acc


def _activation(config: SeedConfig) -> Callable[[np.ndarray], np.ndarray]:
    if config.activation == "sine":
        omega = float(config.omega0)
        return lambda x: sine(x * omega)
    if config.activation == "relu":
        return lambda x: np.maximum(x, 0.0)
    raise BitstreamError(f"no bit-exact forward for activation {config.activation!r}")


def seed_parameters(payload: bytes, init: Init) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Dequantised float64 weights and biases of a seed frame payload (the model's parameter order)."""
    symbols, idx = parse_payload(payload, init)
    params = []
    for p0, sym, step in zip(init.params, symbols, idx):
        base = p0.detach().numpy().astype(np.float64)
        steps = exact_steps(step).reshape(-1, *([1] * (base.ndim - 1)))
        params.append(base + sym.reshape(base.shape).astype(np.float64) * steps)
    layers = len(params) // 2
    return params[:layers], params[layers:]


def seed_forward(weights: list[np.ndarray], biases: list[np.ndarray], config: SeedConfig,
                 shape: tuple[int, int]) -> np.ndarray:
    """The seed INR at every pixel of an (H, W) grid, in normalised units, float64, bit-exact."""
    height, width = shape
    freqs = _frequencies(config)
    act = _activation(config)
    per_axis = 2 * config.freqs_per_band
    rows_feat, cols_feat = _axis_features(height, freqs), _axis_features(width, freqs)
    out = np.zeros((height, width))
    rows_per_chunk = max(1, _CHUNK // width)
    for s in range(config.scales):
        first = weights[0][s]
        rows = _dot(rows_feat[s], first[:per_axis])  # (H, h): separable first layer, per row ...
        cols = _dot(cols_feat[s], first[per_axis:2 * per_axis])  # ... and per column
        for r0 in range(0, height, rows_per_chunk):
            x = (biases[0][s] + rows[r0:r0 + rows_per_chunk, None, :]) + cols[None, :, :]
            for w, b in zip(weights[1:], biases[1:]):
                x = b[s] + _dot(act(x), w[s])
            out[r0:r0 + rows_per_chunk] = out[r0:r0 + rows_per_chunk] + x[..., 0]
    return out


def to_stored(normalised: np.ndarray, norm: Normalisation) -> np.ndarray:
    """Normalised float64 values to int64 stored values: ``rint(v * std + mean)`` clipped to the source range."""
    values = np.rint(normalised * norm.std + norm.mean)
    if np.isnan(values).any():
        raise BitstreamError("prediction is not a number (corrupted normalisation or parameters)")
    return np.clip(values, norm.value_min, norm.value_max).astype(np.int64)


def seed_prediction(payload: bytes, config: SeedConfig, init: Init, norm: Normalisation,
                    shape: tuple[int, int]) -> np.ndarray:
    """The bit-exact integer prediction of one seed frame payload, shape (H, W), int64."""
    weights, biases = seed_parameters(payload, init)
    return to_stored(seed_forward(weights, biases, config, shape), norm)


#: architectures with a bit-exact predictor: (payload, config, init, norm, (H, W)) -> int64 stored values
EXACT_PREDICTORS: dict[str, Callable[[bytes, object, Init, Normalisation, tuple[int, int]], np.ndarray]] = {
    "seed": seed_prediction,
}
