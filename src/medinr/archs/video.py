"""The ``seed-video`` architecture: one ``seed`` network on (t, y, x) codes a whole sequence.

``joint_frames = True``: the codec hands over the (T, H, W) stack and gets one payload back. The pipeline
is ``seed``'s (fit from the init, Fisher sensitivities, global step factor ``k`` searched for the target,
quantisation-aware fine-tuning, search again, entropy coding) with a space-time fitter
(:class:`medinr.video.fit.SequenceFitter`, temporal-consistency term weighted :attr:`temporal_weight`)
and the payload layout of ``seed`` (one step-index byte per parameter slice, then the entropy-coded
symbols) after a flag byte and, when rate-distortion says it pays, a 3x3x3 refinement filter fitted by least
squares to the decoded sequence (:func:`medinr.models.video.fit_refinement`; 56 bytes).
Fitting starts from the modality's video init when one is installed for the chosen width (``seed-cine``:
Reptile on 8-frame cine clips, ``python -m medinr.meta.ship cine``), else from the random init.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from medinr.archs import ArchCodec, ProgressFn, check_sequence, check_sequence_shape, psnr_shortfall, register
from medinr.archs.seed import _model_from, _Quantiser, param_count, parse_payload
from medinr.config import EncoderConfig
from medinr.errors import BitstreamError
from medinr.meta.inits import Init, installed_init, load_init
from medinr.metrics import psnr
from medinr.models.seed import SeedConfig, SeedINR
from medinr.models.video import REFINE_STEP, REFINE_TAPS, fit_refinement, predict_grid, refine
from medinr.preprocess import Normalisation
from medinr.quant import dequantize, fisher_information
from medinr.ratecontrol import RateTarget, largest_true
from medinr.video.fit import TEMPORAL_WEIGHT, SequenceFitter

#: inits are looked up as ``seed`` inits of a 3-axis config (a video init differs by ``coord_dims``)
INIT_ARCH = "seed"
#: meta-learned (t, y, x) inits per modality (``python -m medinr.meta.ship cine``); others start from random
VIDEO_INITS = {"cine": "seed-cine"}
#: network width without a bpp target when the image default (``EncoderConfig.default_width``) is in force:
#: one network holds every frame, so it needs more than one frame's
VIDEO_DEFAULT_WIDTH = 64
#: widths a bpp target may choose beyond the image widths
VIDEO_EXTRA_WIDTHS = (96, 128)
#: payload flag: a 3x3x3 refinement filter follows
REFINED = 1
REFINE_BYTES = 2 * (REFINE_TAPS + 1)
#: without a bpp target, how much coarser (1/8 octaves) than the plain choice the refined one may go
REFINE_SEARCH = 16


def _prediction(base: bytes, config: SeedConfig, init: Init, shape: tuple[int, int, int]) -> np.ndarray:
    """Normalised (T, H, W) prediction of a ``seed`` payload (step indices + entropy-coded symbols)."""
    symbols, idx = parse_payload(base, init)
    return predict_grid(_model_from(config, dequantize(symbols, init.params, idx)), tuple(shape))


def reconstruct_sequence(payload: bytes, config: SeedConfig, init: Init, norm: Normalisation, dtype: np.dtype,
                         shape: tuple[int, int, int]) -> np.ndarray:
    """The decoder's path: payload -> parameters -> (T, H, W) prediction (-> refinement) -> stored values.

    Payload: one flag byte (bit 0: a 3x3x3 refinement filter follows as 28 int16), then ``seed``'s payload.
    """
    if not payload or payload[0] > REFINED:
        raise BitstreamError("corrupted video payload (flags)")
    body = payload[1:]
    coeffs = None
    if payload[0] & REFINED:
        if len(body) < REFINE_BYTES:
            raise BitstreamError("truncated video payload (refinement filter)")
        coeffs = np.frombuffer(body[:REFINE_BYTES], dtype="<i2") * REFINE_STEP
        body = body[REFINE_BYTES:]
    pred = _prediction(body, config, init, shape)
    return norm.inverse(pred if coeffs is None else refine(pred, coeffs), dtype)


class _SequenceQuantiser(_Quantiser):
    """``seed``'s quantiser (its ``payload`` is the ``seed`` part), measuring PSNR on the decoded sequence,
    with or without a refinement filter fitted to the decoded prediction."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._refined: dict[int, tuple[bytes, float]] = {}

    def plain(self, k: int) -> bytes:
        return bytes([0]) + self.payload(k)

    def psnr(self, k: int) -> float:
        if k not in self._psnr:
            decoded = reconstruct_sequence(self.plain(k), self.model.config, self.init, self.norm,
                                           self.frame.dtype, self.frame.shape)
            self._psnr[k] = psnr(self.frame, decoded)
        return self._psnr[k]

    def refined(self, k: int) -> tuple[bytes, float]:
        """The payload with a refinement filter fitted at ``k``, and its PSNR."""
        if k not in self._refined:
            pred = _prediction(self.payload(k), self.model.config, self.init, self.frame.shape)
            symbols = fit_refinement(pred, self.norm.forward(self.frame))
            payload = bytes([REFINED]) + symbols.tobytes() + self.payload(k)
            decoded = self.norm.inverse(refine(pred, symbols * REFINE_STEP), self.frame.dtype)
            self._refined[k] = payload, psnr(self.frame, decoded)
        return self._refined[k]

    def best(self, target: RateTarget, budget: float | None, quality_loss_db: float) -> tuple[bytes, float]:
        """Rate-distortion choice between coding without and with the refinement filter: at a bpp target the
        higher PSNR within the budget, otherwise the smaller payload meeting the PSNR goal."""
        k = self.choose(target, None if budget is None else budget - 1, quality_loss_db)
        plain = self.plain(k), self.psnr(k)
        if target.mode == "bpp":
            refined = self.refined(self.choose(target, (budget or 0) - 1 - REFINE_BYTES, quality_loss_db))
            return max(plain, refined, key=lambda option: option[1])
        goal = target.value if target.mode == "psnr" else self.psnr(self.k_range[0]) - quality_loss_db
        coarser = largest_true(lambda j: self.refined(j)[1] >= goal, k, min(k + REFINE_SEARCH, self.k_range[1]))
        if coarser is None:
            return max(plain, self.refined(k), key=lambda option: option[1])
        refined = self.refined(coarser)
        return refined if len(refined[0]) < len(plain[0]) or plain[1] < goal else plain


