"""Encoder configuration: dataclasses with defaults, and the ``fast`` / ``balanced`` / ``max`` presets."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from medinr.errors import MedinrError
from medinr.fit import FitConfig


@dataclass
class GridOptions:
    """Fitting settings of the ``grid`` architecture (:mod:`medinr.archs.grid`); ``grid_*`` options override them."""

    #: training steps for a 256x256 frame (fewer for larger frames, more for smaller ones: medinr.archs.grid.steps_for)
    steps: int = 1200
    #: fraction of the steps trained with additive uniform noise on the latents (the rest: straight-through rounding)
    noise_fraction: float = 0.7
    #: at most this many (final) steps use straight-through rounding: on cxr and cine train crops (256 px) 60 of
    #: 200 help, but at a fixed λ 180 of 600 lost 0.1-2.2 dB against none (the rounded loss rises in them)
    straight_through_steps: int = 60
    #: soft rounding in the noise phase (start, end temperature, annealed linearly; C3's values): the rate sees
    #: soft_round(z) + u, the synthesis soft_round(soft_round(z) + u), u uniform noise; () for plain z + u. Against
    #: () at ``fast`` on 256 px cxr/train crops (3 images, 0.25 / 0.5 / 2 bpp): +0.05 to +0.51 dB, mean +0.20;
    #: (0.5, 0.2) +0.19, (0.4, 0.1) +0.21, an end of 0.05 or less lost up to 0.5 dB at 2 bpp. MRI train slices: +0.2 to
    #: +3.5 dB but once -0.4; ``balanced`` cxr at 0.5 / 2 bpp +0.11 to +0.68; cine clips (grid-video) +0.01 to +0.5
    soft_round: tuple[float, ...] = (0.3, 0.1)
    #: frames of more pixels than this keep plain noise on their full-resolution latent levels (soft rounding on the
    #: coarser ones). Soft rounding on every level of larger frames measured worse: 512 px cxr/train crops at
    #: ``fast`` -0.83 to +0.23 dB, full-size cxr-test X-rays at ``balanced`` (75-150 steps) up to -1.9 dB. Without it on
    #: the finest level: 512 px crops +0.05 to +0.51 dB against plain noise everywhere (two cxr/train images, 0.5-2
    #: bpp), a 2000 px 12-bit proxy of a cxr/train image at 1 bpp (``balanced``) +0.12 dB; with it on the finest level
    #: alone, 512 px lost 0.16-0.51 dB
    soft_round_fine_max_pixels: int = 256 * 256
    #: ... unless they train at least this many steps (:func:`medinr.archs.grid.steps_for`): soft rounding needs
    #: steps to pay off on the finest level. On every level against plain noise on the finest, two 512 px cxr/train
    #: crops at 0.5 / 1 / 2 bpp: ``balanced`` (600 steps) +0.00 to +0.70 dB, mean +0.42; ``fast`` (150 steps) -1.06 to
    #: +0.19 dB. A cxr/train image at 1024 px, ``balanced`` (300 steps): -0.01 dB at 1 bpp, -0.9 dB at 2 bpp
    soft_round_fine_min_steps: int = 600
    lr_latent: float = 0.05
    lr_net: float = 2e-2
    #: a frame whose budget (bpp target) is under both ``net_min_bytes`` and ``net_min_bpp`` trains its latents alone:
    #: the networks (synthesis, context, per-level entropy biases after the start sets them) stay at the init's
    #: values, so the file codes no network deltas, and the context network is not refitted. Where an image's
    #: networks cost a few hundred bytes they are a quarter of such a file or more. ``fast``, cxr/train images (cxr
    #: init), against training them: 256 px crops at 245 / 492 / 820 / 1150 bytes (0.03-0.14 bpp) +9.3 to +11.7 /
    #: +1.5 to +2.6 / +0.7 to +1.2 / +0.1 to +0.3 dB, at 1640 / 2460 bytes -0.2 to -0.5 / -0.4 to -0.6; 512 px at 983
    #: / 1638 bytes +0.3 to +0.7 / -0.0 to -0.2. MR train slices (mri init) at 256 px, 0.05 / 0.1 / 0.15 bpp: +6.2 to
    #: +6.6 / +1.1 to +1.3 / -0.1 to +0.9 dB; but small images at higher rates lose: 128 px MR slices at 0.2 / 0.4 /
    #: 0.6 bpp -0.3 to -0.7 / -1.2 to -3.0 / -1.0 to -1.6 dB, 128 px X-rays at 0.2 bpp -0.6 to -0.8 (0.4: +-0.2)
    net_min_bytes: int = 1300
    net_min_bpp: float = 0.16
    #: learning rate of the level steps (gains), in the log domain; 0 keeps the start point's. Off: 0.005 measured
    #: -0.04 to +0.07 dB on 12 cxr train crops, -0.01 to +0.02 dB on 8 cine frames and +0.00 to +0.23 dB on 4 MR
    #: slices (fast, 256 px, 0.25 / 0.5 / 1 / 2 bpp, one device run)
    gain_lr: float = 0.0
    #: rate-distortion weight (loss = MSE in normalised units + lambda * bits per pixel) when there is no target
    lam: float = 2e-3
    hidden: int = 16
    layers: int = 2
    refine: int = 4
    context_hidden: int = 8
    #: wavelet latents only: the context network also reads the magnitudes of its inputs (format 1.7). ``fast``
    #: encodes against it off (2026-11-27, cxr/mri train data, 0.25 / 0.5 / 1 / 2 bpp): an MR slice at 256 px
    #: -0.01 / +0.89 / +1.16 / +1.36 dB, three 256 px X-ray proxies (one 12-bit) -0.05 to +0.29 dB (mean +0.09),
    #: two at 512 px +0.03 to +0.11 dB. 16 context units with it were no better than 8 on these sizes
    context_magnitudes: bool = True
    #: how the latent grids reach full resolution (:data:`medinr.models.grid.UPSAMPLING`); ``"cdf97-symmetric"``
    #: (or the older periodic ``"cdf97"``): the latents are wavelet subbands instead (``grid-wavelet`` sets it)
    upsampling: str = "bicubic"
    levels: int = 7
    #: global network quantisation factors tried (1/8 octave units around the rate-distortion estimate); ``fast`` tries
    #: the estimate alone: this search or (0, 8, 16) there moved two 256 px cxr/train crops at 0.25-2 bpp by -0.05 to
    #: +0.14 dB (2026-11-27), within the encodes' noise
    net_step_search: tuple[int, ...] = (-8, -4, 0, 4, 8)
    #: weight of the temporal-consistency term (:func:`medinr.video.fit.temporal_consistency_loss`) in the loss of a
    #: (T, H, W) fit (``grid-video``). Off by default: on two cine/train clips (10 frames, 128 px, fast) 0.5 / 1 / 2
    #: / 4 cut temporal flicker at 1 bpp by 11 / 15 / 18 / 21 % for -0.25 / -0.6 / -1.2 / -2.0 dB, and at 0.05-0.2 bpp
    #: by 0-7 % for 0 to -0.9 dB (flicker there is mostly blur of moving edges, which the term barely moves)
    temporal_weight: float = 0.0
    #: a (T, H, W) fit's training steps measure the error, and the full-resolution levels' rate, on every
    #: ``frame_stride``-th frame only (offset cycling), so a step costs about 1/stride of those; 1: every frame
    frame_stride: int = 1
    #: evaluate the context (entropy) model every this many training steps; the steps between reuse its Laplace
    #: parameters, so they train the latents' rate but not the context network. On 256 px cxr/mri train crops
    #: (fast, 0.5-2 bpp) 2 and 4 took 7 and 24 % off the encode time for -0.01 and -0.05 dB (-0.3 at most)
    context_every: int = 1
    #: a frame of at least 1.5 times this many rows is split into horizontal bands of about this many rows, and
    #: each training step measures the error on one of them (a shuffled cycle; the rate stays the whole frame's),
    #: so a step costs a fraction of a whole-frame one; 0: whole frames (``max``). At equal steps (balanced,
    #: cxr/train data): a 2000 px 12-bit proxy at 1 bpp in 4 bands 43.03 dB in 94 s against 43.12 dB in 207 s; a
    #: 1024 px image at 0.5 / 1 / 2 bpp in 2 bands -0.06 / -0.06 / +0.02 dB for 45 s against 66-71 s (4 bands:
    #: -0.12 to -0.5 dB, 36-39 s). More steps in the time saved did not pay (1.5-3x the steps: -0.3 to +0.2 dB).
    #: Full-size cxr-test bench (auto balanced): 2000 px encodes 296-328 -> 151-172 s, 1024 px 107-117 -> 74-85 s,
    #: BD-rate against JPEG 2000 +28.2 -> +29.7 %. The latents' learning rate is ``lr_latent`` times the square root of
    #: the band count (a latent sees the error one step in that many): at ``fast`` on cxr/train data, 0.5 / 1 / 2 bpp,
    #: a 2000 px 8-bit image and a 2000 px 12-bit proxy (4 bands, 0.1 against 0.05; at 1 bpp 0.08 and 0.12 measured)
    #: +0.00 / +0.16-0.25 / +0.07 and -0.06 / +0.44-0.49 / +0.14 dB, a 1024 px image (2 bands, 0.07) +0.02 / -0.01 /
    #: +0.26 dB; ``balanced`` (the 8-bit image, 1 bpp) +0.03 dB
    band_rows: int = 512
    #: start from the installed analysis network's latents (:mod:`medinr.models.analysis`) when there is one
    analysis: bool = True


@dataclass
class VideoOptions:
    """What a (T, H, W) ``grid-video`` fit uses instead of :class:`GridOptions`' (``video_*`` options override).

    A sequence's step costs about its frame count times a frame's, so these trade quality for encode time.
    Measured on cine/train SCD0000201_basal and SCD0000301_mid (10 frames, 0.5 bpp at 256 px, 0.2 bpp at 128 px,
    centre crops, balanced otherwise; steps, frames per step, context every, latent learning rate):

    | 256 px: steps, frames a step, context, lr | s a frame | PSNR (dB) |
    |---|---|---|
    | 600, all, 1, 0.05 (the grid default) | 20.9 | 42.60 / 42.64 |
    | 600, 5, 1, 0.05 | 14.4 / 12.8 | 42.64 / 42.56 |
    | 600, 2-3, 4, 0.05 | 8.2 | 42.24 |
    | 400, 2-3, 4, 0.05 | 5.1 / 4.6 | 41.85 / 41.77 |
    | 400, 2-3, 4, 0.12 | 5.1 / 4.8 | 42.04 / 41.93 |
    | 400, 3-4, 4, 0.12 / 0.05 | 5.6 | 42.30 / 41.97 |
    | 150, all, 1, 0.05 | 5.8 / 6.4 | 41.86 / 41.72 |

    At 128 px (600 steps, context every 4): all frames a step 34.25 dB, 2-3 frames 33.39 dB (lr 0.12) and 33.97 dB
    (0.05): few pixels a step hurt, hence ``step_pixels``.
    """

    #: training steps of a sequence of 256x256 frames (scaled by the frame's pixels as ``GridOptions.steps``)
    steps: int = 340
    #: static grids, constant in time, at the finest this many scales (:attr:`medinr.models.grid.GridConfig.static`):
    #: what does not move is coded once. Not below ``medinr.archs.grid_video.STATIC_FROM_BPP``. None by default
    #: since the latents are spectra with frequency scales, whose frequency 0 codes what does not move (measured in
    #: ``medinr.archs.grid_video``)
    static_levels: int = 0
    #: code each level's latents as their DCT along time (:attr:`medinr.models.grid.GridConfig.temporal`, format
    #: 1.11); see ``medinr.archs.grid_video`` for the measurements
    temporal: bool = True
    #: with ``temporal``: a scale offset per (level, frequency) in each file, trained with the entropy model
    #: (:attr:`medinr.models.grid.GridConfig.frequency_scales`, format 1.12)
    frequency_scales: bool = True
    #: a step measures the error (and the full-resolution level's rate) on enough frames for this many pixels
    #: (every k-th frame, offset cycling: ``GridOptions.frame_stride``)
    step_pixels: int = 3 * 256 * 256
    context_every: int = 4
    #: the latents' learning rate (``GridOptions.lr_latent``: 0.05)
    lr_latent: float = 0.12
    #: global network quantisation factors tried (``GridOptions.net_step_search``)
    net_step_search: tuple[int, ...] = (-4, 0, 4)

    def grid_options(self, grid: GridOptions, shape: tuple[int, int, int]) -> GridOptions:
        """``grid`` with this section's values for a (T, H, W) sequence of ``shape``."""
        per_step = -(-self.step_pixels // (shape[1] * shape[2]))
        return replace(grid, steps=self.steps, frame_stride=max(1, shape[0] // per_step),
                       context_every=self.context_every, lr_latent=self.lr_latent,
                       net_step_search=self.net_step_search)


@dataclass
class EncoderConfig:
    """Everything that shapes an encode besides the rate target. CLI flags override preset values."""

    #: "auto" picks per modality from :data:`AUTO_ARCH` (measured), else "grid-wavelet", "grid", "seed", "seed-video",
    #: "grid-video", "grid-mc"
    arch: str = "auto"
    activation: str = "sine"
    omega0: float = 3.0
    freqs_per_band: int = 4
    layers: int = 2
    #: hidden widths rate control may choose from, smallest first
    widths: tuple[int, ...] = (8, 12, 16, 24, 32, 48, 64)
    #: width used when no rate target is given
    default_width: int = 24
    #: coded bits per parameter that rate control assumes when sizing the network for a bpp target
    bits_per_param: float = 7.0
    #: with no target, the coarsest steps that cost at most this many dB against the float fit
    quantisation_loss_db: float = 0.3
    threads: int = 2
    #: with ``arch="auto"`` and a bpp or PSNR target, also code the image with the near-lossless mode's
    #: predictive coder and keep the better file (``medinr.codec._predictive_if_better``): on 12-bit images at
    #: high rates it beat ``grid`` by 2-5 dB; it decodes about 4x slower (0.33-0.58 s at 512 px)
    predictive_mode: bool = True
    fit: FitConfig = field(default_factory=FitConfig)
    grid: GridOptions = field(default_factory=GridOptions)
    video: VideoOptions = field(default_factory=VideoOptions)


#: Architecture ``arch="auto"`` uses per modality, from measured rate-distortion (README, Results): on
#: cxr and mri train crops at 0.5-2 bpp, ``grid`` was 0.3-8.5 dB behind JPEG 2000 and ``seed`` 10-15 dB
#: behind. ``grid-wavelet`` then beat ``grid`` on every one of 21 cxr-test and mri-test images (256 px, fast,
#: 2026-11-27: BD-rate against JPEG 2000 -2.9 / +2.9 % against +11.5 / +10.7 %), so it is every still modality's
#: (cine frames, CT and generic images were not measured apart). Near-lossless coding needs the bit-exact predictor,
#: which exists for ``seed`` only.
AUTO_ARCH: dict[str, str] = {"cxr": "grid-wavelet", "mri": "grid-wavelet", "cine": "grid-wavelet",
                             "ct": "grid-wavelet", "generic": "grid-wavelet"}
NEAR_LOSSLESS_ARCH = "seed"
#: ``auto`` for a time series (two or more frames with frame times, or cine): one (x, y, t) representation.
#: Measured on cine-test (10 frames, 128 px, preset fast): ``grid-video`` -59 % BD-rate vs per-frame JPEG 2000,
#: against -23 % for ``seed-video`` and +24 % for per-frame ``grid`` (results/quick.json)
AUTO_SEQUENCE_ARCH = "grid-video"


def resolve_arch(requested: str, modality: str, near_lossless: bool, sequence: bool = False) -> str:
    """The architecture an encode uses: the requested one, or the measured choice for ``auto`` (per modality,
    and for a time series ``sequence`` the sequence architecture)."""
    if requested != "auto":
        return requested
    if near_lossless:
        return NEAR_LOSSLESS_ARCH
    return AUTO_SEQUENCE_ARCH if sequence else AUTO_ARCH.get(modality, "grid")


#: grid steps (for a 256 px frame): fast 300 and balanced 1200 (were 200 and 600) measured, on two 512 px
#: cxr/train crops at 0.5 / 1 / 2 bpp, +0.03 to +0.36 dB for 7.6 -> 10.3 s (fast) and -0.03 to +0.95 dB for 17 -> 35 s
#: (balanced, most at 2 bpp); a 2000 px 12-bit proxy at 1 bpp +0.47 dB for 115 -> 181 s (balanced). ``max`` trains large
#: frames whole (``GridOptions.band_rows``): quality first. Saturation, measured 2026-11-27 (0.5 / 1 / 2 bpp, one
#: encode a point): ``balanced`` at 1700 steps (850 for a 512 px frame) gave +0.01 to +0.20 dB (mean +0.10) for
#: 33-37 -> 45-51 s on two cxr/train images resized to 1024 px and cropped to 512; ``max`` (3000) gave +0.13 / +0.19
#: dB over ``balanced`` at 0.5 / 2 bpp on one resized to 512 px and cropped to 256 (22 -> 55 s). Not taken: a 2000 px
#: frame would pay 40 % more time where twice the steps measured nothing (``GridOptions.band_rows``)
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"fit": {"steps": 300, "qat_steps": 60, "batch_pixels": 8192, "lr": 1.5e-2},
             "grid": {"steps": 300, "net_step_search": (0,)}, "video": {"steps": 200, "net_step_search": (0,)}},
    "balanced": {"fit": {"steps": 1200, "qat_steps": 200, "batch_pixels": 16384}, "grid": {"steps": 1200}},
    "max": {"fit": {"steps": 4000, "qat_steps": 600, "batch_pixels": 32768, "lr": 8e-3},
            "grid": {"steps": 3000, "net_step_search": (-12, -8, -4, 0, 4, 8, 12), "band_rows": 0},
            "video": {"steps": 1200, "step_pixels": 2**40, "context_every": 1, "lr_latent": 0.05,
                      "net_step_search": (-12, -8, -4, 0, 4, 8, 12)}},
}


def preset_config(preset: str = "balanced", **overrides: Any) -> EncoderConfig:
    """The config of a preset with keyword overrides (``fit_steps=...`` reaches ``fit.steps``,
    ``grid_steps=...`` reaches ``grid.steps``, ``video_steps=...`` reaches ``video.steps``)."""
    if preset not in PRESETS:
        raise MedinrError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    values = PRESETS[preset]
    nested = {"fit": FitConfig, "grid": GridOptions, "video": VideoOptions}
    cfg = replace(EncoderConfig(), **{k: v for k, v in values.items() if k not in nested},
                  **{k: replace(t(), **values.get(k, {})) for k, t in nested.items()})
    nested_names = {k: {f.name for f in fields(t)} for k, t in nested.items()}
    enc_names = {f.name for f in fields(EncoderConfig)} - set(nested)
    for key, value in overrides.items():
        if value is None:
            continue
        prefix, _, name = key.partition("_")
        if name in nested_names.get(prefix, ()):
            setattr(getattr(cfg, prefix), name, value)
        elif key in enc_names:
            setattr(cfg, key, value)
        else:
            raise MedinrError(f"unknown encoder option {key!r}")
    return cfg
