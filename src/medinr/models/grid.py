"""The ``grid`` INR (Cool-chic / C3 style): multi-resolution latent grids, a tiny synthesis network and a
checkerboard context model over the latents.

Level s is a one-channel grid at 1/2^s of the image. Each is upsampled to full resolution and scaled by
its gain (its dequantisation step, set per image by the encoder and coded with the networks), giving
per-level contributions f_s in normalised intensity.
The image is Σ_s f_s (a Laplacian-pyramid reconstruction, which is what the untrained network computes)
plus a per-pixel MLP of the f_s, plus a small residual 3x3 refinement. Entropy model: a small MLP maps
each latent's causal context (3x3 parent neighbourhood in the coarser level; the four anchor neighbours
in the checkerboard's second pass) to a Laplace (mean, log2 scale); the same network runs in float32
for training and in exact fixed point for coding (:meth:`GridModel.exact_predictor`).

``dims = 3`` (``grid-video``): the grids are (t, y, x), frames halving from level TIME_LEVELS on, upsampled
linearly in time and then like a frame in space; the synthesis and refinement run frame by frame, and the
context adds the previous and next frame to the anchor neighbours (a 3D checkerboard). ``static`` more grids of
one frame each, at the finest scales, are shared by every frame: what does not move is coded once.

Only the networks are ``parameters()`` (what an init holds and the bitstream codes as deltas); the
latents belong to the image and are passed in.
"""

from __future__ import annotations

import functools
import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from medinr.entropy.context import (
    MAX_ABS_LATENT,
    MEAN_FRAC,
    SCALE_INDEX_RANGE,
    SCALE_STEPS,
    Predictor,
    fixed_point,
    pass_masks,
)
from medinr.models import ARCHITECTURES, Architecture
from medinr.models.wavelet import multiply_adds_per_sample, padded_size
from medinr.models.wavelet import scale_parts as wavelet_scale_parts

#: the format's upsampling modes (a config byte). Other fixed kernels in place of bicubic, measured on 2026-11-27
#: (``fast``, cxr/train images resized to 512 px and cropped to 256, one encode a point): a cubic B-spline gained
#: at 2 bpp (six images: -0.04 to +0.63 dB, mean +0.30; at 512 px ``balanced`` +0.27 / +0.56) and on two MR train
#: slices at 0.5-1 bpp (+0.2 to +1.3 dB), but moved cxr at 0.25-1 bpp by -0.33 to +0.21 dB (mean -0.09), a 12-bit
#: proxy at 0.5 / 1 / 2 bpp by -0.30 / +0.21 / +0.51, and lost 2.6 and 5.5 dB on the MR slices at 2 bpp; Lanczos-3
#: stayed within the encodes' noise (about 0.2 dB, :mod:`medinr.archs.grid`), as did bicubic applied as repeated x2
#: steps. A x2 kernel learned per image (4 symmetric taps from bicubic's, repeated per octave, trained with the
#: networks and not coded) gave +0.01 to +0.17 dB against bicubic (mean +0.09; -0.02 to +0.10 against the same taps
#: fixed) at a learning rate of 0.02 (two images, 0.5 / 2 bpp) and lost up to 0.4 dB at 0.05: the taps barely move,
#: so the B-spline's gain at 2 bpp is not one that training the kernel per image finds
#: ``cdf97`` is not an interpolation: the latents are then the subbands of a CDF 9/7 wavelet transform
#: (:mod:`medinr.models.wavelet`; format 1.6), ``levels`` its decomposition levels, three detail grids each plus the
#: coarsest approximation, and the synthesis network sees each scale's part of the inverse transform. ``cdf97``
#: extends the frame periodically; ``cdf97-symmetric`` (format 1.9) mirrors it about its edges as JPEG 2000 does
UPSAMPLING = ("bilinear", "bicubic", "cdf97", "cdf97-symmetric")
#: the latent bases of wavelet subbands, and the one encoders use. The symmetric extension codes X-rays in fewer
#: bits: zeroth-order entropies of quantised subbands of three cxr/train images (1024 and 512 px, 5 levels) were
#: 12-19 % lower at 0.1-0.25 bpp, 6-12 % at 0.25-0.6 and 1-3 % at 1.6-2.2 bpp, all of it the periodic wrap's edges
WAVELET_BASES = ("cdf97", "cdf97-symmetric")
WAVELET_BASIS = "cdf97-symmetric"
#: flag bit of the config's upsampling byte: :attr:`GridConfig.context_magnitudes`
MAGNITUDES_FLAG = 0x80
#: wavelet decomposition levels of a frame of 256 px or more (JPEG 2000's default too): the approximation of a
#: 2000 px frame is then 63 px, whose samples cost about 0.01 bpp
WAVELET_LEVELS = 5
#: (x, y, t) grids (``dims = 3``): levels below this one keep every frame, coarser ones halve the frame count
#: with each level like the spatial axes (the format's rule, chosen by measurement on cine, see
#: :mod:`medinr.archs.grid_video`)
TIME_LEVELS = 1
#: flag bit of the config's upsampling byte: :attr:`GridConfig.temporal`
TEMPORAL_FLAG = 0x40
#: flag bit of the upsampling byte: a temporal config's latent sections carry a scale offset per (level, frequency)
#: (:attr:`GridConfig.frequency_scales`; format 1.12)
FREQUENCY_SCALES_FLAG = 0x20
#: fixed point of the exact context network: weights on a 2**-16 grid (|w| < 2**7), hidden on 2**-8 (< 2**12);
#: with integer inputs below 2**12 every product and sum stays below 2**53, so float64 is exact in any order
_W_FRAC, _W_MAX, _H_FRAC, _H_MAX = 16, 2.0**7, 8, 2.0**12
#: pixels a synthesised window depends on beyond itself: the refinement's two 3x3 convolutions
REFINE_REACH = 2
#: pixels per block of the synthesis MLP (its activations, 16 x 64k float32 = 4 MiB, stay in cache)
MLP_CHUNK = 65536
#: positions per block of the sliced context evaluation (:func:`_subgrid_context`; the exact predictor's 8 x 16k
#: float64 activations = 1 MiB; at 512 px, 2k-position blocks ran 3x slower, 8k-32k alike)
CONTEXT_CHUNK = 16384


