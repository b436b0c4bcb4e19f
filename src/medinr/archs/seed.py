"""The ``seed`` architecture codec: per-scale MLPs whose parameter deltas from the init are quantised and coded.

Per frame: fit from the init, measure each parameter slice's sensitivity (Fisher), search the global
quantisation factor ``k`` (1/8 octave units) for the target, fine-tune with quantisation in the
loop at that factor, search again, entropy-code. Payload = one step-index byte per slice + the
entropy-coded symbols.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from medinr.archs import ArchCodec, ProgressFn, psnr_shortfall, register
from medinr.config import EncoderConfig
from medinr.entropy import decode_tensors, encode_tensors
from medinr.errors import BitstreamError
from medinr.fit import FrameFitter, predict
from medinr.meta.inits import Init, load_init, modality_init
from medinr.metrics import psnr
from medinr.models import with_params
from medinr.models.seed import SeedConfig, SeedINR
from medinr.preprocess import Normalisation
from medinr.quant import dequantize, fisher_information, quantize, step_indices
from medinr.ratecontrol import RateTarget, closest_size, largest_true

K_RANGE = (-320, 320)
#: symbols beyond this magnitude mean the steps are pointlessly fine for the entropy coder
MAX_SYMBOL = 2**15
#: pixels on which rate control estimates PSNR (all of them for smaller frames)
PSNR_SAMPLE_PIXELS = 65536


def param_count(config: SeedConfig) -> int:
    in_dim = 2 * config.coord_dims * config.freqs_per_band
    dims = [in_dim] + [config.hidden] * config.layers + [1]
    return config.scales * sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


def _model_from(config: SeedConfig, params: list[torch.Tensor]) -> SeedINR:
    return with_params(SeedINR(config), params)


def parse_payload(payload: bytes, init: Init) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A seed payload's entropy-decoded symbols and per-slice step indices, one of each per init tensor."""
    groups = [p.shape[0] for p in init.params]
    n_idx = sum(groups)
    if len(payload) < n_idx:
        raise BitstreamError("truncated frame payload (quantisation steps)")
    idx = np.split(np.frombuffer(payload[:n_idx], dtype=np.uint8), np.cumsum(groups)[:-1])
    return decode_tensors(payload[n_idx:], [p.numel() for p in init.params]), idx


def reconstruct(payload: bytes, config: SeedConfig, init: Init, norm: Normalisation, dtype: np.dtype,
                shape: tuple[int, int]) -> np.ndarray:
    """The decoder's path for one frame: payload -> parameters -> prediction -> stored values."""
    symbols, idx = parse_payload(payload, init)
    model = _model_from(config, dequantize(symbols, init.params, idx))
    return norm.inverse(predict(model, *shape), dtype)