class SeedVideoCodec(ArchCodec):
    name = "seed-video"
    joint_frames = True
    #: weight of the temporal-consistency term (0: off), in normalised units like the MSE
    temporal_weight: float = TEMPORAL_WEIGHT

    def plan(self, height: int, width: int, cfg: EncoderConfig, target: RateTarget,
             frame_budget: float | None, modality: str = "generic") -> SeedConfig:
        """Octaves from the frame size (time shares them); width from the sequence's byte budget for bpp."""
        hidden = cfg.default_width if cfg.default_width != EncoderConfig.default_width else VIDEO_DEFAULT_WIDTH
        config = SeedConfig(scales=SeedConfig.scales_for(height, width), freqs_per_band=cfg.freqs_per_band,
                            hidden=hidden, layers=cfg.layers, activation=cfg.activation, omega0=cfg.omega0,
                            coord_dims=3)
        if target.mode != "bpp":
            return config
        widths = sorted({*cfg.widths, *VIDEO_EXTRA_WIDTHS})
        fitting = [w for w in widths
                   if param_count(replace(config, hidden=w)) * cfg.bits_per_param <= 8 * (frame_budget or 0)]
        return replace(config, hidden=fitting[-1] if fitting else widths[0])

    def config_from_bytes(self, data: bytes) -> SeedConfig:
        config = SeedConfig.from_bytes(data)
        if config.coord_dims != 3:
            raise ValueError(f"seed-video needs 3 coordinate axes, got {config.coord_dims}")
        return config

    def load_init(self, name: str, config: SeedConfig) -> Init:
        return load_init(name, INIT_ARCH, config)

    def default_init(self, config: SeedConfig, modality: str, bpp: float | None = None) -> Init:
        """The modality's installed video init when it covers ``config`` (its widths), else the random init."""
        return installed_init(VIDEO_INITS.get(modality), INIT_ARCH, config)

    def encode_frame(self, frame: np.ndarray, norm: Normalisation, config: SeedConfig, init: Init,
                     cfg: EncoderConfig, target: RateTarget, frame_budget: float | None,
                     progress: ProgressFn | None, label: str) -> tuple[bytes, list[str]]:
        """Payload of the whole (T, H, W) stack ``frame``."""
        check_sequence(self.name, frame)

        def report(stage: str):
            return (lambda done, total: progress(label + stage, done, total)) if progress else None

        model = _model_from(config, list(init.params))
        # no L1 rate proxy in the quantisation-aware fine-tuning: it is the mean |symbol|, which at fine steps
        # outweighs the MSE and pulls the fit back to the init (measured: -0.8 dB at 1 bpp on a cine clip);
        # the step search after fine-tuning sets the rate
        fitter = SequenceFitter(model, norm.forward(frame), cfg.fit, self.temporal_weight)
        fitter.fit(report("fit"))
        fisher = fisher_information(list(model.parameters()), fitter.loss_closure)
        quantiser = _SequenceQuantiser(model, init, fisher, norm, frame)
        budget = None if frame_budget is None else frame_budget - 1  # the flag byte
        if cfg.fit.qat_steps > 0:
            k = quantiser.choose(target, budget, cfg.quantisation_loss_db)
            fitter.quantisation_aware_finetune(list(init.params), quantiser.indices(k), report("quantise"))
            quantiser = _SequenceQuantiser(model, init, fisher, norm, frame)
        payload, quality = quantiser.best(target, frame_budget, cfg.quantisation_loss_db)
        return payload, psnr_shortfall(label, target, quality)

    def decode_frame(self, payload: bytes, config: SeedConfig, init: Init, norm: Normalisation, dtype: np.dtype,
                     shape: tuple[int, ...]) -> np.ndarray:
        check_sequence_shape(self.name, shape)
        return reconstruct_sequence(payload, config, init, norm, dtype, shape)

    def describe(self, config: SeedConfig) -> dict[str, Any]:
        return {"config": dict(config.__dict__), "parameters": param_count(config),
                "multiply_adds_per_pixel": SeedINR(config).multiply_adds_per_pixel(),
                "temporal_weight": self.temporal_weight}


register(SeedVideoCodec())
