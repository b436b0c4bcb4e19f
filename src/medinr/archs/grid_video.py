"""The ``grid-video`` architecture: (x, y, t) latent grids, so a whole sequence is one ``grid`` representation.

``joint_frames = True``: the codec hands over the (T, H, W) stack and one budget, and gets one payload back.
Everything is ``grid``'s (:mod:`medinr.archs.grid`: closed-loop pyramid start, noise then straight-through
training with λ steered to the target, curvature-scaled network quantisation, dead-zone rate search on the
exact file size), run on the stack with the model's 3-axis form (:class:`medinr.models.grid.GridConfig`
``dims = 3``):

- Level s is a (T_s, ceil(H / 2^s), ceil(W / 2^s)) grid; T_s = T below level ``TIME_LEVELS``, then halved with
  each level like the spatial axes (:meth:`GridConfig.level_shapes`). Upsampling is linear in time, then the
  config's mode (bicubic or bilinear) in space.
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

Header config: ``grid``'s 7 bytes with dims = 3 (``grid`` refuses dims = 3 and ``grid-video`` dims = 2).
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


class GridVideoCodec(GridCodec):
    name = "grid-video"
    joint_frames = True
    dims = 3

    def default_init(self, config: GridConfig, modality: str) -> Init:
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
