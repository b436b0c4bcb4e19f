"""The ``grid`` architecture codec: latent grids + synthesis + context entropy model, fitted per frame.

Per frame:

1. Analysis without a network: the latents start as a closed-loop quantised Laplacian pyramid of the
   frame (coarse to fine, each level's step ``q * 2**(-alpha * s)``; alpha = 1 is the high-rate
   equal-slope allocation for interpolated levels), so fitting starts at a real codec point. For a
   target, ``q`` is searched per alpha so that this pyramid's zeroth-order entropy, times a typical
   context-model saving, meets the bpp target (or its error the PSNR target), the alpha with the least
   error (or entropy) wins, and λ = 2 ln2 · D, the high-rate slope -dD/dR of that point.
   This start is where most of the gap to JPEG 2000 lies (measured 2026-11-27; the README's "Where the still-image
   gap is" has the numbers and the wavelet prototype's): at equal zeroth-order entropy a critically sampled CDF 9/7
   wavelet beats the best of these pyramids by 0.2-0.8 dB at 0.25-0.5 bpp and 1.3-2.8 dB at 1-2 bpp (cxr/train
   images, one 12-bit), more than training, the context model and the synthesis recover (0.7-1.1 dB at 2 bpp). The
   pyramid is 4/3 overcomplete, and its closed loop codes each coarse level's error again one level finer.
2. Training (Cool-chic): loss = MSE + λ · bits / pixels with the context model's differentiable rate;
   soft-rounded latents with uniform noise first (C3: the temperature annealed, ``GridOptions.soft_round``; a frame
   over 256x256 px that trains fewer than ``soft_round_fine_min_steps`` keeps plain noise on its full-resolution
   levels, where soft rounding measured worse), then (at most ``straight_through_steps``) straight-through
   rounding. The networks' learning rate falls above an expected latent rate of ``LR_NET_KNEE_BPP``. A frame of
   768 rows or more measures each step's error on one horizontal band of about 512 rows (:func:`training_bands`),
   and its rate on that band's share of every latent level's rows.
   For a bpp or PSNR target λ is steered multiplicatively every step towards the target rate or error; a bpp
   target's latent share is recalibrated twice from the real payload (coded network and exact latent coder).
3. Network quantisation: each tensor's step follows its measured curvature (antithetic perturbation),
   times one global factor chosen by exact D + λR over a few candidates (exact sizes from the real coder).
4. Final rate control: a dead zone on the latents' rounding, searched on the exact file size (bpp
   target, within about 1 %) or the exact decoded error (PSNR target).

``grid-wavelet`` (:class:`GridWaveletCodec`, format 1.6) replaces the pyramid by the subbands of a CDF 9/7 wavelet
transform (:mod:`medinr.models.wavelet`): step 1 takes the frame's coefficients over one step ``q`` for all subbands
(their dead-zone quantisation meets the target, :meth:`_FrameFit._wavelet_start`); steps 2-4 are the same, with the
context network reading a subband's coarser subband of the same orientation as its parent, and the magnitudes of
its inputs beside them (format 1.7, ``GridConfig.context_magnitudes``), and the synthesis network each scale's part
of the inverse transform.

Payload: one step-index byte per network tensor | varint length + entropy-coded network deltas from
the init | latent coarsening byte (with flags: table-coded, interpolated) | context-coded latents
(:mod:`medinr.entropy.context`; an interpolated frame's start with the rule's byte).

Measuring a change: training is deterministic, but its result is sensitive to anything that moves it. The same
``fast`` encode with the training generator seeded 0, 1 and 2 (three 256 px cxr/train images at 0.5 / 1 / 2 bpp,
2026-11-27) spread by 0.02-0.36 dB a point (median 0.05), so a difference under about 0.2 dB at one point is noise;
compare over several images and rates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from medinr.archs import ArchCodec, ProgressFn, psnr_shortfall, register
from medinr.config import EncoderConfig, GridOptions
from medinr.entropy import MAX_ABS_SYMBOL, decode_tensors, encode_tensors
from medinr.entropy.context import (
    MAX_ABS_LATENT,
    SCALE_STEPS,
    SLICE_OFFSET_STEP,
    choose_interpolation,
    choose_slice_offsets,
    decode_levels,
    encode_levels,
    read_slice_offsets,
    with_slice_scales,
    write_slice_offsets,
)
from medinr.errors import BitstreamError
from medinr.meta.inits import (
    RANDOM,
    Init,
    init_name_for,
    installed_init,
    load_init,
    modality_init,
    serves_rate,
)
from medinr.metrics import psnr
from medinr.models import with_params
from medinr.models.analysis import AnalysisNet
from medinr.models.analysis import shipped as shipped_analysis
from medinr.models.grid import (
    WAVELET_BASES,
    WAVELET_BASIS,
    GridConfig,
    GridModel,
    upsample,
)
from medinr.models.wavelet import analysis as wavelet_analysis
from medinr.models.wavelet import pad_frame
from medinr.preprocess import Normalisation
from medinr.quant import dequantize, fitting_indices, quantize, step_indices
from medinr.ratecontrol import RateTarget, closest_size_fine, largest_true
from medinr.varint import read_svarint, write_svarint
from medinr.video.fit import temporal_consistency_loss

#: coded bits per network parameter assumed when budgeting latents for a bpp target, until the first calibration
#: (CALIBRATE_AT) measures the real payload: from the random init, and from a learned init (``grid-<family>``),
#: whose deltas measured 2.8-3.5 bits per parameter on 256 px cxr crops after training (0.5 is the start's guess)
NET_BITS_PER_PARAM = 6.0
LEARNED_NET_BITS_PER_PARAM = 0.5
#: largest share of a frame's bpp budget the network may take (estimated); plan() narrows it to fit
NET_SHARE = 0.1
#: dead zones tried by the final rate search, in 1/64 of a quantisation step (negative: rounding up)
DEADZONE_RANGE = (-16, 28)
#: a bpp target's file may come in this fraction under the budget rather than round latents up to fill it:
#: straight-through training leaves many latents at a rounding boundary, so every flip costs a whole step. A
#: cine/train frame at 2 bpp: dead zone -1/64 50.03 dB at 2.003 bpp, 0 51.46 dB at 1.902 bpp (-4/64: 47.96 dB);
#: on six cxr, cine and MR train crops at 0.5 / 1 / 2 bpp, no rounding up left 10 of 18 files unchanged,
#: undershot 6 by 1-4 % for -0.02 to -0.13 dB, and gained 1.4 and 1.7 dB at two 2 bpp points (5 % under)
UNDERSHOOT_KEPT = 0.05
#: frame size the presets' step counts are for, and the fewest steps any frame gets (of a preset with more). 100, was
#: 20: ``fast`` gave a 2000 px frame 37 steps (1/8 of 300), and 100 measured on cxr/train data at 0.5 / 1 / 2 bpp
#: (fast, two threads): a 2000 px 8-bit image +1.63 / +1.59 / +0.20 dB for 40 -> 70 s, a 2000 px 12-bit proxy (112
#: steps) +0.17 / +2.42 / +0.55 dB for 43 -> 80 s, an image resized to 1024 px (75 -> 100 steps) +0.25 / -0.01 /
#: +0.14 dB for 14 -> 18 s. Frames up to 768 px at ``fast``, and every frame at ``balanced``, are unchanged. 150 since
#: a band's step counts only its band's rate (:meth:`_FrameFit._latent_rows`), which took a 2000 px ``grid-wavelet``
#: step from 0.52 to 0.35 s: on two 2000 px cxr/train images (one 12-bit) at 0.5 / 1 / 2 bpp, ``fast``, two threads,
#: 150 steps then gave +0.01 to +0.24 dB (mean +0.11) over the 100 before, in 43-48 s instead of 51-53 s
REFERENCE_PIXELS = 256 * 256
MIN_STEPS = 150
#: frames larger than REFERENCE_PIXELS get the preset's steps times (REFERENCE_PIXELS / pixels) ** STEP_EXPONENT,
#: so encode time grows with the frame's side rather than staying flat. At 512 px (four cxr/train images, two 512 px
#: crops and two resized to 512 px, 0.5 / 1 / 2 bpp, 2 threads, 2026-11-26): fast's 200 at 50 steps 4.7 s, at 100
#: steps 7.6 s and +0.24 dB on average, at 200 steps 13.5 s and +0.67 dB; balanced's 600 at 150 steps 10 s, at 300
#: steps 18 s and +0.28 dB (two of the images), at 600 steps 34 s. The exponent 1 before kept every size at a 256 px
#: frame's time, which left 512 px frames at a quarter of the steps
STEP_EXPONENT = 0.5
#: share of the preset's steps that a frame of any size gets (frames over 64 x 256^2 = 2048^2 pixels get more
#: steps than STEP_EXPONENT gives): a 2000 px 12-bit X-ray proxy (cxr/train) at 1 bpp, balanced, 2 threads, gave
#: 40.52 dB at 20 steps and 42.56 dB at 80 (53 and 136 s before c0216ed, 109 s after; JPEG 2000 44.37 dB)
MIN_STEP_SHARE = 1 / 8
#: smaller frames get up to this many times the preset's steps: measured on 64 px MR frames at 1 bpp (fast,
#: 2026-11-26), 400 steps lost 0.6-0.9 dB against 300 (the networks, a large share of a small file, drift further)
MAX_STEP_FACTOR = 1.5
#: latent requantisation factors 2**(c / COARSEN_STEPS), c = 0..MAX_COARSEN (bpp rate control's coarse knob)
COARSEN_STEPS, MAX_COARSEN = 16, 48
#: flag bit of the coarsening byte: the latents use table coding (:mod:`medinr.entropy.context`, format 1.3;
#: 1.2 streams have it clear)
TABLE_CODED = 0x80
#: flag bit of the coarsening byte: the parentless 2D levels are interpolated, and the latent section starts with
#: the rule's byte (:func:`medinr.entropy.context.choose_interpolation`, format 1.8)
INTERPOLATED = 0x40
#: wavelet latents start at floor(|c| / q + START_ROUNDING): a dead zone, as JPEG 2000's, which rounds small
#: coefficients to zero (prototype, 2026-11-27: 0.4 put CDF 9/7 with zeroth-order entropy at par with JPEG 2000 at
#: 0.25-0.5 bpp and 0.1-1.4 dB above it at 1-2 bpp, two cxr/train images)
START_ROUNDING = 0.4
#: synthesis width of ``grid-wavelet``: at ``fast`` on three 256 px cxr/train proxies (0.25 / 0.5 / 1 / 2 bpp, one
#: encode a point, random init) 4 beat 16 (which the plan narrows to 8 at 0.25 bpp) at 11 of 12 points, by 0.13 dB
#: on average (-0.01 to +0.63): a random init's network costs 6 bits a parameter, 16 % of a file at 0.25 bpp. An init
#: meta-learned for a 16-wide one (146 Reptile steps of two 100-step fits) did not pay: -0.34 to +0.22 dB (mean
#: -0.01) on two held-back cxr/train proxies at 0.25 / 0.5 / 2 bpp. One for this 4-wide network, learned at 0.05-0.6
#: bpp, is shipped (``grid-wavelet-cxr``, :mod:`medinr.meta.grid`)
WAVELET_HIDDEN = 4
#: a wavelet subband's step is at least its largest coefficient over this many (half the largest latent a stream
#: holds, leaving training room): at high rates one step for all would overflow the approximation, whose
#: coefficients grow 2x a level (the SIIM CR image of cxr/test at 1024 px and 2 bpp, ``balanced``: the approximation
#: reached MAX_ABS_LATENT and the file decoded at 31.4 dB). The coarser step costs the approximation's few samples
#: little (a 1/4**levels share of the error)
LATENT_HEADROOM = (MAX_ABS_LATENT + 1) // 2
#: a random init's context network reads magnitudes only where their extra parameters (13 a unit) cost at most this
#: share of the frame's budget: on train data they saved 1-4 % of the latent bits (cxr proxies, 8 units, networks
#: fitted to dead-zone quantised subbands), 9 % on an MR slice. On the 256 px mri-test bench (2026-11-27) they were
#: on everywhere, and 128 px slices lost 0.1-0.5 dB at 0.5 bpp and 1.1 dB at 0.25 bpp (0.6 kbit of parameters in
#: a 4 kbit file) while gaining 1.0-1.3 dB at 2 bpp; this rule keeps them off below about 16 kbit
MAGNITUDES_SHARE = 0.04
#: container minor version of files with wavelet latents, and of those whose context network reads magnitudes
WAVELET_MINOR, MAGNITUDES_MINOR = 6, 7
#: container minor version of grid files with a frame whose parentless levels are interpolated
INTERPOLATED_MINOR = 8
#: container minor version of grid files whose wavelet extends frames symmetrically (``cdf97-symmetric``)
SYMMETRIC_MINOR = 9
#: container minor version of ``grid-video`` files whose latents are spectra along time (``GridConfig.temporal``),
#: and of those that also carry frequency scales (``GridConfig.frequency_scales``)
TEMPORAL_MINOR, FREQUENCY_SCALES_MINOR = 11, 12
#: level-step slopes tried at the start (steps q * 2**(-alpha * s))
GAIN_SLOPES = (0.5, 0.75, 1.0, 1.25)
#: typical rate of the trained context model relative to the start pyramid's zeroth-order entropy. A compromise
#: between modalities (fast, 256 px train crops, 12 each, mean PSNR at 0.25 / 0.5 / 1 / 2 bpp against 0.85):
#: 0.95 gave +0.00 / +0.09 / -0.03 / +0.28 dB on cxr but +0.04 / +0.19 / -0.30 / -2.28 dB on cine and MR slices,
#: where a start too coarse for 2 bpp cannot be refined (the level steps stay the start's)
CONTEXT_SAVING = 0.85
#: multiplicative λ-steering gain per step (on the log of the rate or error ratio)
STEER_GAIN = 0.05
#: λ is steered only after this fraction of the steps (the context model must learn first)
STEER_FROM = 0.15
#: during the noise phase the target is measured (on rounded latents) only every this many steps
STEER_EVERY = 10
#: a PSNR target's training steers to this much less error than the goal (0.3 dB): the networks' quantisation and
#: the rounding after training lose some of it, and the final dead-zone search gives back the rest as bits. Without
#: it a 44 x 58 X-ray crop at 34 dB ended 0.4-0.6 dB short after 100-300 steps of either wavelet extension; with
#: it the periodic one reached it after 100 and 300 steps, the symmetric one after 300 (33.7 dB after 100)
PSNR_STEER_MARGIN = 10 ** (-0.3 / 10)
#: steering keeps λ within this factor of its start: reachable targets move it 0.5-2x (cxr crops at 0.1-1 bpp),
#: an unreachable one ran it 400x up, which made the networks' curvature, and their coded size, grow with it
STEER_RANGE = 16.0
#: a network tensor whose implied quantisation step exceeds this many times the curvature probe is probed again at
#: that step, at most PROBE_ROUNDS times (:meth:`_FrameFit.curvature`; a second round cost 1.5 s of a 512 px fast
#: encode for -0.08 dB mean on 128 px train crops without it)
PROBE_REACH, PROBE_ROUNDS = 4.0, 1
#: a frame of more pixels than this is probed for curvature on PROBE_TILES x PROBE_TILES windows that hold this many
#: pixels, spread evenly over it (the probes' distortion is a mean over pixels; on a 2000 px X-ray with an 8-wide
#: network the full-frame probes took 32 of 97 s)
PROBE_PIXELS, PROBE_TILES = 512 * 512, 4
#: the networks' learning rate is ``lr_net * min(1, LR_NET_KNEE_BPP / r)`` for a start pyramid of expected latent
#: rate r (bits per pixel): halving it at 2 bpp (fast, 300 steps) measured +0.02 to +0.68 dB on three 256 px and
#: +0.18 / +0.28 dB on two 512 px cxr/train crops and +0.19 / +1.75 dB on two MR train slices, but at 0.25-1 bpp
#: -1.2 to +0.43 dB (mean about 0; the synthesis must adapt more where the latents carry less)
LR_NET_KNEE_BPP = 1.0
#: steps and learning rate of the entropy model's refit to a wavelet frame's rounded latents (:meth:`_FrameFit.
#: refit_context`). 50 whole-frame steps after training, on 1024 px cxr/train proxies (``fast``), cut the model's
#: rate by 7-9 % at 0.06 bpp and 3 % at 0.25 bpp: +0.04 to +0.21 dB at the same file size (mean +0.10), for 3 s of
#: a 30 s encode. Refitting when straight-through training starts did as well (two proxies, 0.06 / 0.25 bpp, +0.03
#: to +0.22 dB) and leaves the last steps to steer the rate to the budget with the sharper model. Frames under
#: REFERENCE_PIXELS skip it: two 64 px MR train slices lost 0.49 / 0.59 dB at 1 bpp (a 4 kbit file). 25 steps at twice
#: the rate (0.6 s less of a 512 px encode; 2026-11-28, ``fast``) did as well on six 512 px cxr/train points at 0.3 /
#: 1 bpp (-0.013 to +0.002 dB) and two 1024 px ones at 0.06 bpp, but lost 0.08-0.25 dB at 2 bpp (three 512 px points)
CONTEXT_REFIT_STEPS, CONTEXT_REFIT_LR = 50, 1e-2
#: (low, high bpp, share): a bpp target's λ starts at ``share`` times the step's 2 ln 2 q²/12 at or below ``low`` bpp,
#: the full rule at or above ``high``, log-linear between (:func:`step_share`). At very low rates training ended
#: 15-22 % under the latent budget with the full rule (0.02 bpp on a 1024 px proxy: λ steered from 1.46 to 0.47 in
#: 150 steps without the latents following) and the final negative dead zone filled the rest. On 1024 px smoothed
#: cxr/train proxies (``fast``) 0.6 measured +0.22 / +0.40 dB at 0.02 bpp and +0.18 / +0.35 dB at 0.06; 0.79 at 0.12
#: about +0.05 at equal size; three 256 px train crops +0.06 to +0.55 dB at 0.06 and -0.05 to +0.04 at 0.12. At
#: 0.25 bpp 0.6 lost 0.04 / 0.24 dB (training overshot and the dead zone cut), hence the full rule from 0.2 up
LOW_RATE_STEP_SHARE = (0.08, 0.2, 0.6)
#: the networks' quantisation may raise the decoded error to this many times the unquantised networks' before
#: :meth:`_FrameFit.choose_payload` tries finer steps, an octave at a time, at most NET_RESCUE_STEPS times.
#: Normally it costs 0.5-1.3 % (512 px cxr/train proxies at 0.1-1 bpp, ``fast``), but a coarse step over a tensor
#: that the curvature probes found flat can break the network: the SIIM CR image of cxr/test (1024 px) at 0.0199
#: bpp, ``fast`` (one factor tried), decoded at 2.4x the error, 31.1 dB; an octave finer 1.29x, two octaves 1.10x
#: (34.4 dB with the three tried)
NET_LOSS_LIMIT, NET_RESCUE_STEPS = 1.1, 2
#: fractions of the steps at which a bpp target's latent budget is recalibrated from real coded sizes
#: (:meth:`_FrameFit.calibrate`)
CALIBRATE_AT = (0.4, 0.75)


def latent_scale(coarsen: int) -> float:
    """Factor by which a payload's latents were requantised coarser (its coarsening byte)."""
    return 2.0 ** (coarsen / COARSEN_STEPS)


