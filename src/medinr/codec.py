"""The public codec: ``encode(image) -> bytes``, ``decode(bytes) -> MedicalImage``, with rate control.

Encoding a frame: z-score normalise, fit the INR from its initialisation, measure each parameter
slice's sensitivity, search the global quantisation factor for the rate or quality target,
fine-tune with quantisation in the loop, search again, entropy-code. Stacks (N, H, W) are coded
frame by frame into one file. :func:`encode_report` decodes the real bytes with the real decoder
and measures the result.
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from medinr.bitstream import Container, Header, Tag, read_container, write_container
from medinr.config import EncoderConfig, preset_config
from medinr.entropy import decode_tensors, encode_tensors
from medinr.errors import BitstreamError, InputError, MedinrError, RateControlError
from medinr.fit import FrameFitter, predict
from medinr.io.image import MedicalImage, validate_pixels
from medinr.meta.inits import RANDOM, Init, check_digest, load_init
from medinr.models import config_from_bytes
from medinr.models.seed import SeedConfig
from medinr.preprocess import Normalisation
from medinr.quant import dequantize, fisher_information, quantize, step_indices

#: progress(stage, done, total)
ProgressFn = Callable[[str, int, int], None]

MODALITIES = ("auto", "cxr", "mri", "cine", "ct", "generic")
_K_RANGE = (-320, 320)  # global quantisation factor, in 1/8 octaves


class RateWarning(UserWarning):
    """A rate or quality target could not be met exactly; the closest achievable result was produced."""


@dataclass
class EncodeResult:
    """What :func:`encode_report` measured by decoding the real bytes."""

    data: bytes
    decoded: MedicalImage
    metrics: dict[str, Any]
    encode_seconds: float
    decode_seconds: float
    warnings: list[str] = field(default_factory=list)


def detect_modality(image: MedicalImage) -> str:
    """Modality family from DICOM Modality / BodyPartExamined; ``generic`` when nothing says."""
    modality = (image.modality or "").upper()
    body = (image.body_part or "").upper()
    if modality in ("CR", "DX") or (modality in ("", "OT") and "CHEST" in body):
        return "cxr"
    if modality == "MR":
        return "cine" if image.frame_times and image.frames > 1 else "mri"
    if modality == "CT":
        return "ct"
    return "generic"


def _as_image(image: MedicalImage | np.ndarray) -> MedicalImage:
    if isinstance(image, MedicalImage):
        return image
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a MedicalImage or a NumPy array, got {type(image).__name__}")
    validate_pixels(image)
    if image.dtype.kind == "f":
        bits = image.dtype.itemsize * 8
    else:
        bits = min(image.dtype.itemsize * 8, max(8, int(max(abs(int(image.min())), abs(int(image.max())))).bit_length()
                                                  + (image.dtype.kind == "i")))
    return MedicalImage(image, bits_stored=bits, signed=image.dtype.kind == "i", source_format="array")


def _param_count(config: SeedConfig) -> int:
    in_dim = 2 * config.coord_dims * config.freqs_per_band
    dims = [in_dim] + [config.hidden] * config.layers + [1]
    return config.scales * sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


class _FrameCoder:
    """Quantise-and-code a fitted model at a global factor ``k``, caching results per ``k``."""

    def __init__(self, model: torch.nn.Module, init: Init, fisher: list[np.ndarray], norm: Normalisation,
                 frame: np.ndarray, dtype: np.dtype) -> None:
        self.model, self.init, self.fisher = model, init, fisher
        self.norm, self.frame, self.dtype = norm, frame, dtype
        self.peak = float(frame.max()) - float(frame.min()) or 1.0
        self._payload: dict[int, bytes] = {}
        self._psnr: dict[int, float] = {}

    def indices(self, k: int) -> list[np.ndarray]:
        return step_indices(self.fisher, k / 8)

    def payload(self, k: int) -> bytes:
        if k not in self._payload:
            idx = self.indices(k)
            symbols = quantize(self.model.parameters(), self.init.params, idx)
            self._payload[k] = np.concatenate(idx).tobytes() + encode_tensors(symbols)
        return self._payload[k]

    def psnr(self, k: int) -> float:
        if k not in self._psnr:
            decoded = _reconstruct(self.model, self.init, self.payload(k), self.norm, self.dtype,
                                   self.frame.shape)
            mse = float(np.mean((decoded.astype(np.float64) - self.frame) ** 2))
            self._psnr[k] = math.inf if mse == 0 else 10 * math.log10(self.peak**2 / mse)
        return self._psnr[k]

    def largest_k(self, ok: Callable[[int], bool]) -> int | None:
        """Largest k (coarsest steps) with ``ok(k)``, assuming ``ok`` holds below some threshold."""
        lo, hi = _K_RANGE
        if not ok(lo):
            return None
        if ok(hi):
            return hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        return lo

    def k_for_bytes(self, budget: float) -> int:
        """k whose payload size is closest to ``budget`` bytes."""
        below = self.largest_k(lambda k: len(self.payload(k)) >= budget)
        if below is None:
            return _K_RANGE[0]
        candidates = [below] + ([below + 1] if below < _K_RANGE[1] else [])
        return min(candidates, key=lambda k: abs(len(self.payload(k)) - budget))


def _reconstruct(model: torch.nn.Module, init: Init, payload: bytes, norm: Normalisation, dtype: np.dtype,
                 shape: tuple[int, int]) -> np.ndarray:
    """The decoder's path for one frame: payload -> parameters -> prediction -> stored values."""
    params = list(model.parameters())
    groups = [p.shape[0] for p in params]
    n_idx = sum(groups)
    if len(payload) < n_idx:
        raise BitstreamError("truncated frame payload (quantisation steps)")
    flat = np.frombuffer(payload[:n_idx], dtype=np.uint8)
    idx = np.split(flat, np.cumsum(groups)[:-1])
    symbols = decode_tensors(payload[n_idx:], [p.numel() for p in params])
    values = dequantize(symbols, init.params, idx)
    state = {name: v for (name, _), v in zip(model.named_parameters(), values)}
    decoder_model = type(model)(model.config)
    decoder_model.load_state_dict(state, strict=False)
    return norm.inverse(predict(decoder_model, *shape), dtype)