class _Quantiser:
    """Quantise-and-code a fitted model at global factor ``k``, caching sizes and PSNRs per ``k``."""

    def __init__(self, model: SeedINR, init: Init, fisher: list[np.ndarray], norm: Normalisation,
                 frame: np.ndarray) -> None:
        self.model, self.init, self.fisher, self.norm, self.frame = model, init, fisher, norm, frame
        self._payload: dict[int, bytes] = {}
        self._psnr: dict[int, float] = {}
        self.peak = float(frame.max()) - float(frame.min()) or 1.0
        flat = torch.from_numpy(np.random.default_rng(0).permutation(frame.size)[:PSNR_SAMPLE_PIXELS])
        self.sample = (flat // frame.shape[1], flat % frame.shape[1])
        self.sample_values = frame.reshape(-1)[flat.numpy()]
        fits = lambda k: max(int(np.abs(q).max()) for q in self._symbols(-k)) <= MAX_SYMBOL  # noqa: E731
        finest = largest_true(fits, -K_RANGE[1], -K_RANGE[0])
        self.k_range = (K_RANGE[1] if finest is None else -finest, K_RANGE[1])

    def _symbols(self, k: int) -> list[np.ndarray]:
        return quantize(self.model.parameters(), self.init.params, self.indices(k))

    def indices(self, k: int) -> list[np.ndarray]:
        return step_indices(self.fisher, k / 8)

    def payload(self, k: int) -> bytes:
        if k not in self._payload:
            self._payload[k] = np.concatenate(self.indices(k)).tobytes() + encode_tensors(self._symbols(k))
        return self._payload[k]

    def psnr(self, k: int) -> float:
        """PSNR at factor ``k``, estimated on a fixed sample of pixels (exact for frames up to the sample size).

        The search only needs to rank factors; the encoder's reported metrics come from the real decoder.
        """
        if k not in self._psnr:
            idx = self.indices(k)
            params = dequantize(quantize(self.model.parameters(), self.init.params, idx), self.init.params, idx)
            with torch.no_grad():
                pred = _model_from(self.model.config, params)(self.sample, self.frame.shape).sum(dim=1)
            decoded = self.norm.inverse(pred.numpy(), self.frame.dtype)
            self._psnr[k] = psnr(self.sample_values[None], decoded[None], peak=self.peak)
        return self._psnr[k]

    def choose(self, target: RateTarget, budget: float | None, quality_loss_db: float) -> int:
        if target.mode == "bpp":
            return closest_size(lambda k: len(self.payload(k)), budget or 0, *self.k_range)
        goal = target.value if target.mode == "psnr" else self.psnr(self.k_range[0]) - quality_loss_db
        k = largest_true(lambda k: self.psnr(k) >= goal, *self.k_range)
        return self.k_range[0] if k is None else k


class SeedCodec(ArchCodec):
    name = "seed"

    def plan(self, height: int, width: int, cfg: EncoderConfig, target: RateTarget,
             frame_budget: float | None, modality: str = "generic") -> SeedConfig:
        config = SeedConfig(scales=SeedConfig.scales_for(height, width), freqs_per_band=cfg.freqs_per_band,
                            hidden=cfg.default_width, layers=cfg.layers, activation=cfg.activation,
                            omega0=cfg.omega0)
        if target.mode != "bpp":
            return config
        fitting = [w for w in cfg.widths
                   if param_count(replace(config, hidden=w)) * cfg.bits_per_param <= 8 * (frame_budget or 0)]
        return replace(config, hidden=fitting[-1] if fitting else cfg.widths[0])

    def config_from_bytes(self, data: bytes) -> SeedConfig:
        return SeedConfig.from_bytes(data)

    def load_init(self, name: str, config: SeedConfig) -> Init:
        return load_init(name, self.name, config)

    def default_init(self, config: SeedConfig, modality: str, bpp: float | None = None) -> Init:
        """The modality's meta-learned init when one is installed for this config's width and base, else random."""
        return modality_init(self.name, modality, config)

    def encode_frame(self, frame: np.ndarray, norm: Normalisation, config: SeedConfig, init: Init,
                     cfg: EncoderConfig, target: RateTarget, frame_budget: float | None,
                     progress: ProgressFn | None, label: str) -> tuple[bytes, list[str]]:
        def report(stage: str):
            return (lambda done, total: progress(label + stage, done, total)) if progress else None

        model = _model_from(config, list(init.params))
        fitter = FrameFitter(model, norm.forward(frame), cfg.fit)
        fitter.fit(report("fit"))
        fisher = fisher_information(list(model.parameters()), fitter.loss_closure)
        quantiser = _Quantiser(model, init, fisher, norm, frame)
        k = quantiser.choose(target, frame_budget, cfg.quantisation_loss_db)
        if cfg.fit.qat_steps > 0:
            fitter.quantisation_aware_finetune(list(init.params), quantiser.indices(k), report("quantise"))
            quantiser = _Quantiser(model, init, fisher, norm, frame)
            k = quantiser.choose(target, frame_budget, cfg.quantisation_loss_db)
        notes = psnr_shortfall(label, target, quantiser.psnr(k)) if target.mode == "psnr" else []
        return quantiser.payload(k), notes

    def decode_frame(self, payload: bytes, config: SeedConfig, init: Init, norm: Normalisation, dtype: np.dtype,
                     shape: tuple[int, int]) -> np.ndarray:
        return reconstruct(payload, config, init, norm, dtype, shape)

    def describe(self, config: SeedConfig) -> dict[str, Any]:
        return {"config": dict(config.__dict__), "parameters": param_count(config),
                "multiply_adds_per_pixel": SeedINR(config).multiply_adds_per_pixel()}


register(SeedCodec())