def _assemble(network: bytes, coarsen: int, latents: tuple[int, bytes]) -> bytes:
    """Frame payload: network (step bytes, length, deltas) | coarsening byte (with the latents' flags) | latents;
    ``latents``: (flags, section) from :meth:`_FrameFit._code_latents`."""
    flags, section = latents
    return network + bytes([coarsen | flags]) + section


def _groups(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every tensor as one quantisation group, shape (1, numel), the layout :mod:`medinr.quant` expects."""
    return [p.detach().reshape(1, -1) for p in params]


def _model_from(config: GridConfig, params: list[torch.Tensor]) -> GridModel:
    return with_params(GridModel(config), params)


def _synthesize_decoded(model: GridModel, levels: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The decoder's synthesis, in float32: 3x faster than float64, and still independent of the thread count
    (elementwise operations, and products whose sums (at most 16 terms) no kernel splits across threads;
    tests/archs/test_grid.py checks it). Another instruction set may round a sum differently, which can move
    a decoded value by one stored unit; the entropy-decoded latents are exact everywhere."""
    with torch.no_grad():
        return model.synthesize([torch.from_numpy(z.astype(np.float32)) for z in levels], shape).numpy()


def _frame_sections(payload: bytes, tensors: int) -> tuple[int, int]:
    """Where a frame payload's network section starts (after its ``tensors`` step bytes and the section's length)
    and where its coarsening byte is (after that section)."""
    if len(payload) < tensors:
        raise BitstreamError("truncated grid frame payload (quantisation steps)")
    net_len, start = read_svarint(payload, tensors, "grid frame payload")
    if net_len < 0 or start + net_len > len(payload):
        raise BitstreamError("truncated grid frame payload (network section)")
    pos = start + net_len
    if pos >= len(payload) or payload[pos] & ~(TABLE_CODED | INTERPOLATED) > MAX_COARSEN:
        raise BitstreamError("truncated or corrupted grid frame payload (latent coarsening)")
    return start, pos


def _coarsening_at(payload: bytes, tensors: int) -> int:
    """Position of a frame payload's coarsening byte."""
    return _frame_sections(payload, tensors)[1]


def reconstruct(payload: bytes, config: GridConfig, init: Init, norm: Normalisation, dtype: np.dtype,
                shape: tuple[int, int], base: np.ndarray | None = None) -> np.ndarray:
    """The decoder's path for one frame: payload -> network and latents -> stored values. ``base``: a float32
    prediction in normalised units that the synthesis output is added to (motion-compensated residual coding)."""
    n = len(init.params)
    start, pos = _frame_sections(payload, n)
    idx = [np.frombuffer(payload[i:i + 1], dtype=np.uint8) for i in range(n)]
    symbols = decode_tensors(payload[start:pos], [p.numel() for p in init.params])
    model = _model_from(config, dequantize(symbols, _groups(list(init.params)), idx))
    with torch.no_grad():
        model.gain.mul_(latent_scale(payload[pos] & ~(TABLE_CODED | INTERPOLATED)))
    shapes = config.level_shapes(*shape)
    offsets, used = read_slice_offsets(payload[pos + 1:], config.frequency_counts(shapes))
    levels = decode_levels(payload[pos + 1 + used:], shapes, with_slice_scales(model.exact_predictor(), offsets),
                           tables=bool(payload[pos] & TABLE_CODED), parents=config.parents(),
                           interpolated=bool(payload[pos] & INTERPOLATED))
    synthesis = _synthesize_decoded(model, levels, shape)
    return norm.inverse(synthesis if base is None else synthesis + base, dtype)


def pyramid_latents(target: torch.Tensor, shapes: list[tuple[int, ...]], gains: torch.Tensor,
                    mode: str, analysis: AnalysisNet | None = None,
                    quantise: Callable[[torch.Tensor], torch.Tensor] = torch.round,
                    statics: list[int | None] | None = None) -> list[torch.Tensor]:
    """Closed-loop quantised Laplacian pyramid of a frame or a (T, H, W) sequence: coarse to fine, each level
    codes the residual left so far (its average in step units, refined by the 2D ``analysis`` network when
    given). ``quantise``: rounding, or a differentiable stand-in when the analysis network is trained.

    ``statics`` (a sequence with static grids, :meth:`GridConfig.statics`): per pyramid level, the static grid at
    its scale or None. That grid takes the level's residual averaged over time, and the level what is left of it
    on its own grid, so a part that does not move ends up in the static grid alone."""
    residual = target
    latents: list[torch.Tensor] = [torch.zeros(0)] * len(shapes)
    pool = F.adaptive_avg_pool3d if target.dim() == 3 else F.adaptive_avg_pool2d
    statics = statics or [None] * len(shapes)
    for s in reversed(range(len(statics))):
        down = pool(residual[None, None], shapes[s])[0, 0] / gains[s]
        coded = [s]
        if statics[s] is not None:
            still = statics[s]
            latents[still] = quantise(down.mean(0, keepdim=True)).clamp(-MAX_ABS_LATENT, MAX_ABS_LATENT)
            down = down - latents[still] * gains[still] / gains[s]
            coded.append(still)
        latents[s] = quantise(down if analysis is None else analysis(down, s)).clamp(-MAX_ABS_LATENT, MAX_ABS_LATENT)
        residual = residual - upsample([latents[i] * gains[i] for i in coded], target.shape, mode).sum(0)
    return latents


def _entropy_bits(latents: list[torch.Tensor]) -> float:
    """Zeroth-order empirical entropy of latents rounded to integers, per level, in bits."""
    total = 0.0
    for z in latents:
        values = torch.round(z.detach()).reshape(-1).long()
        counts = torch.bincount(values - values.min()).double()
        counts = counts[counts > 0]
        total -= float((counts * torch.log2(counts / counts.sum())).sum())
    return total


def _search_log(f, goal: float, lo: float, hi: float, iters: int = 8) -> float:
    """x in [lo, hi] (log-bisection) with f(x) closest to goal, for f decreasing in x. Eight halvings of
    [1e-4, 1e2] pin x to 5 %: enough for a start point whose λ training steers anyway."""
    a, b = math.log(lo), math.log(hi)
    for _ in range(iters):
        mid = 0.5 * (a + b)
        a, b = (mid, b) if f(math.exp(mid)) > goal else (a, mid)
    return math.exp(0.5 * (a + b))


def step_share(target: RateTarget) -> float:
    """The share of the step's high-rate λ a wavelet start takes for ``target`` (:data:`LOW_RATE_STEP_SHARE`)."""
    low, high, share = LOW_RATE_STEP_SHARE
    if target.mode != "bpp" or not target.value or target.value >= high:
        return 1.0
    return share ** (1 - max(0.0, math.log(target.value / low)) / math.log(high / low))


def steps_for(steps: int, pixels: int) -> int:
    """Training steps for a frame: ``steps`` is the count for 256x256; a step's cost grows with the pixels, so
    larger frames get fewer (in proportion to the square root of their pixel share, STEP_EXPONENT) down to
    MIN_STEP_SHARE of ``steps`` or MIN_STEPS, whichever is more; smaller ones more (in proportion to their pixel
    share) up to MAX_STEP_FACTOR times."""
    fewest = max(min(MIN_STEPS, steps), round(MIN_STEP_SHARE * steps))
    share = REFERENCE_PIXELS / pixels
    factor = share if share >= 1 else share**STEP_EXPONENT
    return int(min(MAX_STEP_FACTOR * steps, max(fewest, round(steps * factor))))


def strided_frames(step: int, frames: int, stride: int) -> torch.Tensor | None:
    """Every ``stride``-th of ``frames``, from an offset cycling with ``step``, so a cycle of steps sees each frame
    once; None (all frames) for a stride of 1."""
    if stride <= 1:
        return None
    return torch.arange(step % min(stride, frames), frames, stride)


#: synthesis inputs of regions covering probe windows (:meth:`_FrameFit._probe_regions`): per region (inputs, where
#: the region lies in their synthesis, its (top, bottom, left, right) windows, its left column)
ProbeRegions = list[tuple[torch.Tensor, tuple[slice, slice], list[tuple[int, int, int, int]], int]]


def probe_windows(height: int, width: int) -> list[tuple[int, int, int, int]] | None:
    """(top, bottom, left, right) of the curvature probes' windows in a frame of more than PROBE_PIXELS pixels:
    PROBE_TILES x PROBE_TILES squares, together PROBE_PIXELS, centred in an even grid of cells; None (the whole
    frame) for a smaller one."""
    if height * width <= PROBE_PIXELS:
        return None
    side = min(height // PROBE_TILES, width // PROBE_TILES, math.isqrt(PROBE_PIXELS) // PROBE_TILES)

    def starts(n: int) -> list[int]:
        return [(2 * i + 1) * n // (2 * PROBE_TILES) - side // 2 for i in range(PROBE_TILES)]

    return [(y, y + side, x, x + side) for y in starts(height) for x in starts(width)]


def soft_round(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """A differentiable rounding (Agustsson and Theis 2020): the identity as ``temperature`` grows, rounding as it
    goes to 0."""
    alpha = 1.0 / temperature
    floor = torch.floor(z).detach()
    r = z - floor - 0.5
    return floor + 0.5 + torch.tanh(alpha * r) / (2 * math.tanh(alpha / 2))


def training_bands(rows: int, band_rows: int) -> list[tuple[int, int]] | None:
    """(top, bottom) rows of the horizontal bands that a frame's training steps take turns on: about ``band_rows``
    each, covering the frame; None (whole-frame steps) for fewer than two (``GridOptions.band_rows``)."""
    count = round(rows / band_rows) if band_rows > 0 else 1
    if count < 2:
        return None
    edges = [round(i * rows / count) for i in range(count + 1)]
    return list(itertools.pairwise(edges))


def noisy_steps(steps: int, opts: GridOptions) -> int:
    """How many of ``steps`` train with noise on the latents: ``noise_fraction`` of them, and all but at most
    ``straight_through_steps`` (the straight-through phase helps briefly, then raises the rounded loss)."""
    return max(int(opts.noise_fraction * steps), steps - opts.straight_through_steps)


class _Adam:
    """Plain Adam over groups of (tensors, learning rate); ``torch.optim`` would import torch._dynamo on
    first use, which takes seconds of a 15 s encode budget."""

    def __init__(self, groups: list[tuple[list[torch.Tensor], float]], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.groups = groups
        self.betas, self.eps, self.t = betas, eps, 0
        self.moments = [[(torch.zeros_like(p), torch.zeros_like(p)) for p in params] for params, _ in groups]

    @torch.no_grad()
    def step(self, lr_scale: float) -> None:
        """One update from the accumulated gradients (which it then clears)."""
        self.t += 1
        b1, b2 = self.betas
        for (params, lr), moments in zip(self.groups, self.moments):
            size = lr * lr_scale * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
            for p, (m, v) in zip(params, moments):
                if p.grad is None:
                    continue
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(m, v.sqrt().add_(self.eps), value=-size)
                p.grad = None


class _FrameFit:
    """One frame's model, latents and target, with the training loop and the exact coding.

    ``base``: a float32 prediction in normalised units (see :func:`reconstruct`); the network then fits
    ``target`` = frame - base, the residual, from a pyramid of it."""

    def __init__(self, frame: np.ndarray, norm: Normalisation, config: GridConfig, init: Init,
                 opts: GridOptions, base: np.ndarray | None = None) -> None:
        self.frame, self.norm, self.config, self.init, self.opts = frame, norm, config, init, opts
        self.base = base
        self.target = torch.from_numpy(norm.forward(frame) if base is None else norm.forward(frame) - base)
        self.shape = frame.shape
        self.pixels = frame.size
        self.shapes = config.level_shapes(*self.shape)
        self.model = _model_from(config, list(init.params))
        self.peak = (norm.value_max - norm.value_min) / norm.std or 1.0
        self.latents: list[torch.Tensor] = []
        self.lam = opts.lam
        self.start_bpp = 0.0  # the start pyramid's expected latent rate (:meth:`start`)
        self.mse_goal = 0.0

    def _gains(self, q: float, alpha: float = 1.0) -> torch.Tensor:
        return q * 2.0 ** (-alpha * torch.tensor(self.config.grid_scales(), dtype=torch.float32))

    def _pyramid_latents(self, gains: torch.Tensor, analysis: AnalysisNet | None = None) -> list[torch.Tensor]:
        """:func:`pyramid_latents` of this frame's target with its config's shapes, upsampling and static grids."""
        return pyramid_latents(self.target, self.shapes, gains, self.config.upsampling, analysis,
                               statics=self.config.statics())

    def _pyramid(self, gains: torch.Tensor) -> tuple[list[torch.Tensor], float, float]:
        """The closed-loop pyramid at these gains, its zeroth-order entropy (bits) and its MSE."""
        latents = self._pyramid_latents(gains)
        rec = upsample([z * g for z, g in zip(latents, gains)], self.shape, self.config.upsampling).sum(0)
        # the bits of what is coded: a temporal config's spectra (the frames' entropy set the start's step too fine
        # for a bpp target: on three cine/train sequences at 0.05 / 0.2 / 1 bpp, ``balanced``, this measured +0.42 to
        # +0.56 dB at 0.05 bpp and -0.33 to +0.27 dB at the others, +0.16 dB on average)
        coded = [self.config.coded_from_frames(z) for z in latents]
        return latents, _entropy_bits(coded), float((rec - self.target).pow(2).mean())

    def start(self, target: RateTarget, latent_bits: float | None, analysis: AnalysisNet | None = None) -> None:
        """Pick the level steps ``q * 2**(-alpha * s)`` and λ for the target; set gains and latents to that pyramid
        (through the ``analysis`` network when given; the search uses the plain pyramid).

        With a target, each alpha in GAIN_SLOPES gets the q meeting the target (bits, or error), and the
        one with the least error (or bits) wins: the equal-slope alpha = 1 holds at high rate only.
        """
        if self.config.wavelet:
            self._wavelet_start(target, latent_bits)
            return
        if target.mode == "quality":
            gains = self._gains(math.sqrt(6 * self.lam / math.log(2)))
            pyramid = self._pyramid(gains)
        else:
            if target.mode == "bpp":  # meet the bits (decreasing in q), minimise the error
                goal, met, cost = (latent_bits or 0.0) / CONTEXT_SAVING, (lambda r: r[1]), (lambda r: r[2])
            else:  # meet the error (increasing in q), minimise the bits
                self.mse_goal = self.peak**2 * 10 ** (-(target.value or 0) / 10)
                goal, met, cost = -self.mse_goal, (lambda r: -r[2]), (lambda r: r[1])
            candidates = [self._gains(_search_log(lambda q: met(self._pyramid(self._gains(q, a))), goal, 1e-4, 1e2), a)
                          for a in GAIN_SLOPES]
            gains, pyramid = min(((g, self._pyramid(g)) for g in candidates), key=lambda c: cost(c[1]))
            self.lam = 2 * math.log(2) * pyramid[2]
        self.start_bpp = CONTEXT_SAVING * pyramid[1] / self.pixels
        # a temporal config's latents are the pyramid's spectra: the start's point, not rounded
        latents = [self.config.coded_from_frames(z) for z in self._pyramid_latents(gains, analysis)]
        with torch.no_grad():
            self.model.gain.copy_(gains)
            self.model.level_bias[:, 1].copy_(torch.tensor([math.log2(max(float(z.abs().mean()), 2**-4))
                                                            for z in latents]))
        # a frequency's scale (a temporal config's) starts at its latents' mean magnitude over the level's
        counts = self.config.frequency_counts(self.shapes)
        self.model.slice_bias = [None if not count else
                                 (torch.log2(z.reshape(count, -1).abs().mean(1).clamp_min(2**-4))
                                  - self.model.level_bias[s, 1].detach()).requires_grad_(True)
                                 for s, (z, count) in enumerate(zip(latents, counts))]
        self.latents = [z.requires_grad_(True) for z in latents]
        self.lam_start = self.lam

    def _wavelet_start(self, target: RateTarget, latent_bits: float | None) -> None:
        """:meth:`start` for wavelet latents: the frame's CDF 9/7 coefficients over one step ``q`` for every
        subband (the transform is near orthonormal; a coarser one where the subband would exceed LATENT_HEADROOM
        steps), ``q`` chosen so that their dead-zone quantisation (:data:`START_ROUNDING`) meets the target as the
        pyramid's does. The latents start at the unrounded coefficients; the per-subband scales of the entropy model
        from the quantised ones.

        λ starts at the step's high-rate slope 2 ln 2 q²/12 (a quality target's relation between λ and q; below 0.2
        bpp a share of it, :func:`step_share`), or at 2 ln 2 D of the start's error D where that is larger. Below
        about 0.5 bpp the dead zone zeroes most subbands and D falls well under q²/12, so λ = 2 ln 2 D started up to
        13x too low, and steering (at most STEER_RANGE) could not bring a large frame's rate down in its steps:
        training ended 5-50 % over the budget and the final dead zone or coarsening cut the rest. On 1024 px
        cxr/train proxies (``fast``, 0.06 / 0.25 / 1 bpp), two smoothed like genuine X-rays: +0.58 / +1.20 / +0.00
        and +0.21 / +0.48 / +0.00 dB; a 12-bit crop and a resized image +0.04 / -0.03 / +0.02 and +0.09 / -0.04 /
        +0.00 dB. 256-512 px crops at 0.25 / 0.5 / 2 bpp: -0.10 to +0.72 dB (mean +0.07)."""
        approx, details = wavelet_analysis(pad_frame(self.target.numpy(), self.config.levels), self.config.levels,
                                           self.config.symmetric)
        bands = [torch.from_numpy(band.astype(np.float32)) for level in reversed(details) for band in level]
        bands.append(torch.from_numpy(approx.astype(np.float32)))

        peaks = [float(b.abs().max()) / LATENT_HEADROOM for b in bands]

        def steps(q: float) -> list[float]:
            return [max(q, peak) for peak in peaks]

        def quantised(q: float) -> list[torch.Tensor]:
            *details, approx = steps(q)
            out = [torch.sign(b) * torch.floor(b.abs() / s + START_ROUNDING) for b, s in zip(bands, details)]
            return [*out, torch.round(bands[-1] / approx)]

        def point(q: float) -> tuple[list[torch.Tensor], float, float]:
            ints = quantised(q)
            with torch.no_grad():
                self.model.gain.copy_(torch.tensor(steps(q)))
                rec = self.model.scale_parts(ints, self.shape).sum(0)
            return ints, _entropy_bits(ints), float((rec - self.target).pow(2).mean())

        if target.mode == "quality":
            q = math.sqrt(6 * self.lam / math.log(2))
        elif target.mode == "bpp":
            q = _search_log(lambda q: point(q)[1], (latent_bits or 0.0) / CONTEXT_SAVING, 1e-4, 1e2, 12)
        else:
            self.mse_goal = self.peak**2 * 10 ** (-(target.value or 0) / 10)
            q = _search_log(lambda q: -point(q)[2], -self.mse_goal, 1e-4, 1e2, 12)
        ints, bits, mse = point(q)
        if target.mode != "quality":  # the step's λ (a share of it at low bpp), or the start error's if larger
            self.lam = 2 * math.log(2) * max(mse, step_share(target) * q * q / 12)
        self.start_bpp = CONTEXT_SAVING * bits / self.pixels
        with torch.no_grad():
            self.model.level_bias[:, 1].copy_(torch.tensor([math.log2(max(float(z.abs().mean()), 2**-4))
                                                            for z in ints]))
        self.latents = [(b / step).requires_grad_(True) for b, step in zip(bands, steps(q))]
        self.lam_start = self.lam

    def loss(self, latents: list[torch.Tensor], frames: torch.Tensor | None = None,
             contexts: list[torch.Tensor] | None = None,
             synth: list[torch.Tensor] | None = None,
             window: tuple[int, int, int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """D + λR (+ the temporal-consistency term of a (T, H, W) fit), its D (MSE) and its R (bpp). ``frames``: D
        and the full-resolution levels' R on only these frames of a sequence (unbiased estimates; a temporal
        config's R on all its frequencies, :meth:`GridModel.rate_bits`); ``contexts``: R under these entropy
        parameters (:meth:`GridModel.rate_contexts`); ``synth``: the synthesis' latents when they differ from the
        rate's (soft rounding); ``window`` (top, bottom, left, right): D on only those pixels of a
        frame (an unbiased estimate when windows take turns over the frame, :func:`training_bands`)."""
        rec = self.model.synthesize(latents if synth is None else synth, self.shape, frames, window)
        target = self.target if frames is None else self.target[frames]
        if window is not None:
            target = target[window[0]:window[1], window[2]:window[3]]
        mse = (rec - target).pow(2).mean()
        rows = self._latent_rows(window)
        share = 1.0 if rows is None else (window[1] - window[0]) / self.shape[0]
        bpp = self.model.rate_bits(latents, contexts, frames, rows) / (self.pixels * share)
        loss = mse + self.lam * bpp
        if self.opts.temporal_weight and rec.dim() == 3:
            loss = loss + self.opts.temporal_weight * temporal_consistency_loss(rec, self.target)
        return loss, mse, bpp

    def refit_context(self) -> None:
        """Fit the entropy model alone (context network and level biases) to the rounded latents, for
        CONTEXT_REFIT_STEPS steps of the rate, when training turns from noise to straight-through rounding: the noise
        phase fits it to noisy latents, which leaves it broader than the rounded ones need, and the straight-through
        steps then train latents and networks against the sharper model. A banded frame's steps take turns on its
        bands' rows."""
        rounded = self._rounded()
        opt = _Adam([(self.model.entropy_parameters(), CONTEXT_REFIT_LR)])
        bands = training_bands(self.shape[0], self.opts.band_rows) or [(0, self.shape[0])]
        for step in range(CONTEXT_REFIT_STEPS):
            top, bottom = bands[step % len(bands)]
            self.model.rate_bits(rounded, rows=self._latent_rows((top, bottom, 0, self.shape[1]))).backward()
            opt.step(1.0)

    def _latent_rows(self, window: tuple[int, int, int, int] | None) -> list[tuple[int, int]] | None:
        """Per latent level, the rows whose rate a training step on ``window`` (a band of whole rows) counts: the
        band's share of the level's rows, so the bands' shares partition every level (None: all, without a band, or
        when contexts are reused across steps). A step then pays the context network for its band's latents alone,
        on a 2000 px frame a quarter of them, and every latent gets its rate and error gradients in the same steps
        (both scaled to the whole frame: unbiased estimates)."""
        if window is None or self.opts.context_every != 1:
            return None
        top, bottom = window[:2]
        return [(round(top * z.shape[0] / self.shape[0]), round(bottom * z.shape[0] / self.shape[0]))
                for z in self.latents]

    def train(self, target: RateTarget, latent_bits: float | None, progress,
              frame_budget: float | None = None) -> None:
        """Noise then straight-through training; λ steered towards the rate or error target. With a
        ``frame_budget`` (bytes), the latents' share of it is recalibrated at CALIBRATE_AT from real sizes.

        The rate term codes the noisy (or rounded) latents under Laplace parameters that the context network reads
        off the rounded latents, the decoder's inputs. Read off the noisy ones (until 2026-11-28), its training rate
        fell while the rounded latents' rose, which λ steering chased to its cap: a 512 px cxr/train proxy at 0.3
        bpp, ``balanced``, ended with 98.5 % zero latents at 0.17 bpp and 30.8 dB (34.4 dB at 0.30 bpp now; on three
        more 512 px points ``balanced`` +0.05 to +0.15 dB, ``fast`` on six -0.02 to +0.04 dB).

        A ``frame_budget`` under ``GridOptions.net_min_bytes`` and ``net_min_bpp``, or an ``lr_net`` of 0 (``grid-mc``'s
        inter frames), trains the latents alone (the networks stay where they start, the context network is not
        refitted, and its Laplace parameters are constants of each step)."""
        opts = self.opts
        # the gains (dequantisation steps) are trained in the log domain only (``gain_lr``): Adam's scale-free steps
        # would swamp them; each step's log change is folded into the gains
        nets = [p for name, p in self.model.named_parameters() if name != "gain"]
        nets += [bias for bias in self.model.slice_bias or [] if bias is not None]
        gain, log_gain = self.model.gain, torch.zeros_like(self.model.gain)
        frozen = opts.lr_net == 0 or (frame_budget is not None and frame_budget < opts.net_min_bytes
                                      and 8 * frame_budget / self.pixels < opts.net_min_bpp)
        lr_net = 0.0 if frozen else opts.lr_net * min(1.0, LR_NET_KNEE_BPP / max(self.start_bpp, 1e-9))
        bands = training_bands(self.shape[0], opts.band_rows) if len(self.shape) == 2 else None
        # a latent sees the error in one step of len(bands): its learning rate grows with the square root of that
        groups = [(self.latents, opts.lr_latent * math.sqrt(len(bands) if bands else 1)), (nets, lr_net)]
        opt = _Adam(groups + [([log_gain], opts.gain_lr)] if opts.gain_lr else groups)
        # a (T, H, W) sequence gets a frame's steps (measured on cine: 60 instead of 300 steps lost 1.3-2.2 dB)
        steps = steps_for(opts.steps, self.shape[-2] * self.shape[-1])
        noise_steps = noisy_steps(steps, opts)
        # which levels train with soft rounding: all of a small frame's or a long fit's, else the coarser ones
        fine = (self.shape[-2] * self.shape[-1] <= opts.soft_round_fine_max_pixels
                or steps >= opts.soft_round_fine_min_steps)
        soft = [bool(opts.soft_round) and (fine or z.shape[-2:] != self.shape[-2:]) for z in self.latents]
        calibrate_at = {int(f * steps) for f in CALIBRATE_AT} if target.mode == "bpp" and frame_budget else set()
        curvature = None  # measured at the first calibration, reused at the next (0.6-0.7 s on a 512 px frame)
        gen = torch.Generator().manual_seed(0)
        cycle: list[int] = []  # the bands still to visit in this cycle (a shuffled order per cycle)
        for step in range(steps):
            if bands and not cycle:
                cycle = torch.randperm(len(bands), generator=gen).tolist()
            window = (*bands[cycle.pop()], 0, self.shape[1]) if bands else None
            if step in calibrate_at:
                curvature = curvature or self.curvature(self._network_log2_step())
                latent_bits = self.calibrate(frame_budget or 0.0, curvature)
            noisy = step < noise_steps
            if step == noise_steps and self.config.wavelet and self.pixels >= REFERENCE_PIXELS and not frozen:
                self.refit_context()
            synth = None
            if noisy:
                start, end = opts.soft_round if any(soft) else (0.0, 0.0)
                t = start + (end - start) * step / noise_steps  # soft rounding's temperature (unused without it)
                hat = [(soft_round(z, t) if on else z) + torch.rand(z.shape, generator=gen) - 0.5
                       for z, on in zip(self.latents, soft)]
                synth = [soft_round(z, t) if on else z for z, on in zip(hat, soft)] if any(soft) else None
            else:
                hat = [z + (torch.round(z) - z).detach() for z in self.latents]
            rows = self._latent_rows(window)
            if step % opts.context_every == 0:  # from the rounded latents, as the decoder reads them (see below)
                with torch.set_grad_enabled(not frozen):
                    contexts = self.model.rate_contexts(self._rounded(), rows)
            loss, mse, bpp = self.loss(hat, self._frames_at(step), contexts, synth, window)
            loss.backward()
            contexts = [c.detach() for c in contexts]
            log_gain.grad, gain.grad = gain.grad * gain.detach(), None
            opt.step(0.5 * (1 + math.cos(math.pi * step / steps)))  # cosine schedule
            if opts.gain_lr:
                with torch.no_grad():
                    gain.mul_(log_gain.exp())
                    log_gain.zero_()
            if target.mode == "quality" or step < STEER_FROM * steps:
                pass
            elif not noisy and (window is None or (target.mode == "bpp" and rows is None)):
                # this step's rate (and, on a whole frame, its error) are already those of the rounded latents
                self._steer(target, latent_bits, float(mse.detach()), float(bpp.detach()), STEER_GAIN)
            elif step % STEER_EVERY == 0:  # a band's rate estimates the frame's too noisily to steer by
                self._steer(target, latent_bits, *self._rounded_point(target), STEER_GAIN * STEER_EVERY)
            if progress:
                progress(step + 1, steps)

    def _rounded(self) -> list[torch.Tensor]:
        """The latents rounded to integers (detached): what the decoder's context network reads."""
        return [torch.round(z.detach()) for z in self.latents]

    def _rounded_point(self, target: RateTarget) -> tuple[float, float]:
        """(MSE, bpp) of the whole frame's rounded latents, to steer by; for a bpp target the rate alone (MSE NaN,
        unused: no synthesis)."""
        with torch.no_grad():
            rounded = self._rounded()
            if target.mode == "bpp":  # divided as :meth:`loss` divides (in the tensor's precision): the same λ
                return math.nan, float(self.model.rate_bits(rounded) / self.pixels)
            _, mse, bpp = self.loss(rounded)
        return float(mse), float(bpp)

    def _frames_at(self, step: int) -> torch.Tensor | None:
        """A training step's frames (:func:`strided_frames`); None (all) for a single frame or with a
        temporal-consistency term, which needs neighbouring frames."""
        if len(self.shape) < 3 or self.opts.temporal_weight:
            return None
        return strided_frames(step, self.shape[0], self.opts.frame_stride)

    def calibrate(self, frame_budget: float, curvature: list[np.ndarray]) -> float:
        """Training-rate bits the latents may take so that the real payload fits ``frame_budget`` bytes.

        The real payload at this point (network coded at the current λ's step, latents through the exact
        coder) replaces two estimates: the network's bits per parameter (a learned init's deltas measured
        2.8-3.5 bits per parameter on 256 px cxr crops, not the 0.5 assumed) and the training rate, which
        underestimates the exact coder's (quantised context network) by up to 7 % after 600 steps. Without
        it, the final dead zone had to cut up to 17 % of the latent bits (2.8 dB lost on a cxr crop at 0.5 bpp)."""
        latents = self.integer_latents()
        head, model = self.network(self._network_log2_step(), curvature)
        coded = self._code_latents(latents, model)
        # training goes on from the frequency scales that the coder chose (exact for these latents)
        offsets, _ = read_slice_offsets(coded[1], self.config.frequency_counts(self.shapes))
        with torch.no_grad():
            for bias, chosen in zip(self.model.slice_bias or [], offsets):
                if bias is not None:
                    bias.copy_(torch.from_numpy(chosen * (SLICE_OFFSET_STEP / SCALE_STEPS)))
            estimate = float(self.model.rate_bits([torch.from_numpy(z.astype(np.float32)) for z in latents]))
        overhead = len(_assemble(head, 0, coded)) - len(coded[1])
        return max(8.0 * (frame_budget - overhead), 8.0) * estimate / max(8.0 * len(coded[1]), 1.0)

    def _code_latents(self, latents: list[np.ndarray], model: GridModel) -> tuple[int, bytes]:
        """Integer latents through ``model``'s exact context coder (its answers for them computed up front), each
        grid with its config's parent, a 2D frame's parentless levels interpolated where that codes them in fewer
        bits, and a sequence's frequency scales chosen for them (:func:`choose_slice_offsets`; 0.1 s for 20 frames of
        256 px): (coarsening byte flags, section)."""
        parents = self.config.parents()
        predict = model.exact_predictor(latents)
        offsets = choose_slice_offsets(latents, predict, self.config.frequency_counts(self.shapes), parents)
        predict = with_slice_scales(predict, offsets)
        rule = choose_interpolation(latents, predict, parents) if self.config.dims == 2 else None
        return (TABLE_CODED | (INTERPOLATED if rule else 0),
                write_slice_offsets(offsets) + encode_levels(latents, predict, parents, rule))

    def _network_log2_step(self) -> float:
        """log2 of the networks' global quantisation factor at the current λ (the high-rate D + λR optimum)."""
        return 0.5 * math.log2(12 * self.lam / (self.pixels * math.log(2)))

    def _steer(self, target: RateTarget, latent_bits: float | None, mse: float, bpp: float, gain: float) -> None:
        """Multiply λ towards the target rate or error (measured on rounded latents)."""
        ratio = bpp * self.pixels / (latent_bits or 1.0) if target.mode == "bpp" else \
            PSNR_STEER_MARGIN * self.mse_goal / mse
        self.lam = min(max(self.lam * math.exp(gain * math.log(ratio)), self.lam_start / STEER_RANGE),
                       self.lam_start * STEER_RANGE)

    def integer_latents(self, deadzone: float = 0.0, coarsen: int = 0) -> list[np.ndarray]:
        """Latents rounded to integers, magnitudes below ``0.5 + deadzone`` going to zero (RDO-style).

        Coarsened (``latent_scale(coarsen)`` times larger steps) in closed loop, coarse to fine as the start's
        pyramid: each level also takes the error that the coarser levels' requantisation left, pooled to its
        grid, so the finest level corrects most of what is lost above it. Measured on a 12-bit cxr proxy (256 px,
        4 bpp target, where training overshot and the latents were coarsened by 7-10 sixteenths of an octave):
        45.9 -> 47.9 dB (cxr init) and 45.8 -> 47.2 dB (random init) against dividing each level alone."""
        scale = latent_scale(coarsen)
        gains = self.model.gain.detach()
        pool = F.adaptive_avg_pool3d if len(self.shape) == 3 else F.adaptive_avg_pool2d
        error = torch.zeros(self.shape)  # what the requantised coarser levels miss, in normalised intensity
        out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(self.latents)
        order = self.config.coarse_to_fine()
        closed_loop = coarsen and not self.config.wavelet  # subbands of a near orthonormal transform: independent
        for s in order:
            z = self.latents[s].detach()
            if closed_loop:
                z = z + self.config.coded_from_frames(pool(error[None, None], self.shapes[s])[0, 0] / gains[s])
            z = z / scale
            q = (torch.sign(z) * torch.floor((z.abs() + 0.5 - deadzone).clamp_min(0))).clamp(-MAX_ABS_LATENT,
                                                                                             MAX_ABS_LATENT)
            if closed_loop and s != order[-1]:
                lost = self.config.frames_from_coded(self.latents[s].detach() - q * scale)
                error = error + upsample([lost * gains[s]], self.shape, self.config.upsampling)[0]
            out[s] = q.numpy().astype(np.int64)
        return out

    def curvature(self, log2_factor: float) -> list[np.ndarray]:
        """Mean second derivative of the loss per network tensor, by antithetic random perturbation (of the
        distortion for synthesis tensors, of the rate for context tensors).

        The probe is small (1 % of the tensor's RMS). Where the step it implies at ``log2_factor`` (see
        :func:`medinr.quant.step_indices`) is over PROBE_REACH times the probe, the tensor is probed again along
        the quantisation error at that step (rounding its delta from the init), up to PROBE_ROUNDS times, keeping
        the larger curvature: a tensor that looks flat to a small probe can still break under a coarse step.
        Measured on a 12-bit cxr crop at high rate (λ = 5e-4, random init): hidden ReLU units off at every pixel
        measured flat, got steps larger than their biases, and came back on in the decoder (47.5 dB before
        quantisation, 31.6 after). Probing with noise of the step's size instead overstated the error of tensors
        whose deltas are smaller than the step (their error is the delta), which cost network bytes at low rates."""
        hat = [torch.from_numpy(z.astype(np.float32)) for z in self.integer_latents()]
        rate_params = {id(p) for p in self.model.entropy_parameters()}
        frames = self._frames_at(0)  # a sequence trained on strided frames is probed on them too
        target = self.target if frames is None else self.target[frames]

        def rate() -> float:
            return self.lam * float(self.model.rate_bits(hat)) / self.pixels

        windows = probe_windows(*self.shape) if len(self.shape) == 2 else None
        area = sum((w[1] - w[0]) * (w[3] - w[2]) for w in windows or [])

        def synthesis_inputs() -> torch.Tensor | ProbeRegions:
            """What the error is measured from: the whole frame's synthesis inputs, or the probe windows' regions."""
            if windows is None:
                return self.model.synthesis_inputs(hat, self.shape, frames)
            return self._probe_regions(hat, windows)

        def error_from(inputs: torch.Tensor | ProbeRegions) -> float:
            """Mean squared error of the synthesis from :func:`synthesis_inputs`' value: over the whole frame, or
            over the probe windows (summed window by window, in order)."""
            if isinstance(inputs, torch.Tensor):
                return float((self.model.from_inputs(inputs) - target).pow(2).mean())
            errors = []
            for region, crop, group, left in inputs:
                band = self.model.from_inputs(region)[crop]
                errors += [float((band[:, w[2] - left:w[3] - left] - target[w[0]:w[1], w[2]:w[3]]).pow(2).sum())
                           for w in group]
            return sum(errors) / area

        def distortion() -> float:
            return error_from(synthesis_inputs())

        def network_distortion() -> float:
            """:func:`distortion` for a perturbed tensor other than the gains, which do not enter the synthesis
            inputs: from those computed once (the same values; about half a 512 px synthesis is its wavelet scale
            parts)."""
            return error_from(unperturbed)

        gen = torch.Generator().manual_seed(1)
        out = []
        with torch.no_grad():
            unperturbed = synthesis_inputs()
            base = {rate: rate(), distortion: error_from(unperturbed)}
            base[network_distortion] = base[distortion]

            def probe(p: torch.Tensor, term: Callable[[], float], delta: torch.Tensor) -> float:
                total, saved = 0.0, p.clone()
                for sign in (1, -1):
                    p.add_(sign * delta)
                    total += term() - base[term]
                    p.copy_(saved)  # exactly: adding and subtracting delta can move p by an ulp
                return max(total / max(float(delta.pow(2).sum()), 1e-30), 1e-12)

            for p, p0 in zip(self.model.parameters(), self.init.params):
                term = rate if id(p) in rate_params else distortion if p is self.model.gain else network_distortion
                amplitude = 1e-2 * float(p.pow(2).mean().sqrt()) + 1e-4
                curvature = probe(p, term, (torch.rand(p.shape, generator=gen) - 0.5) * amplitude)
                for _ in range(PROBE_ROUNDS):
                    step = 2.0 ** (log2_factor - 0.5 * math.log2(curvature))
                    origin = p0.reshape(p.shape)
                    error = origin + step * torch.round((p - origin) / step) - p
                    if step <= PROBE_REACH * amplitude or not bool(error.any()):
                        break
                    curvature = max(curvature, probe(p, term, error))
                out.append(np.array([curvature]))
        return out

    def _probe_regions(self, latents: list[torch.Tensor], windows: list[tuple[int, int, int, int]]) -> ProbeRegions:
        """The synthesis inputs of regions covering the (top, bottom, left, right) probe windows (:meth:`GridModel.
        window_inputs`; :data:`ProbeRegions`). Wavelet latents take one region per distinct row band, across that
        band's windows: the inverse transform of a band costs about the same whatever its width, so a 2000 px
        frame's 16 probe windows in 4 bands cost 4 band syntheses, not 16; other latents one region per window."""
        groups = itertools.groupby(windows, key=lambda w: w[:2]) if self.config.wavelet else \
            ((w[:2], [w]) for w in windows)
        out = []
        for (top, bottom), group in groups:
            group = list(group)
            left, right = min(w[2] for w in group), max(w[3] for w in group)
            inputs, crop = self.model.window_inputs(latents, self.shape, (top, bottom, left, right))
            out.append((inputs, crop, group, left))
        return out

    def network(self, log2_factor: float, curvature: list[np.ndarray]) -> tuple[bytes, GridModel]:
        """The payload's network part at a global step factor, and the network the decoder will rebuild."""
        params, init = _groups(list(self.model.parameters())), _groups(list(self.init.params))
        idx = fitting_indices(step_indices(curvature, log2_factor), params, init, MAX_ABS_SYMBOL)
        symbols = quantize(params, init, idx)
        net = encode_tensors(symbols)
        return (np.concatenate(idx).tobytes() + write_svarint(len(net)) + net,
                _model_from(self.config, dequantize(symbols, init, idx)))

    def _mse(self, data: bytes) -> float:
        decoded = reconstruct(data, self.config, self.init, self.norm, self.frame.dtype, self.shape, self.base)
        return float(np.mean((self.norm.forward(decoded) - self.norm.forward(self.frame)) ** 2))

    def choose_payload(self, target: RateTarget, budget: float | None) -> bytes:
        """The real bytes, in two searches measured exactly (real coder, real decoder).

        1. The network's global step factor among the preset's: least D + λR (for a PSNR target, the
           smallest file reaching it).
        2. The latents' dead zone (1/64 steps, then bisected between two: one step can move the size by 9 %;
           negative rounds up, only where the file would otherwise be more than UNDERSHOOT_KEPT under): the closest
           size to a bpp budget, or the widest dead zone that still reaches a PSNR target; none without a target.
           When training overshot a bpp budget by more than the widest dead zone saves, the latents are first
           requantised coarser (``latent_scale``, one payload byte) until it fits.

        Where every factor tried leaves the decoded error over NET_LOSS_LIMIT times the unquantised networks', finer
        factors (an octave at a time, NET_RESCUE_STEPS at most) join the first search.
        """
        base = self._network_log2_step()
        # probed anew (0.6-0.7 s at 512 px): the first calibration's probe reused here lost 2.7 dB on a 512 px
        # X-ray at 1.35 bpp (cxr-test bench, 2026-11-28): a tensor still at its init then measured flat (1e-12), and
        # the step that implied rounded its later delta away, at every factor the rescue tries
        curvature = self.curvature(base)
        latents = self.integer_latents()
        tried = []  # (mse, file bytes, network bytes, network)

        def attempt(k: int) -> None:
            head, model = self.network(base + k / 8, curvature)
            data = _assemble(head, 0, self._code_latents(latents, model))
            tried.append((self._mse(data), len(data), head, model))

        for k in self.opts.net_step_search:
            attempt(k)
        with torch.no_grad():  # the error with the networks unquantised
            unquantised = float(self.loss(self._rounded())[1])
        finer = min(self.opts.net_step_search)
        for _ in range(NET_RESCUE_STEPS):
            if min(t[0] for t in tried) <= NET_LOSS_LIMIT * unquantised:
                break
            finer -= 8
            attempt(finer)
        reaching = [t for t in tried if t[0] <= self.mse_goal]
        if target.mode == "psnr" and reaching:
            _, _, head, model = min(reaching, key=lambda t: t[1])
        else:
            _, _, head, model = min(tried, key=lambda t: t[0] + self.lam * 8 * t[1] / self.pixels)
        cache: dict[tuple[float, int], bytes] = {}

        def payload(i: float, coarsen: int = 0) -> bytes:
            if (i, coarsen) not in cache:
                latents = self.integer_latents(i / 64, coarsen)
                cache[i, coarsen] = _assemble(head, coarsen, self._code_latents(latents, model))
            return cache[i, coarsen]

        if target.mode == "bpp":
            coarsen = 0
            if len(payload(DEADZONE_RANGE[1])) > (budget or 0):
                over = largest_true(lambda c: len(payload(0, c)) > (budget or 0), 0, MAX_COARSEN)
                coarsen = min(MAX_COARSEN, (over or 0) + 1)
            low = 0 if len(payload(0, coarsen)) >= (1 - UNDERSHOOT_KEPT) * (budget or 0) else DEADZONE_RANGE[0]
            return payload(closest_size_fine(lambda i: len(payload(i, coarsen)), budget or 0, low,
                                             DEADZONE_RANGE[1]), coarsen)
        if target.mode == "psnr":
            i = largest_true(lambda i: self._mse(payload(i)) <= self.mse_goal, 0, DEADZONE_RANGE[1])
            return payload(i or 0)
        return payload(0)


def latent_budget(frame_bytes: float, init: Init) -> float:
    """Bits a frame's latents may take: the frame budget less the network's estimated coded size."""
    per_param = NET_BITS_PER_PARAM if init.name == RANDOM else LEARNED_NET_BITS_PER_PARAM
    return max(8 * frame_bytes - per_param * sum(p.numel() for p in init.params), 8.0)


def param_count(config: GridConfig) -> int:
    return sum(p.numel() for p in GridModel(config).parameters())


class GridCodec(ArchCodec):
    name = "grid"
    format_minor = 3  # table-coded latents
    #: axes of the latent grids (``grid-video``: 3, (t, y, x)); a stream's config must have these
    dims = 2
    #: the architecture whose inits this codec uses (grid's, for every grid variant)
    init_arch = "grid"

    def plan(self, height: int, width: int, cfg: EncoderConfig, target: RateTarget,
             frame_budget: float | None, modality: str = "generic") -> GridConfig:
        """The preset's network. For a bpp target and no learned init of ``modality`` for it (whose networks
        are nearly free: an image sends only the deltas that pay), narrower synthesis until the network's
        estimated cost is at most NET_SHARE of the frame budget (it dominates on small images)."""
        o = cfg.grid
        wavelet = o.upsampling in WAVELET_BASES
        levels = GridConfig.levels_for(height, width, o.levels, wavelet)
        config = GridConfig(levels=levels, hidden=o.hidden, layers=o.layers,
                            refine=o.refine, context_hidden=o.context_hidden, upsampling=o.upsampling,
                            dims=self.dims, context_magnitudes=wavelet and o.context_magnitudes)
        if target.mode != "bpp" or self.default_init(config, modality, target.value).name != RANDOM:
            return config
        for hidden in range(o.hidden, 4, -4):
            config = replace(config, hidden=hidden)
            if NET_BITS_PER_PARAM * param_count(config) <= NET_SHARE * 8 * (frame_budget or 0):
                break
        return config

    def content_minor(self, config: GridConfig, payloads: Sequence[bytes] = ()) -> int:
        if config.frequency_scales:
            return FREQUENCY_SCALES_MINOR
        if config.temporal:
            return TEMPORAL_MINOR
        if config.symmetric:
            return SYMMETRIC_MINOR
        tensors = len(list(GridModel(config).parameters()))
        if any(payload[_coarsening_at(payload, tensors)] & INTERPOLATED for payload in payloads):
            return INTERPOLATED_MINOR
        return MAGNITUDES_MINOR if config.context_magnitudes else WAVELET_MINOR if config.wavelet else self.format_minor

    def config_from_bytes(self, data: bytes) -> GridConfig:
        config = GridConfig.from_bytes(data)
        if config.dims != self.dims:
            raise ValueError(f"{self.name} needs {self.dims}-axis latent grids, got {config.dims}")
        return config

    def load_init(self, name: str, config: GridConfig) -> Init:
        return load_init(name, self.init_arch, config)

    def default_init(self, config: GridConfig, modality: str, bpp: float | None = None) -> Init:
        return modality_init(self.init_arch, modality, config)

    def encode_frame(self, frame: np.ndarray, norm: Normalisation, config: GridConfig, init: Init,
                     cfg: EncoderConfig, target: RateTarget, frame_budget: float | None,
                     progress: ProgressFn | None, label: str) -> tuple[bytes, list[str]]:
        fit = _FrameFit(frame, norm, config, init, cfg.grid)
        latent_bits = latent_budget(frame_budget or 0, init) if target.mode == "bpp" else None
        pyramid_2d = frame.ndim == 2 and not config.wavelet
        fit.start(target, latent_bits, shipped_analysis() if cfg.grid.analysis and pyramid_2d else None)
        fit.train(target, latent_bits, (lambda d, t: progress(label + "fit", d, t)) if progress else None,
                  frame_budget)
        data = fit.choose_payload(target, frame_budget)
        if target.mode != "psnr":
            return data, []
        return data, psnr_shortfall(label, target,
                                    psnr(frame, reconstruct(data, config, init, norm, frame.dtype, frame.shape)))

    def decode_frame(self, payload: bytes, config: GridConfig, init: Init, norm: Normalisation, dtype: np.dtype,
                     shape: tuple[int, int]) -> np.ndarray:
        return reconstruct(payload, config, init, norm, dtype, shape)

    def describe(self, config: GridConfig) -> dict[str, Any]:
        model = GridModel(config)
        return {"config": dict(config.__dict__), "parameters": param_count(config),
                "multiply_adds_per_pixel": model.multiply_adds_per_pixel()}


register(GridCodec())


class GridWaveletCodec(GridCodec):
    """``grid`` with wavelet-domain latents: the subbands of a CDF 9/7 transform (:mod:`medinr.models.wavelet`),
    critically sampled where the pyramid is 4/3 overcomplete, started from the frame's dead-zone quantised
    coefficients and trained like the pyramid's latents, through the same synthesis and context networks."""

    name = "grid-wavelet"

    def plan(self, height: int, width: int, cfg: EncoderConfig, target: RateTarget,
             frame_budget: float | None, modality: str = "generic") -> GridConfig:
        """``grid``'s plan with wavelet latents (WAVELET_BASIS, or the periodic ``cdf97`` where the options ask for
        it: a file that 1.6-1.8 readers decode) and a synthesis at most WAVELET_HIDDEN wide; a context network that
        reads magnitudes where its extra parameters cost at most MAGNITUDES_SHARE of the frame's budget (a bpp
        target's, otherwise the frame at 1 bpp) or come from a learned init."""
        basis = cfg.grid.upsampling if cfg.grid.upsampling in WAVELET_BASES else WAVELET_BASIS
        options = replace(cfg.grid, upsampling=basis, hidden=min(cfg.grid.hidden, WAVELET_HIDDEN))
        # the base's plan named explicitly: FileInitCodec runs this with itself as ``self`` (so its init is the
        # default), which a zero-argument super() refuses
        config = GridCodec.plan(self, height, width, replace(cfg, grid=options), target, frame_budget, modality)
        bpp = target.value if target.mode == "bpp" else None
        if not config.context_magnitudes or self.default_init(config, modality, bpp).name != RANDOM:
            return config
        budget_bits = 8 * (frame_budget or 0) if target.mode == "bpp" else float(height * width)
        extra = param_count(config) - param_count(replace(config, context_magnitudes=False))
        return config if NET_BITS_PER_PARAM * extra <= MAGNITUDES_SHARE * budget_bits else \
            replace(config, context_magnitudes=False)

    def config_from_bytes(self, data: bytes) -> GridConfig:
        config = super().config_from_bytes(data)
        if not config.wavelet:
            raise ValueError(f"{self.name} needs wavelet latents, got {config.upsampling} grids")
        return config

    def default_init(self, config: GridConfig, modality: str, bpp: float | None = None) -> Init:
        """The modality family's installed ``grid-wavelet-<family>`` init (cine takes mri's) where it covers
        ``config`` and serves the bpp target (:func:`medinr.meta.inits.serves_rate`), else the random one."""
        name = init_name_for(self.name, modality)
        return installed_init(name if name and serves_rate(name, bpp) else None, self.init_arch, config)


register(GridWaveletCodec())