@dataclass(frozen=True)
class GridConfig:
    """Shape of a grid network; serialised into the bitstream header (7 bytes)."""

    levels: int = 7
    #: width of the synthesis MLP. Its headroom, measured on 2026-11-27 (two cxr/train images resized to 512 px and
    #: cropped to 256, ``fast``, 0.5 / 2 bpp): the shipped synthesis adds 0.04-0.16 / 1.17-1.27 dB to the plain
    #: pyramid sum of the same latents; refitting it to those latents (parameters free, 1500 full-image steps) gains
    #: 0.16-0.24 / 0.24-0.32 dB more at this size and 0.34-0.50 / 0.28-0.37 dB with 32-wide, three-layer MLPs and a
    #: 16-channel 5x5 refinement (7x the parameters, which a file would pay for)
    hidden: int = 16
    layers: int = 2
    refine: int = 4
    #: hidden units of the context network. Its headroom, measured on 2026-11-27: refitting it to one image's final
    #: latents (two cxr/train images at 256 px, ``fast``; the fit on the very latents it codes, parameters free)
    #: saved 1.6-1.8 % of the latent bits at 0.5 bpp and 0.4-0.6 % at 2 bpp with 8 units, 4.5-5.2 % / 1.5-2.2 % with
    #: 32, 5.9-6.9 % / 1.9-2.7 % with 32 and the neighbours' magnitudes as inputs. Anchors cost 3-7 % more bits in
    #: all (one image, 0.5-2 bpp; up to 13 % on one level) than the second pass's latents, which see four
    #: neighbours: the trained latents are nearly uncorrelated within a level, so a richer context model is not
    #: where the gap to JPEG 2000 is
    context_hidden: int = 8
    upsampling: str = "bilinear"
    dims: int = 2
    #: (t, y, x) grids only: static levels, one frame each (constant in time), at spatial scales 0 .. static - 1,
    #: listed after the ``levels`` pyramid levels; what does not move is coded once instead of in every frame
    static: int = 0
    #: the context network also reads the magnitudes of its parent neighbourhood and face neighbours
    #: (:func:`context_features`; format 1.7). Wavelet coefficients' signs are nearly unpredictable and their scale
    #: follows their neighbours' magnitudes, which a few ReLU units on signed inputs can only approximate: on
    #: dead-zone quantised CDF 9/7 subbands of three 256 px cxr/train proxies and an MR train slice at 0.5 / 1 / 2
    #: bpp (2026-11-27; networks fitted to each), 8 units with magnitudes coded 1-4 % (cxr) and 9 % (MR) fewer bits
    #: than 8 without, 16 units with them 2-6 % and 11-12 %
    context_magnitudes: bool = False
    #: (t, y, x) pyramid levels only: a level's latents are the orthonormal DCT-II of its frames along time
    #: (:func:`temporal_spectrum`; format 1.11), so what stays put in a level's frames is one coefficient and slow
    #: changes a few, instead of a value in every frame (``medinr.archs.grid_video`` has the measurements)
    temporal: bool = False
    #: temporal configs only: each frame payload's latent section starts with a log-scale offset per frequency of
    #: every level of more than one frame, which the entropy model adds to the context network's
    #: (:func:`medinr.entropy.context.with_slice_scales`; format 1.12): the network does not see which frequency a
    #: latent codes
    frequency_scales: bool = False

    def to_bytes(self) -> bytes:
        """7 bytes; the static level count shares the axes byte (high nibble) and the magnitude, temporal and
        frequency-scale flags the upsampling byte (its three high bits), so files without them are unchanged."""
        upsampling = (UPSAMPLING.index(self.upsampling) | (MAGNITUDES_FLAG if self.context_magnitudes else 0)
                      | (TEMPORAL_FLAG if self.temporal else 0)
                      | (FREQUENCY_SCALES_FLAG if self.frequency_scales else 0))
        return struct.pack("<BBBBBBB", self.levels, self.hidden, self.layers, self.refine, self.context_hidden,
                           upsampling, self.dims | self.static << 4)

    @classmethod
    def from_bytes(cls, data: bytes) -> GridConfig:
        levels, hidden, layers, refine, ctx, up, axes = struct.unpack("<BBBBBBB", data)
        dims, static = axes & 0x0F, axes >> 4
        magnitudes, temporal = bool(up & MAGNITUDES_FLAG), bool(up & TEMPORAL_FLAG)
        frequency_scales = bool(up & FREQUENCY_SCALES_FLAG)
        up &= ~(MAGNITUDES_FLAG | TEMPORAL_FLAG | FREQUENCY_SCALES_FLAG)
        if not (1 <= levels <= 12 and 1 <= hidden <= 64 and 1 <= layers <= 4 and refine <= 16 and 1 <= ctx <= 64
                and up < len(UPSAMPLING) and dims in (2, 3) and static <= (levels if dims == 3 else 0)
                and not (UPSAMPLING[up] in WAVELET_BASES and dims != 2) and not (temporal and dims != 3)
                and not (frequency_scales and not temporal)):
            raise ValueError("invalid grid configuration")
        return cls(levels, hidden, layers, refine, ctx, UPSAMPLING[up], dims, static, magnitudes, temporal,
                   frequency_scales)

    def coded_from_frames(self, z: torch.Tensor) -> torch.Tensor:
        """A level's frames as its latents code them: their spectrum along time for a temporal config
        (:func:`temporal_spectrum`), else the frames themselves."""
        return temporal_spectrum(z) if self.temporal else z

    def frames_from_coded(self, c: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`coded_from_frames`: a level's coded latents -> its frames."""
        return temporal_frames(c) if self.temporal else c

    def frequency_counts(self, shapes: list[tuple[int, ...]]) -> list[int]:
        """Per level of these shapes, how many frequency scales its latent section carries: one per frame of a
        level of more than one with :attr:`frequency_scales`, else none."""
        return [shape[0] if self.frequency_scales and len(shape) == 3 and shape[0] > 1 else 0 for shape in shapes]

    @property
    def wavelet(self) -> bool:
        """Whether the latents are wavelet subbands (:data:`WAVELET_BASES`) rather than a pyramid."""
        return self.upsampling in WAVELET_BASES

    @property
    def symmetric(self) -> bool:
        """Whether the wavelet transform extends the frame symmetrically (else periodically; :data:`UPSAMPLING`)."""
        return self.upsampling == "cdf97-symmetric"

    def init_fields(self) -> GridConfig:
        """This config as an init file is tied to it: the wavelet's edge extension, the latents' temporal
        transform and the frequency scales change no network tensor, so an init trained with or without any of them
        serves all."""
        return replace(self, upsampling="cdf97" if self.symmetric else self.upsampling, temporal=False,
                       frequency_scales=False)

    @property
    def grids(self) -> int:
        """Latent grids in all: the pyramid's levels, then the static ones; or per wavelet level its H, V and D
        subbands (finest level first), then the approximation."""
        return 3 * self.levels + 1 if self.wavelet else self.levels + self.static

    @property
    def channels(self) -> int:
        """Inputs of the synthesis network: one per grid, or one per wavelet scale and the approximation."""
        return self.levels + 1 if self.wavelet else self.grids

    def grid_scales(self) -> list[int]:
        """Per grid, its spatial scale (1/2^scale of the frame)."""
        if self.wavelet:
            return [s + 1 for s in range(self.levels) for _ in range(3)] + [self.levels]
        return [*range(self.levels), *range(self.static)]

    def parents(self) -> list[int | None]:
        """Per grid, the grid whose 3x3 neighbourhood is its context: the next coarser of its own kind (pyramid or
        static; a wavelet subband's of its orientation, the approximation for the coarsest), none for the coarsest
        of each."""
        if self.wavelet:
            return [min(index + 3, self.grids - 1) for index in range(self.grids - 1)] + [None]
        return [None if index in (self.levels - 1, self.grids - 1) else index + 1 for index in range(self.grids)]

    def statics(self) -> list[int | None]:
        """Per pyramid level, the static grid at its scale, or None."""
        return [self.levels + s if s < self.static else None for s in range(self.levels)]

    def coarse_to_fine(self) -> list[int]:
        """Grid indices from the coarsest scale to the finest; at a scale with a static grid, the static one first."""
        if self.wavelet:
            return list(reversed(range(self.grids)))
        statics = self.statics()
        return [i for s in reversed(range(self.levels)) for i in (statics[s], s) if i is not None]

    @staticmethod
    def levels_for(height: int, width: int, most: int = 7, wavelet: bool = False) -> int:
        """Levels down to a coarsest grid of at least 4 samples on the shorter side (so 256 px and larger
        frames get the full 7 levels that the shipped grid inits are trained for); wavelet levels down to a
        coarsest subband of at least 8, at most WAVELET_LEVELS (so every frame of 256 px or more has the same
        grids, and an init trained on 256 px crops serves them all)."""
        if wavelet:
            most, coarsest = min(most, WAVELET_LEVELS), 3
        else:
            coarsest = 1
        return int(max(1, min(most, np.floor(np.log2(max(1, min(height, width)))) - coarsest)))

    def level_shapes(self, *size: int) -> list[tuple[int, ...]]:
        """Grid shape of each level for a (H, W) frame or a (T, H, W) sequence (frames halve from TIME_LEVELS on);
        wavelet subbands are those of the frame padded to a multiple of ``2**levels`` (:func:`padded_size`)."""
        if self.wavelet:
            height, width = padded_size(*size[-2:], self.levels)
            return [(height >> scale, width >> scale) for scale in self.grid_scales()]

        def frames(s: int) -> tuple[int, ...]:
            return (-(-size[0] // 2 ** max(0, s - TIME_LEVELS + 1)),) if len(size) == 3 else ()

        height, width = size[-2:]
        return ([(*frames(s), -(-height // 2**s), -(-width // 2**s)) for s in range(self.levels)]
                + [(1, -(-height // 2**s), -(-width // 2**s)) for s in range(self.static)])


@functools.lru_cache(maxsize=16)
def temporal_basis(frames: int) -> torch.Tensor:
    """(frames, frames) float32 orthonormal DCT-II matrix: row k is frequency k, so the spectrum of a signal x is
    ``basis @ x`` and the signal ``basis.T @ spectrum``."""
    frequency, time = np.arange(frames)[:, None], np.arange(frames)[None]
    basis = np.cos(np.pi * (time + 0.5) * frequency / frames) * np.sqrt(2 / frames)
    basis[0] /= np.sqrt(2)
    return torch.from_numpy(basis.astype(np.float32))


def _along_time(z: torch.Tensor, inverse: bool) -> torch.Tensor:
    """A (T, H, W) grid of T > 1 frames times :func:`temporal_basis` along time (or its transpose); others as they
    are. One matrix product (T terms a sum), the same on any thread count, like the spatial resizes."""
    if z.dim() != 3 or z.shape[0] == 1:
        return z
    basis = temporal_basis(z.shape[0]).to(z.dtype)
    return ((basis.T if inverse else basis) @ z.reshape(z.shape[0], -1)).reshape(z.shape)


def temporal_spectrum(z: torch.Tensor) -> torch.Tensor:
    """A (T, H, W) level's frames -> its coded latents, their DCT along time (:attr:`GridConfig.temporal`)."""
    return _along_time(z, inverse=False)


def temporal_frames(c: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`temporal_spectrum`: a level's coded latents -> its frames."""
    return _along_time(c, inverse=True)


def context_inputs(dims: int, magnitudes: bool = False) -> int:
    """Context network inputs: 3x3 parent neighbourhood, the 2 * dims anchor neighbours (each group followed by its
    magnitudes with ``magnitudes``), second-pass flag."""
    return (9 + 2 * dims) * (2 if magnitudes else 1) + 1


def _with_magnitudes(features: torch.Tensor, magnitudes: bool) -> torch.Tensor:
    """Feature rows followed by their magnitudes (with ``magnitudes``), or as they are."""
    return torch.cat([features, features.abs()]) if magnitudes else features


@functools.lru_cache(maxsize=64)
def _resize_matrix(n_in: int, n_out: int, mode: str) -> torch.Tensor:
    """(n_out, n_in) matrix of ``F.interpolate``'s 1-D ``mode`` resize (align_corners=False, clamped borders):
    its own coefficients, taken by resizing the identity."""
    eye = torch.eye(n_in).reshape(n_in, 1, n_in, 1)
    return F.interpolate(eye, size=(n_out, 1), mode=mode, align_corners=False)[:, 0, :, 0].T.contiguous()


def _interpolate(z: torch.Tensor, size: tuple[int, ...], mode: str, frames: torch.Tensor | None = None,
                 window: tuple[slice, slice] | None = None) -> torch.Tensor:
    """One level resized to ``size``: a (T, H, W) grid linearly in time, then every frame with ``mode``; (1, *size).

    The spatial resize is separable, ``R_h @ z @ R_w^T`` (:func:`_resize_matrix`): the same interpolation as
    ``F.interpolate`` to float rounding, and matrix products forward and backward, 7x faster than its bicubic
    kernel's backward on CPU. A level already at full size is left as it is (the identity, exactly).

    ``frames`` (training only): just these output frames of a (T, H, W) ``size``, through the time resize's
    rows, so the work scales with their count; (1, len(frames), H, W). ``window``: just these rows and columns of a
    frame, through the spatial resize's rows; (1, rows, columns)."""
    if frames is not None:
        t, h, w = z.shape
        if t == size[0]:
            z = z[frames]
        else:
            rows = _resize_matrix(t, size[0], "bilinear")[frames].to(z.dtype)
            z = (rows @ z.reshape(t, h * w)).reshape(len(frames), h, w)
        size = (len(frames), *size[1:])
    elif len(size) == 3 and z.shape[0] != size[0]:
        t, h, w = z.shape
        z = F.interpolate(z.reshape(t, h * w).T[None], size=size[0], mode="linear", align_corners=False)[0]
        z = z.T.reshape(size[0], h, w)
    h, w = z.shape[-2:]
    rows, cols = window or (slice(None), slice(None))
    if (h, w) != tuple(size[-2:]):
        z = (_resize_matrix(h, size[-2], mode)[rows].to(z.dtype) @ z
             @ _resize_matrix(w, size[-1], mode)[cols].to(z.dtype).T)
    elif window is not None:
        z = z[..., rows, cols]
    return z.reshape(1, *size[:-2], *z.shape[-2:])


def upsample(latents: list[torch.Tensor], size: tuple[int, ...], mode: str,
             frames: torch.Tensor | None = None, window: tuple[slice, slice] | None = None) -> torch.Tensor:
    """Each level interpolated to ``size`` ((H, W) or (T, H, W)), stacked: (S, *size); with ``frames`` or
    ``window``, only those frames of a sequence or rows and columns of a frame (:func:`_interpolate`)."""
    return torch.cat([_interpolate(z, size, mode, frames, window) for z in latents])


@functools.lru_cache(maxsize=32)
def _all_positions(shape: tuple[int, ...]) -> torch.Tensor:
    """(dims, positions) indices of every position of a grid, row-major."""
    return torch.from_numpy(np.indices(shape).reshape(len(shape), -1))


def _flat_index(pos: list[torch.Tensor], padded: tuple[int, ...], pad: tuple[int, ...]) -> torch.Tensor:
    """Row-major index into a grid of shape ``padded`` of the positions ``pos`` shifted by ``pad`` per axis."""
    index = torch.zeros_like(pos[0])
    for p, n, k in zip(pos, padded, pad):
        index = index * n + p + k
    return index


def _offsets(padded: tuple[int, ...], steps: list[tuple[int, ...]]) -> torch.Tensor:
    """Row-major index offsets, in a grid of shape ``padded``, of each per-axis step in ``steps``: (len(steps), 1)."""
    strides = np.cumprod((1, *padded[:0:-1]))[::-1]
    return torch.tensor([[int(np.dot(step, strides))] for step in steps])


@functools.lru_cache(maxsize=16)
def _gather_indices(shape: tuple[int, ...],
                    parent_shape: tuple[int, ...] | None) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """For every position of a level (row-major): indices of its 3x3 parent neighbourhood in the spatially
    zero-padded parent (None without a parent), of its face neighbours in the zero-padded level, and its
    second-pass flag."""
    dims = len(shape)
    pos = list(_all_positions(shape))
    second = sum(pos) % 2
    hood = None
    if parent_shape is not None:
        at = [p // (1 if m == n else 2) for p, m, n in zip(pos, parent_shape, shape)]
        padded = (*parent_shape[:-2], parent_shape[-2] + 2, parent_shape[-1] + 2)
        steps = [(*[0] * (dims - 2), dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        hood = _flat_index(at, padded, (*[0] * (dims - 2), 1, 1)) + _offsets(padded, steps)
    padded = tuple(n + 2 for n in shape)
    steps = [tuple(step if a == axis else 0 for a in range(dims)) for axis in range(dims) for step in (-1, 1)]
    return hood, _flat_index(pos, padded, (1,) * dims) + _offsets(padded, steps), second


@functools.lru_cache(maxsize=16)
def _parities(dims: int, checker_pass: int) -> tuple[tuple[int, ...], ...]:
    """The index parities (one per axis) of a checkerboard pass's sub-grids: even sums for the anchors (pass 0)."""
    return tuple(p for p in itertools.product((0, 1), repeat=dims) if sum(p) % 2 == checker_pass)


def _every_other(start: int, count: int) -> slice:
    """``count`` indices from ``start`` in steps of two."""
    return slice(start, start + 2 * count - 1, 2)


@functools.lru_cache(maxsize=64)
def _pass_positions(shape: tuple[int, ...], checker_pass: int) -> torch.Tensor:
    """Row-major flat indices of one checkerboard pass's positions (the coder's symbol order)."""
    return torch.from_numpy(np.flatnonzero(pass_masks(shape)[checker_pass]))


def _subgrid_context(current: torch.Tensor, parent: torch.Tensor | None, passes: tuple[int, ...],
                     weights: list[torch.Tensor], hidden_round: Callable[[torch.Tensor], torch.Tensor],
                     magnitudes: bool = False) -> torch.Tensor:
    """:meth:`GridModel._context` of a level's checkerboard ``passes`` by strided slices instead of gathers, as a
    (2, batch, *shape) grid (zero at the other pass's positions), for a batch of levels of one shape (``current``
    (batch, *shape), ``parent`` (batch, *parent shape): training evaluates a wavelet level's three subbands in
    one go, a third of the operations); 2D or (t, y, x). ``weights``: w1, b1, w2 and the output bias, (2,) or
    (2, batch) (each level's own).

    A pass is the sub-grids of fixed index parities with an even (anchors) or odd sum. Children of one parent
    sample share its 3x3 neighbourhood, so the parent term is one product per parent sample (a block of them at a
    time: CONTEXT_CHUNK positions keep the activations in cache), sliced for each sub-grid; an axis the parent does
    not halve is sliced with the sub-grid's parity. The face neighbours of the second pass are strided slices of
    the level. In the exact fixed point every sum is exact, so this gives the gathered features' values to the bit
    (tests/models/test_grid_context.py checks it); training gets the same function 2x faster.

    The sub-grids are interleaved into the level's grid once at the end (:func:`_interleave`), not written into it
    block by block: autograd copies the whole grid's gradient for each slice written in place, which on a 2000 px
    frame (252 blocks on its finest level) took most of a training step's backward pass."""
    w1, b1, w2, b2 = weights
    batch, shape = current.shape[0], tuple(current.shape[1:])
    dims = len(shape)
    every = (slice(None),)  # the batch axis, whole
    b2 = b2.reshape(2, -1).expand(2, batch).reshape(2, batch, *[1] * dims)
    copies = 2 if magnitudes else 1  # w1's columns: parent terms, face terms (each with magnitudes), the flag
    hood_end = 9 * copies
    faces_end = hood_end + 2 * dims * copies
    halved = [True] * dims if parent is None else [m != n for m, n in zip(parent.shape[1:], shape)]
    # extent of the parent term's grid per axis: the parent's (half the level's, or all of it where not halved)
    extent = [(n + 1) // 2 if h else n for n, h in zip(shape, halved)]
    hood_grid = None if parent is None else F.pad(parent, (1, 1, 1, 1))
    level_grid = F.pad(current, (1, 1) * dims)
    pieces: dict[tuple[int, ...], list[torch.Tensor]] = {p: [] for p in itertools.product((0, 1), repeat=dims)}
    sub_rows = (shape[0] + 1) // 2
    block = max(1, CONTEXT_CHUNK // int(batch * np.prod([(n + 1) // 2 for n in shape[1:]])))
    for a0 in range(0, sub_rows, block):
        a1 = min(sub_rows, a0 + block)
        # parent rows (axis 0) of sub-grid rows a0:a1: the same rows where halved, rows 2 a0 : 2 a1 where not
        region = [slice(a0, a1) if halved[0] else slice(2 * a0, min(shape[0], 2 * a1)),
                  *(slice(0, e) for e in extent[1:])]
        block_extent = [r.stop - r.start for r in region]
        if hood_grid is None:
            base = b1.reshape(-1, *[1] * (dims + 1)).expand(-1, batch, *block_extent)
        else:  # the 3x3 spatial neighbourhood: the last two axes shifted (the grid is padded by one there)
            shifted = [hood_grid[(*every, *region[:-2], *(slice(r.start + 1 + d, r.stop + 1 + d)
                                                          for r, d in zip(region[-2:], (dy, dx))))]
                       for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            hood = _with_magnitudes(torch.stack(shifted).reshape(9, -1), magnitudes)
            base = torch.addmm(b1[:, None], w1[:, :hood_end], hood).reshape(-1, batch, *block_extent)
        for checker_pass in passes:
            for parity in _parities(dims, checker_pass):
                counts = [(n - p + 1) // 2 for n, p in zip(shape, parity)]
                counts[0] = min(a1, counts[0]) - a0
                if counts[0] <= 0:
                    continue
                take = [slice(0, c) if h else _every_other(p, c) for c, h, p in zip(counts, halved, parity)]
                hidden = base[(*every, *every, *take)].reshape(-1, batch * int(np.prod(counts)))
                # level index of each axis's first position in this block
                first = [p + (2 * a0 if axis == 0 else 0) for axis, p in enumerate(parity)]
                if checker_pass:
                    faces = [level_grid[(*every, *(_every_other(1 + f + (step if a == axis else 0), c)
                                                   for a, (f, c) in enumerate(zip(first, counts))))]
                             for axis in range(dims) for step in (-1, 1)]
                    hidden = torch.addmm(hidden + w1[:, faces_end:], w1[:, hood_end:faces_end],
                                         _with_magnitudes(torch.stack(faces).reshape(2 * dims, -1), magnitudes))
                hidden = hidden_round(hidden.relu())
                pieces[parity].append((w2 @ hidden).reshape(2, batch, *counts) + b2)
    return _interleave(pieces, (batch, *shape), w2.dtype)


def _interleave(pieces: dict[tuple[int, ...], list[torch.Tensor]], shape: tuple[int, ...],
                dtype: torch.dtype) -> torch.Tensor:
    """The (2, batch, *level shape) grid whose positions of index parities ``p`` hold the sub-grid of
    ``pieces[p]`` (its blocks, to be joined along the level's axis 0; zero where there are none), for ``shape``
    (batch, *level shape), by padding every sub-grid to half the level's shape (rounded up), stacking and one
    permute: differentiable without in-place writes."""
    batch, shape = shape[0], shape[1:]
    dims = len(shape)
    half = [(n + 1) // 2 for n in shape]
    grids = []
    for parity in itertools.product((0, 1), repeat=dims):
        if not pieces[parity]:
            grids.append(torch.zeros(2, batch, *half, dtype=dtype))
            continue
        sub = torch.cat(pieces[parity], 2)
        grids.append(F.pad(sub, [pad for n, h in zip(reversed(sub.shape[2:]), reversed(half)) for pad in (0, h - n)]))
    # axes (parity per axis..., channel, batch, half per axis...) -> (channel, batch, half_0, parity_0, ...)
    order = [dims, dims + 1, *(i for axis in range(dims) for i in (dims + 2 + axis, axis))]
    full = torch.stack(grids).reshape(*(2,) * dims, 2, batch, *half).permute(order)
    full = full.reshape(2, batch, *(2 * h for h in half))
    return full[(slice(None), slice(None), *(slice(0, n) for n in shape))]


def context_features(current: torch.Tensor, parent: torch.Tensor | None,
                     checker_pass: int | None = None, magnitudes: bool = False) -> torch.Tensor:
    """The context network's inputs, gathered position by position: a (context_inputs(dims), n) matrix for every
    position of a level (row-major), or for one checkerboard pass's (0: anchors, 1: the rest). The definition
    that the sliced evaluation (:func:`_subgrid_context`) is tested against.

    Rows: the 3x3 (spatial) neighbourhood of the co-located parent sample (zero outside it, and on the coarsest
    level; an axis the parent does not halve is co-located one to one); the face neighbours along each axis
    ((previous, next frame,) N, S, W, E) and a flag, both only on the checkerboard's second pass (odd index
    sums), where those neighbours are anchors, zero on the first. ``current`` may hold the whole level: anchors
    never see it, and second-pass positions only read anchors, exactly as in the decoder. With ``magnitudes``
    (:attr:`GridConfig.context_magnitudes`) the neighbourhood's and the faces' rows are each followed by their
    magnitudes.
    """
    hood_at, faces_at, second = _gather_indices(tuple(current.shape), None if parent is None else tuple(parent.shape))
    second = second.to(current.dtype)
    hood = current.new_zeros(9, len(second)) if parent is None else F.pad(parent, (1, 1, 1, 1)).reshape(-1)[hood_at]
    faces = F.pad(current, (1, 1) * current.dim()).reshape(-1)[faces_at] * second
    features = torch.cat([_with_magnitudes(hood, magnitudes), _with_magnitudes(faces, magnitudes), second[None]])
    return features if checker_pass is None else features[:, _pass_positions(tuple(current.shape), checker_pass)]


def _round_hidden(hidden: torch.Tensor) -> torch.Tensor:
    """The exact context network's hidden layer on its fixed-point grid (``2**-_H_FRAC``, at most ``_H_MAX``), in
    place: scaling by powers of two and rounding half to even are exact in float64."""
    return hidden.mul_(2.0**_H_FRAC).round_().clamp_(max=_H_MAX * 2.0**_H_FRAC).mul_(2.0**-_H_FRAC)


class GridModel(nn.Module):
    """Synthesis and context networks of the grid INR (the latents are inputs, not parameters)."""

    def __init__(self, config: GridConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.gain = nn.Parameter(torch.empty(c.grids))
        dims = [c.channels] + [c.hidden] * c.layers + [2]
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(b, a)) for a, b in zip(dims[:-1], dims[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(b)) for b in dims[1:])
        r = c.refine
        refine = [nn.Parameter(torch.empty(r, 2, 3, 3)), nn.Parameter(torch.zeros(r)),
                  nn.Parameter(torch.empty(1, r, 3, 3)), nn.Parameter(torch.zeros(1))]
        self.refine = nn.ParameterList(refine if r else [])
        self.context = nn.ParameterList([
            nn.Parameter(torch.empty(c.context_hidden, context_inputs(c.dims, c.context_magnitudes))),
            nn.Parameter(torch.zeros(c.context_hidden)),
            nn.Parameter(torch.empty(2, c.context_hidden)), nn.Parameter(torch.zeros(2)),
        ])
        #: per level: (mean, log2 scale) added to the context network's output
        self.level_bias = nn.Parameter(torch.zeros(c.grids, 2))
        #: per level, None or a log2 scale for each index along its first axis, added by :meth:`rate_bits`: a
        #: sequence's frequency scales (:attr:`GridConfig.frequency_scales`), fitted per sequence and coded in its
        #: latent section, so not a network tensor (not in ``parameters()``)
        self.slice_bias: list[torch.Tensor | None] | None = None
        self.reset_parameters()

    def reset_parameters(self, uniform: Callable[[torch.Size], torch.Tensor] = torch.rand) -> None:
        """Kaiming-uniform hidden layers; the output layers start at zero, so the untrained network is the
        plain pyramid Σ_s f_s (gains ``2**-s / 16``) with one zero-mean Laplace per level.

        ``uniform(shape)`` supplies U(0, 1) samples (see :func:`medinr.meta.inits.random_init`)."""
        def kaiming(p: torch.Tensor) -> None:
            fan_in = p[0].numel()
            with torch.no_grad():
                p.copy_((2 * uniform(p.shape) - 1) * np.sqrt(3 / fan_in))

        with torch.no_grad():
            scales = torch.tensor(self.config.grid_scales(), dtype=torch.float32)
            self.gain.copy_((torch.zeros_like(scales) if self.config.wavelet else 2.0**-scales) / 16)
            for w in self.weights[:-1]:
                kaiming(w)
            self.weights[-1].zero_()
            if self.config.refine:
                kaiming(self.refine[0])
                self.refine[2].zero_()
            kaiming(self.context[0])
            self.context[2].zero_()
            self.level_bias.zero_()
            for b in [*self.biases, *self.refine[1::2], *self.context[1::2]]:
                b.zero_()

    # ---- synthesis ---------------------------------------------------------------------------------

    def synthesize(self, latents: list[torch.Tensor], size: tuple[int, ...],
                   frames: torch.Tensor | None = None, window: tuple[int, int, int, int] | None = None) -> torch.Tensor:
        """Image (H, W) or sequence (T, H, W) in normalised intensity, from (dequantised or noisy) latents in
        step units. ``frames`` (training a sequence): only these frames, (len(frames), H, W). ``window`` (an image,
        measuring part of it): only rows top:bottom and columns left:right, given as (top, bottom, left, right);
        the same values as those pixels of the whole image (the refinement's reach is synthesised around it)."""
        if window is None:
            return self._synthesize(latents, size, frames)
        inputs, crop = self.window_inputs(latents, size, window)
        return self.from_inputs(inputs)[crop]

    def window_inputs(self, latents: list[torch.Tensor], size: tuple[int, ...], window: tuple[int, int, int, int]
                      ) -> tuple[torch.Tensor, tuple[slice, slice]]:
        """:meth:`synthesis_inputs` of a window (top, bottom, left, right) and the refinement's reach around it, and
        where the window lies in their synthesis (:meth:`from_inputs`)."""
        top, bottom, left, right = window
        reach = REFINE_REACH if self.config.refine else 0
        outer = (max(0, top - reach), min(size[-2], bottom + reach), max(0, left - reach), min(size[-1], right + reach))
        inputs = self.synthesis_inputs(latents, size, None, (slice(*outer[:2]), slice(*outer[2:])))
        return inputs, (slice(top - outer[0], bottom - outer[0]), slice(left - outer[2], right - outer[2]))

    def _synthesize(self, latents: list[torch.Tensor], size: tuple[int, ...], frames: torch.Tensor | None = None,
                    window: tuple[slice, slice] | None = None) -> torch.Tensor:
        """:meth:`synthesize` of the frames, or of a window given as row and column slices (its edge then padded
        with zeros by the refinement, like the image's)."""
        return self.from_inputs(self.synthesis_inputs(latents, size, frames, window))

    def synthesis_inputs(self, latents: list[torch.Tensor], size: tuple[int, ...],
                         frames: torch.Tensor | None = None, window: tuple[slice, slice] | None = None
                         ) -> torch.Tensor:
        """The per-pixel network's inputs, (channels, *size): the gained wavelet scale parts or upsampled grids
        (a temporal config's frames, :meth:`GridConfig.frames_from_coded`; arguments as :meth:`_synthesize`). Only
        the latents and the gains enter them, so the curvature probes of the other network tensors compute them once
        (:meth:`medinr.archs.grid._FrameFit.curvature`)."""
        if self.config.wavelet:
            rows = None if window is None else (window[0].start, window[0].stop)
            f = self.scale_parts(latents, size, rows)
            return f if window is None else f[:, :, window[1]]
        frames_of = [self.config.frames_from_coded(c) for c in latents]
        f = upsample(frames_of, size, self.config.upsampling, frames, window)
        return f * self.gain.to(f.dtype).reshape(-1, *[1] * (f.dim() - 1))

    def from_inputs(self, f: torch.Tensor) -> torch.Tensor:
        """The synthesis from its inputs (:meth:`synthesis_inputs`): the per-pixel MLP, its residual added to the
        inputs' sum, then the 3x3 refinement."""
        dtype = f.dtype
        size = tuple(f.shape[1:])
        out = self._mlp(f.reshape(f.shape[0], -1)).reshape(2, *size)
        image = f.sum(0) + out[0]
        if self.config.refine:
            r1, b1, r2, b2 = (p.to(dtype) for p in self.refine)
            # a sequence: frame by frame. Channels-last: backward 2x faster, forward 2x slower (512 px: 12 against
            # 6 ms). For one frame it gives the default layout's sums, so a single image's decoder skips it; for
            # several frames the sums can differ in the last bit, so sequences keep it (the format's reference)
            frames = torch.stack([image, out[1]], -3).reshape(-1, 2, *size[-2:])
            if torch.is_grad_enabled() or len(frames) > 1:
                frames = frames.contiguous(memory_format=torch.channels_last)
            hidden = torch.relu(F.conv2d(frames, r1, b1, padding=1))
            image = image + F.conv2d(hidden, r2, b2, padding=1).reshape(size)
        return image

    def scale_parts(self, latents: list[torch.Tensor], size: tuple[int, ...],
                    rows: tuple[int, int] | None = None) -> torch.Tensor:
        """Wavelet latents (step units) -> (levels + 1, H, W): each scale's part of the inverse transform (its
        three subbands alone, finest scale first), then the approximation's; their sum is the image. Cropped to the
        frame, or to its ``rows`` (top, bottom) (:func:`medinr.models.wavelet.scale_parts`)."""
        c = self.config
        gained = [z * g for z, g in zip(latents, self.gain.to(latents[0].dtype))]
        details = [tuple(gained[3 * s:3 * s + 3]) for s in reversed(range(c.levels))]
        parts = wavelet_scale_parts(gained[-1], details, rows, c.symmetric)
        return parts[:, :size[-2], :size[-1]] if rows is None else parts[..., :size[-1]]

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        """The per-pixel MLP on (levels, pixels) columns, MLP_CHUNK pixels at a time: its activations then stay
        in cache (a 512 px frame's whole-width products ran at a quarter of the speed, 27 against 8 ms)."""
        layers = [(w.to(x.dtype), b.to(x.dtype)[:, None]) for w, b in zip(self.weights, self.biases)]
        chunks = []
        for y in x.split(MLP_CHUNK, dim=1):
            for i, (w, b) in enumerate(layers):
                y = torch.addmm(b, w, y)
                if i < len(layers) - 1:
                    y = y.relu_()
            chunks.append(y)
        return torch.cat(chunks, dim=1)

    # ---- entropy model -----------------------------------------------------------------------------

    def entropy_parameters(self) -> list[nn.Parameter]:
        """The entropy model's tensors: the context network's, then the per-level (mean, log2 scale) biases."""
        return [*self.context, self.level_bias]

    def _context(self, level: int, current: torch.Tensor, parent: torch.Tensor | None,
                 weights: list[torch.Tensor], hidden_round: Callable[[torch.Tensor], torch.Tensor],
                 checker_pass: int | None = None) -> torch.Tensor:
        """Laplace (mean, log2 scale) of every position of a level, (2, h * w), or of one checkerboard pass's,
        (2, n)."""
        out = self._batch_context([level], current[None], None if parent is None else parent[None], weights,
                                  hidden_round, (0, 1) if checker_pass is None else (checker_pass,)).reshape(2, -1)
        return out if checker_pass is None else out[:, _pass_positions(tuple(current.shape), checker_pass)]

    def _batch_context(self, levels: list[int], current: torch.Tensor, parent: torch.Tensor | None,
                       weights: list[torch.Tensor], hidden_round: Callable[[torch.Tensor], torch.Tensor],
                       passes: tuple[int, ...] = (0, 1)) -> torch.Tensor:
        """Laplace (mean, log2 scale) of every position of ``levels`` of one shape, stacked as ``current`` (and
        their parents as ``parent``): (2, len(levels), *shape)."""
        w1, b1, w2, b2, bias = weights
        return _subgrid_context(current, parent, passes, [w1, b1, w2, b2[:, None] + bias[levels].T], hidden_round,
                                self.config.context_magnitudes)

    def _level_batches(self, latents: list[torch.Tensor], rows: list[tuple[int, int]] | None = None
                       ) -> list[tuple[list[int], torch.Tensor, torch.Tensor | None]]:
        """The levels in batches of one shape whose parents share a shape (a wavelet level's three subbands), and
        (with ``rows``) the same rows: (levels, their stacked grids, their parents' stacked grids or None)."""
        parents = self.config.parents()
        batches: dict[tuple[object, ...], list[int]] = {}
        for s, (z, p) in enumerate(zip(latents, parents)):
            key = (tuple(z.shape), None if p is None else tuple(latents[p].shape), None if rows is None else rows[s])
            batches.setdefault(key, []).append(s)
        out = []
        for levels in batches.values():
            above = [parents[s] for s in levels]
            parent = None if above[0] is None else torch.stack([latents[p] for p in above if p is not None])
            out.append((levels, torch.stack([latents[s] for s in levels]), parent))
        return out

    def rate_contexts(self, latents: list[torch.Tensor],
                      rows: list[tuple[int, int]] | None = None) -> list[torch.Tensor]:
        """Each level's Laplace (mean, log2 scale), (2, *shape), from the (detached) latents: differentiable in the
        networks only (the inputs' gradient is small and costly). ``rows`` (2D levels): per level, only its rows
        top:bottom, (2, bottom - top, width) (:meth:`_rows_context`). Levels of one shape whose parents share a
        shape (a wavelet level's three subbands) are evaluated as one batch: on a 512 px frame the context's forward
        and backward pass of a training step took 15.5 ms instead of 27 (two threads)."""
        weights = self.entropy_parameters()
        out: list[torch.Tensor] = [torch.empty(0)] * len(latents)
        for levels, current, parent in self._level_batches([z.detach() for z in latents], rows):
            if rows is None:
                grid = self._batch_context(levels, current, parent, weights, lambda h: h)
            else:
                grid = self._rows_context(levels, current, parent, weights, rows[levels[0]])
            for i, s in enumerate(levels):
                out[s] = grid[:, i]
        return out

    def _rows_context(self, levels: list[int], current: torch.Tensor, parent: torch.Tensor | None,
                      weights: list[torch.Tensor], rows: tuple[int, int]) -> torch.Tensor:
        """:meth:`_batch_context` of 2D levels' rows top:bottom, (2, len(levels), bottom - top, width): evaluated on
        those rows and two more each side (starting at an even row, so the checkerboard's parity and the parent's
        alignment are the level's), with the parent's rows they read; the same values as those rows of the whole
        level's."""
        top, bottom = rows
        first = max(0, top - 2)
        first -= first % 2
        last = min(current.shape[1], bottom + 2)
        if parent is not None:
            halved = parent.shape[1] != current.shape[1]
            parent = parent[:, first // 2:(last + 1) // 2] if halved else parent[:, first:last]
        out = self._batch_context(levels, current[:, first:last], parent, weights, lambda h: h)
        return out[:, :, top - first:bottom - first]

    def rate_bits(self, latents: list[torch.Tensor], contexts: list[torch.Tensor] | None = None,
                  frames: torch.Tensor | None = None, rows: list[tuple[int, int]] | None = None) -> torch.Tensor:
        """Code length in bits of (noisy or rounded) latents under the context model, differentiable in the
        latents and the networks; ``contexts``: :meth:`rate_contexts` already evaluated (possibly of earlier
        latents, see ``GridOptions.context_every``; of the same ``rows``). ``frames`` (training a sequence): the
        levels that keep every frame count only these frames', scaled to the whole (an unbiased estimate); a
        temporal config's levels hold frequencies, not frames, so they all count whole (a subset of frequencies, DC in
        or out, swung a step's estimate between 0.6 and 1.8 times the whole on cine, and λ steering with it).
        ``rows`` (2D levels): per level, only the latents of its rows top:bottom. Scales include :attr:`slice_bias`."""
        lo, hi = (i / SCALE_STEPS for i in SCALE_INDEX_RANGE)
        if self.config.temporal:
            frames = None
        if contexts is None:
            contexts = self.rate_contexts(latents, rows)
        if rows is not None:
            latents = [z[top:bottom] for z, (top, bottom) in zip(latents, rows)]
        values, means, log_scales, weights = [], [], [], []
        for z, out, bias in zip(latents, contexts, self.slice_bias or [None] * len(latents)):
            weight, log_scale = 1.0, out[1] if bias is None else out[1] + bias.reshape(-1, *[1] * (z.dim() - 1))
            if frames is not None and z.shape[0] == latents[0].shape[0]:
                z, out, log_scale, weight = z[frames], out[:, frames], log_scale[frames], z.shape[0] / len(frames)
            values.append(z.reshape(-1))
            means.append(out[0].reshape(-1))
            log_scales.append(log_scale.reshape(-1))
            weights.append(weight)
        # every level at once: a dozen elementwise operations instead of a dozen per level (512 px: 3 ms, was 4-7)
        scale = torch.exp2(torch.cat(log_scales).clamp(lo, hi))
        d = -(torch.cat(values) - torch.cat(means)).abs()
        upper = d + 0.5  # P = F(d + 1/2) - F(d - 1/2) of a zero-mean Laplace, evaluated on the left side
        cdf_upper = torch.where(upper <= 0, 0.5 * torch.exp(upper.clamp(max=0) / scale),
                                1 - 0.5 * torch.exp(-upper.clamp(min=0) / scale))
        bits = -torch.log2((cdf_upper - 0.5 * torch.exp((d - 0.5) / scale)).clamp_min(2.0**-24))
        if all(w == 1.0 for w in weights):
            return bits.sum()
        return sum((w * part.sum() for w, part in zip(weights, bits.split([len(v) for v in values]))),
                   bits.new_zeros(()))

    def exact_predictor(self, known: list[np.ndarray] | None = None) -> Predictor:
        """The coder's predictor (:data:`medinr.entropy.context.Predictor`): means on the ``2**-MEAN_FRAC`` grid
        and integer log-scale indices of a pass's positions.

        Weights are rounded to fixed point (once, here) and evaluated in float64, where every operation is
        exact, so the result does not depend on thread count or summation order.

        ``known`` (an encoder's, which holds every level): the answers for these integer levels, computed here in
        batches of same-shaped levels (:meth:`_level_batches`) with both checkerboard passes at once, since a
        second-pass position's neighbours are all anchors, which the decoder has by then. The same values to the
        bit (exact sums), for calls on these levels only; the decoder must go pass by pass. On a 512 px
        ``grid-wavelet`` frame one exact coding of the latents took 60 ms, 38 of them in 32 context evaluations.
        """
        weights = [torch.from_numpy(np.clip(fixed_point(p.detach().double().numpy(), _W_FRAC), -_W_MAX, _W_MAX))
                   for p in self.entropy_parameters()]

        def quantised(out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            means = np.clip(fixed_point(out[0], MEAN_FRAC), -MAX_ABS_LATENT, MAX_ABS_LATENT)
            indices = np.clip(np.rint(out[1] * SCALE_STEPS), *SCALE_INDEX_RANGE).astype(np.int64)
            return means, indices

        if known is not None:
            answers: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0), np.empty(0))] * len(known)
            with torch.no_grad():
                grids = [torch.from_numpy(np.asarray(z, dtype=np.float64)) for z in known]
                for levels, current, parent in self._level_batches(grids):
                    out = self._batch_context(levels, current, parent, weights, _round_hidden).numpy()
                    for i, s in enumerate(levels):
                        answers[s] = quantised(out[:, i].reshape(2, -1))

            def predict_known(level: int, current: np.ndarray, parent: np.ndarray | None,
                              checker_pass: int) -> tuple[np.ndarray, np.ndarray]:
                positions = _pass_positions(tuple(current.shape), checker_pass).numpy()
                return answers[level][0][positions], answers[level][1][positions]

            return predict_known

        @torch.no_grad()
        def predict(level: int, current: np.ndarray, parent: np.ndarray | None,
                    checker_pass: int) -> tuple[np.ndarray, np.ndarray]:
            return quantised(self._context(level, torch.from_numpy(current),
                                           None if parent is None else torch.from_numpy(parent), weights,
                                           _round_hidden, checker_pass).numpy())

        return predict

    def multiply_adds_per_pixel(self) -> float:
        """Decoder cost per output pixel: upsampling, synthesis, refinement, and the context network
        (run twice per level on 4/3 latents per pixel; the parent convolution on a quarter of them); an
        (x, y, t) grid adds two taps per level for the linear interpolation in time (an upper bound)."""
        c = self.config
        network = sum(w.numel() for w in self.weights) + (sum(p.numel() for p in self.refine[::2]))
        if c.wavelet:  # every scale's part through each level above it (two 1-D passes a level, 4/3 of the pixels)
            inverse = c.channels * 2 * multiply_adds_per_sample() * 4 / 3
            return float(inverse + c.channels + network + 2 * (self.context[0].numel() + self.context[2].numel()))
        taps = (4 if c.upsampling == "bilinear" else 16) + 2 * (c.dims - 2)
        context = 2 * 4 / 3 * (self.context[0].numel() + self.context[2].numel())
        return float(taps * c.grids + c.grids + network + context)


ARCHITECTURES["grid"] = Architecture("grid", GridConfig, GridModel)
