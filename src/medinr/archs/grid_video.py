"""The ``grid-video`` architecture: (x, y, t) latent grids, so a whole sequence is one ``grid`` representation.

``joint_frames = True``: the codec hands over the (T, H, W) stack and one budget, and gets one payload back.
Everything is ``grid``'s (:mod:`medinr.archs.grid`: closed-loop pyramid start, noise then straight-through
training with λ steered to the target, curvature-scaled network quantisation, dead-zone rate search on the
exact file size), run on the stack with the model's 3-axis form (:class:`medinr.models.grid.GridConfig`
``dims = 3``):

- Level s is a (T_s, ceil(H / 2^s), ceil(W / 2^s)) grid; T_s = T below level ``TIME_LEVELS``, then halved with
  each level like the spatial axes (:meth:`GridConfig.level_shapes`). Upsampling is linear in time, then the
  config's mode (bicubic or bilinear) in space.
- Static grids (``VideoOptions.static_levels``; none by default since format 1.12, below): one (1, H_s, W_s) grid
  at each of the finest scales, added to every frame. The start gives each the time average of its scale's
  residual and the pyramid level the rest, so what does not move is coded once, not once a frame (or pair of
  frames). Each is the parent of the next finer one. None below STATIC_FROM_BPP (0.075), where the finest levels
  stay zero anyway. With the latents as frames (before 1.11), on the first 10 frames of cine/test SCD0000401_mid at
  256 px and 0.5 bpp (balanced): 41.60 -> 43.63 dB, flicker 3.73 -> 3.30, for 9 % more time.
- Latents as spectra along time (``VideoOptions.temporal``, format 1.11): a level of T_s > 1 frames codes the
  orthonormal DCT-II of its frames (:func:`medinr.models.grid.temporal_spectrum`; the synthesis turns them back into
  frames first), so what stays put in a level is one coefficient a position and slow changes a few, where the
  frames themselves coded it once a frame; the context model reads neighbouring frequencies as it read
  neighbouring frames. On cine/train (20 frames, 256 px, ``balanced``, 2026-11-28) against frames:
  SCD0000201_basal +1.62 / +0.44 / +0.75 dB and SCD0000101_mid +2.48 / +0.52 / +0.67 dB at 0.05 / 0.2 / 1 bpp, in
  the same time (1.6-2.2 s a frame) and decode (10-14 ms a frame).
- Frequency scales (``VideoOptions.frequency_scales``, format 1.12): the context network does not see which
  frequency a latent codes, and a level's DC is far larger than its high frequencies, so each (level, frequency)
  gets a log-scale offset (1/8 octaves, one byte each in the latent section): trained with the entropy model
  (``GridModel.slice_bias``, started at each frequency's mean magnitude) and, at every coding, chosen exactly for
  the latents coded (:func:`medinr.entropy.context.choose_slice_offsets`, 0.1 s). On cine/train (20 frames, 256
  px, ``balanced``, 2026-11-28) against 1.11: SCD0000201_basal +0.49 / +0.10 / +0.06 dB and SCD0000101_mid +1.00 /
  +0.51 / +0.29 dB at 0.05 / 0.2 / 1 bpp (the trained offsets alone: +0.42 / +0.11 / +0.10 and +0.88 / +0.38 /
  +0.25; the exact choice codes the same latents in 5-7 % fewer bytes than the trained offsets). With them, the
  static grids only cost: none instead of two (the default until then) gained at all nine points tried (cine/train,
  20 frames, 256 px, ``balanced``, 0.1 / 0.2 / 1 bpp): SCD0000201_basal +0.73 / +1.39 dB (0.2 / 1), SCD0000101_mid
  +0.78 / +0.24, SCD0000301_apical +0.09 / +0.96, SCD0000301_basal +0.41 / +0.05 / +1.04, and 5-15 % less time;
  frequency 0 of the finest levels codes what does not move, at its own scale.
- The same per-pixel synthesis MLP and residual 3x3 refinement, frame by frame.
- Context model: the 3x3 neighbourhood of the co-located parent sample, the six anchor neighbours of the 3D
  checkerboard (previous and next frame, N, S, W, E) and the second-pass flag; the same exact fixed-point
  predictor as 2D.

Training takes ``cfg.video``'s steps (:class:`medinr.config.VideoOptions`, ``steps_for`` of H x W): each step
measures the error, and the finest level's rate, on every k-th frame (about three 256 px frames a step), and
re-evaluates the context model every 4th step, so at ``balanced`` a 256 px frame costs about 5 s (20 s when every
step took every frame). Choices measured on cine/train SCD0000201_basal (first 10 frames, 128 px centre crop, preset
fast, PSNR at 0.05 / 0.2 / 1 bpp):

- at the sequence's pixel-scaled 60 steps with 3x3x3 refinement: frames halved from level 1 on
  (``TIME_LEVELS = 1``) 26.9 / 32.6 / 38.2 dB, from level 3 on 25.6 / 31.0 / 38.6 dB, already on level 0
  27.2 / 32.1 dB (0.05 / 0.2 bpp). Refinement frame by frame (3x3) instead: 26.6 / 32.9 / 39.3 dB, at 18
  instead of 45 CPU-s an encode; so 3x3x3 convolutions are not used.
- a frame's steps (300 at 128 px) instead of 60: 28.8 / 34.2 / 40.8 dB, at 60 CPU-s an encode; there, frames
  halved from level 2 on: 27.3 / 33.4 / 41.0 dB, and no refinement: 28.8 / 33.9 dB (0.05 / 0.2 bpp).

On cine/test (``medinr bench cine-test --quick``: 10 frames, 128 px, 0.05 / 0.2 / 1 bpp) BD-rate -58.6 / -59.0 %
(two runs) against per-frame JPEG 2000 and +108 / +109 % against x265 veryslow (``seed-video`` fast: -23 % and
+499 %); temporal flicker 4.4-6.9 stored units against x265's 3.4-6.6 at equal rate (``seed-video``: 5.8-9.7).

Header config: ``grid``'s 7 bytes with dims = 3 and the static grid count in that byte's high nibble (``grid``
refuses dims = 3 and ``grid-video`` dims = 2; files without static grids are as before).
Payload (one FRAME section for the whole sequence), as ``grid``'s frame payload: one step-index byte per
network tensor | varint length + entropy-coded network deltas from the init | latent coarsening byte |
context-coded latents, coarsest level first (:mod:`medinr.entropy.context`; a level's two checkerboard
passes over its (T_s, H_s, W_s) grid).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from medinr.archs import ProgressFn, check_sequence, check_sequence_shape, register
from medinr.archs.grid import GridCodec
from medinr.config import EncoderConfig
from medinr.meta.inits import Init, installed_init
from medinr.models.grid import GridConfig
from medinr.preprocess import Normalisation
from medinr.ratecontrol import RateTarget

#: modality -> the meta-learned ``grid-video`` networks its sequences start from (an MR series is cine-like);
#: without one installed for the config (levels, widths), the random init
VIDEO_INITS = {"cine": "grid-video-cine", "mri": "grid-video-cine"}


#: a bpp target below this gets no static grids (``VideoOptions.static_levels``). Measured on six cine/train clips
#: (10 frames, 128 px centre crops, fast), PSNR change against none, mean (range) over the clips:
#:
#: | static grids (scales) | 0.05 bpp | 0.1 bpp | 0.2 bpp | 1 bpp |
#: |---|---|---|---|---|
#: | 1 (0) | -0.4 (-0.55 to -0.3) | | +0.30 (-0.08 to +0.71) | +0.80 (+0.19 to +1.62), flicker -8 % |
#: | 2 (0, 1) | -0.05 (-0.50 to +0.50) | +0.49 (-0.05 to +0.98) | +0.70 (-0.15 to +1.32) | +0.80 (-0.11 to +1.67) |
#: | 3 (0-2) | -2.6 (-4.9 to -0.0) | | | |
#:
#: so at the lowest rates, where the finest levels stay zero, they only cost time (about 30 % more a step)
STATIC_FROM_BPP = 0.075


class GridVideoCodec(GridCodec):
    name = "grid-video"
    joint_frames = True
    dims = 3

    def plan(self, height: int, width: int, cfg: EncoderConfig, target: RateTarget,
             frame_budget: float | None, modality: str = "generic") -> GridConfig:
        """``grid``'s network with ``cfg.video.static_levels`` static grids, none for a bpp target below
        STATIC_FROM_BPP (where all the finest levels stay zero anyway and the static ones cost quality)."""
        # named, not super(): an init file's wrapper (medinr.meta.inits) runs this with itself as ``self``
        config = GridCodec.plan(self, height, width, cfg, target, frame_budget, modality)
        low_rate = target.mode == "bpp" and (target.value or 0.0) < STATIC_FROM_BPP
        return replace(config, static=0 if low_rate else min(cfg.video.static_levels, config.levels),
                       temporal=cfg.video.temporal, frequency_scales=cfg.video.temporal and cfg.video.frequency_scales)

    def default_init(self, config: GridConfig, modality: str, bpp: float | None = None) -> Init:
        return installed_init(VIDEO_INITS.get(modality), self.init_arch, config)

    def encode_frame(self, frame: np.ndarray, norm: Normalisation, config: GridConfig, init: Init,
                     cfg: EncoderConfig, target: RateTarget, frame_budget: float | None,
                     progress: ProgressFn | None, label: str) -> tuple[bytes, list[str]]:
        """Payload of the whole (T, H, W) stack ``frame``, trained with ``cfg.video``'s steps and strides."""
        check_sequence(self.name, frame)
        cfg = replace(cfg, grid=cfg.video.grid_options(cfg.grid, frame.shape))
        return super().encode_frame(frame, norm, config, init, cfg, target, frame_budget, progress, label)

    def decode_frame(self, payload: bytes, config: GridConfig, init: Init, norm: Normalisation, dtype: np.dtype,
                     shape: tuple[int, ...]) -> np.ndarray:
        check_sequence_shape(self.name, shape)
        return super().decode_frame(payload, config, init, norm, dtype, shape)


register(GridVideoCodec())