def _encode_frame(frame: np.ndarray, norm: Normalisation, cfg: EncoderConfig, seed_cfg: SeedConfig, init: Init,
                  target: tuple[str, float | None], budget: float | None, progress: ProgressFn | None,
                  label: str) -> tuple[bytes, list[str]]:
    from medinr.models import build_model

    model = build_model("seed", seed_cfg)
    with torch.no_grad():
        for p, p0 in zip(model.parameters(), init.params):
            p.copy_(p0)
    fitter = FrameFitter(model, norm.forward(frame), cfg.fit)
    fitter.fit(lambda d, t: progress(f"{label}fit", d, t) if progress else None)
    fisher = fisher_information(list(model.parameters()), fitter.loss_closure)
    coder = _FrameCoder(model, init, fisher, norm, frame.astype(np.float64), frame.dtype)
    notes: list[str] = []

    def choose() -> int | None:
        mode, value = target
        if mode == "bpp":
            return coder.k_for_bytes(budget or 0)
        if mode == "psnr":
            return coder.largest_k(lambda k: coder.psnr(k) >= value)
        float_psnr = coder.psnr(_K_RANGE[0])
        return coder.largest_k(lambda k: coder.psnr(k) >= float_psnr - cfg.quantisation_loss_db)

    k = choose()
    if k is None:  # target PSNR unreachable even at the finest steps: take the best this model gives
        k = _K_RANGE[0]
    if cfg.fit.qat_steps > 0:
        fitter.quantisation_aware_finetune(list(init.params), coder.indices(k),
                                           lambda d, t: progress(f"{label}quantise", d, t) if progress else None)
        coder = _FrameCoder(model, init, fisher, norm, coder.frame, frame.dtype)
        k = choose()
        if k is None:
            k = _K_RANGE[0]
    if target[0] == "psnr" and coder.psnr(k) < (target[1] or 0):
        notes.append(f"{label}target {target[1]:.2f} dB not reached: best {coder.psnr(k):.2f} dB")
    return coder.payload(k), notes


def _pick_width(cfg: EncoderConfig, seed_cfg: SeedConfig, target: tuple[str, float | None], budget: float | None) -> int:
    if target[0] != "bpp":
        return cfg.default_width
    fitting = [w for w in cfg.widths
               if _param_count(SeedConfig(**{**seed_cfg.__dict__, "hidden": w})) * cfg.bits_per_param <= 8 * (budget or 0)]
    return fitting[-1] if fitting else cfg.widths[0]


def _header_for(image: MedicalImage, norm: Normalisation, modality: str, arch_config: bytes, init: Init) -> Header:
    return Header(height=image.height, width=image.width, frames=image.frames, dtype=image.pixels.dtype.name,
                  bits_stored=image.bits_stored, signed=image.signed, photometric=image.photometric,
                  modality=modality, value_min=norm.value_min, value_max=norm.value_max, norm_mean=norm.mean,
                  norm_std=norm.std, rescale_slope=float(image.rescale_slope),
                  rescale_intercept=float(image.rescale_intercept), arch="seed", arch_config=arch_config,
                  init_name=init.name, init_hash=init.digest)


def _metadata_section(image: MedicalImage) -> bytes | None:
    """The source DICOM attributes (no pixels), zlib-compressed, so a decoded DICOM keeps patient/study/series."""
    dataset = image.metadata.get("dicom")
    if dataset is None:
        return None
    import pydicom

    buffer = io.BytesIO()
    ds = pydicom.Dataset(dataset)
    ds.file_meta = getattr(dataset, "file_meta", pydicom.dataset.FileMetaDataset())
    ds.pop("PixelData", None)
    pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
    return zlib.compress(buffer.getvalue(), 9)


def encode(image: MedicalImage | np.ndarray, *, bpp: float | None = None, psnr: float | None = None,
           preset: str = "balanced", modality: str = "auto", keep_metadata: bool = False,
           progress: ProgressFn | None = None, **options: Any) -> bytes:
    """Compress an image to ``.minr`` bytes.

    ``bpp``: target size in bits per pixel of the whole file (header included); ``psnr``: smallest
    file reaching this PSNR (peak = the image's max - min); neither: the preset's network with the
    coarsest steps that cost at most ``quantisation_loss_db`` against the unquantised fit.
    ``options`` override preset fields (e.g. ``default_width=32``, ``fit_steps=500``).
    """
    image = _as_image(image)
    if bpp is not None and psnr is not None:
        raise RateControlError("give either a bpp or a PSNR target, not both")
    if bpp is not None and not (0 < bpp < 64):
        raise RateControlError(f"impossible bpp target {bpp}: must be in (0, 64)")
    if psnr is not None and not (0 < psnr < 200):
        raise RateControlError(f"impossible PSNR target {psnr} dB: must be in (0, 200)")
    if modality not in MODALITIES:
        raise InputError(f"unknown modality {modality!r}: choose one of {', '.join(MODALITIES)}")
    cfg = preset_config(preset, **options)
    torch.set_num_threads(max(1, min(cfg.threads, os.cpu_count() or 1)))
    modality = detect_modality(image) if modality == "auto" else modality
    frames = image.frame_stack()
    norm = Normalisation.of(frames)
    metadata = _metadata_section(image) if keep_metadata else None
    target: tuple[str, float | None] = ("bpp", bpp) if bpp is not None else ("psnr", psnr) if psnr is not None \
        else ("quality", None)

    seed_cfg = SeedConfig(scales=SeedConfig.scales_for(image.height, image.width),
                          freqs_per_band=cfg.freqs_per_band, hidden=cfg.default_width, layers=cfg.layers,
                          activation=cfg.activation, omega0=cfg.omega0)
    budget = None
    if bpp is not None:
        probe = _header_for(image, norm, modality, seed_cfg.to_bytes(), load_init(RANDOM, "seed", seed_cfg))
        extra = [(Tag.METADATA, metadata)] if metadata else []
        fixed = len(write_container(probe, extra + [(Tag.FRAME, b"")] * image.frames))
        budget = (bpp * image.num_pixels / 8 - fixed) / image.frames
        if budget <= 0:
            raise RateControlError(f"impossible bpp target {bpp}: the file's fixed overhead alone is "
                                   f"{8 * fixed / image.num_pixels:.3f} bpp")
    seed_cfg = SeedConfig(**{**seed_cfg.__dict__, "hidden": _pick_width(cfg, seed_cfg, target, budget)})
    init = load_init(RANDOM, "seed", seed_cfg)

    sections: list[tuple[Tag, bytes]] = [(Tag.METADATA, metadata)] if metadata else []
    notes: list[str] = []
    for i, frame in enumerate(frames):
        label = f"frame {i + 1}/{image.frames}: " if image.frames > 1 else ""
        payload, frame_notes = _encode_frame(frame, norm, cfg, seed_cfg, init, target, budget, progress, label)
        sections.append((Tag.FRAME, payload))
        notes += frame_notes
    data = write_container(_header_for(image, norm, modality, seed_cfg.to_bytes(), init), sections)
    if bpp is not None:
        actual = 8 * len(data) / image.num_pixels
        if abs(actual - bpp) > 0.05 * bpp:
            notes.append(f"target {bpp:.4f} bpp not reachable with this preset: closest is {actual:.4f} bpp")
    for note in notes:
        warnings.warn(note, RateWarning, stacklevel=2)
    return data


def decode(data: bytes) -> MedicalImage:
    """Decompress ``.minr`` bytes to the stored pixel values in the source's dtype, shape and range."""
    container = read_container(data)
    header = container.header
    return _decode_container(container)


def _decode_container(container: Container) -> MedicalImage:
    header = container.header
    if header.arch != "seed":
        raise BitstreamError(f"unknown architecture {header.arch!r} in file")
    try:
        arch_config = config_from_bytes(header.arch, header.arch_config)
    except Exception as exc:
        raise BitstreamError(f"corrupted architecture configuration ({exc})") from None
    init = load_init(header.init_name, header.arch, arch_config)
    check_digest(init, header.init_hash)
    payloads = container.payloads(Tag.FRAME)
    if len(payloads) != header.frames:
        raise BitstreamError(f"file holds {len(payloads)} frames, header says {header.frames}")
    norm = Normalisation(header.norm_mean, header.norm_std, header.value_min, header.value_max)
    from medinr.models import build_model

    model = build_model(header.arch, arch_config)
    dtype = np.dtype(header.dtype)
    frames = [_reconstruct(model, init, payload, norm, dtype, (header.height, header.width)) for payload in payloads]
    pixels = frames[0] if header.frames == 1 else np.stack(frames)
    metadata: dict[str, Any] = {}
    meta = container.payloads(Tag.METADATA)
    if meta:
        metadata["dicom"] = _read_metadata(meta[0])
    return MedicalImage(pixels, bits_stored=header.bits_stored, signed=header.signed,
                        photometric=header.photometric, modality=metadata["dicom"].get("Modality")
                        if metadata else None, rescale_slope=header.rescale_slope,
                        rescale_intercept=header.rescale_intercept, source_format="minr", metadata=metadata)


def _read_metadata(payload: bytes) -> Any:
    import pydicom

    try:
        return pydicom.dcmread(io.BytesIO(zlib.decompress(payload)), force=True)
    except Exception as exc:
        raise BitstreamError(f"corrupted metadata section ({exc})") from None


def describe(data: bytes) -> dict[str, Any]:
    """What ``medinr info`` shows: header fields, sizes, sections."""
    container = read_container(data)
    h = container.header
    arch_config = config_from_bytes(h.arch, h.arch_config)
    pixels = h.height * h.width * h.frames
    frame_bytes = [len(p) for p in container.payloads(Tag.FRAME)]
    meta_bytes = sum(len(p) for p in container.payloads(Tag.METADATA))
    return {
        "format_version": f"{data[4]}.{data[5]}", "shape": list(h.shape), "dtype": h.dtype,
        "bits_stored": h.bits_stored, "signed": h.signed, "photometric": h.photometric, "modality": h.modality,
        "value_range": [h.value_min, h.value_max], "normalisation": {"mean": h.norm_mean, "std": h.norm_std},
        "rescale": {"slope": h.rescale_slope, "intercept": h.rescale_intercept},
        "arch": h.arch, "arch_config": dict(arch_config.__dict__),
        "parameters": _param_count(arch_config),
        "init": {"name": h.init_name, "digest": h.init_hash.hex()},
        "file_bytes": len(data), "bpp": 8 * len(data) / pixels,
        "compression_ratio": pixels * h.bits_stored / (8 * len(data)),
        "frame_payload_bytes": frame_bytes, "metadata_bytes": meta_bytes,
        "bpp_without_metadata": 8 * (len(data) - meta_bytes) / pixels,
    }


def encode_report(image: MedicalImage | np.ndarray, **kwargs: Any) -> EncodeResult:
    """Encode, then decode the real bytes with the real decoder and measure quality and size."""
    from medinr.metrics import quality_report

    image = _as_image(image)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RateWarning)
        start = time.perf_counter()
        data = encode(image, **kwargs)
        encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = decode(data)
    decode_seconds = time.perf_counter() - start
    metrics = quality_report(image.pixels, decoded.pixels, bits=image.bits_stored, num_bytes=len(data))
    metrics.update(encode_seconds=encode_seconds, decode_seconds=decode_seconds)
    return EncodeResult(data, decoded, metrics, encode_seconds, decode_seconds,
                        [str(w.message) for w in caught if issubclass(w.category, RateWarning)])
