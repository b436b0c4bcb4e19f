"""The ``grid-mc`` architecture: motion-compensated prediction with grid-coded frames and residuals.

``joint_frames = True``: the codec hands over the (T, H, W) stack and one byte budget. Frame 0 is coded
intra by the per-frame ``grid`` codec. Every later frame is predicted from the *decoded* previous frame
(exactly what the decoder holds) by a coarse motion field (:mod:`medinr.video.motion`: one quarter-pixel
vector per 8, 16 or 32 px cell, the cell size chosen by prediction error + λ · motion rate), then coded as
one of three modes, chosen by rate-distortion on exact sizes and decoded errors:

- ``intra``: the grid codec on the frame alone;
- ``inter``: the grid codec on the residual, its synthesis added to the warped prediction (the ``base`` of
  :func:`medinr.archs.grid.reconstruct`);
- ``skip``: the warped prediction alone (motion bytes only).

Choice per frame: least D + λR (λ: the grid fit's own rate-distortion slope at this frame's budget), the
smallest file reaching the goal for a PSNR target, and for the last frame of a bpp target the least error
within what is left of the budget (bytes it saves would be wasted). Bpp budgets: frame 0 gets
:data:`INTRA_WEIGHT` shares (raised towards :data:`MIN_INTRA_BPP` at low rates), each later frame one share
of what is left, so bytes a skipped frame saves go to the frames after it. The grid network is narrowed for the per-frame budget as ``grid`` does; its width is a
payload byte (the header holds the preset's config).

Intra is tried for a later frame only when its prediction is poor (:data:`INTRA_TRY`): on 128 px cine/train
clips, with every mode tried, intra's error at equal size was 1.5-11x inter's at 0.2 and 1 bpp and it was never
chosen, while it doubled the encode time. Inter fits keep the init's network below :data:`TRAIN_NETWORK_FROM`
(measured on a cine/train clip, 10 frames, 128 px: +0.9 dB at 0.2 bpp with the network frozen, -1.9 dB at 1
bpp, where training it pays).

Payload: width byte | T frame records. A record: mode byte (0 intra, 1 inter, 2 skip); for inter and
skip, log2 of the motion cell size (3-5), uvarint length and the entropy-coded field
(:func:`medinr.video.motion.encode_field`); for intra and inter, uvarint length and a ``grid`` frame payload.
Frame 0 is intra.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from medinr.archs import ArchCodec, ProgressFn, check_sequence_shape, psnr_shortfall, register
from medinr.archs.grid import (
    INTERPOLATED_MINOR,
    NET_BITS_PER_PARAM,
    SYMMETRIC_MINOR,
    GridCodec,
    _FrameFit,
    latent_budget,
    param_count,
    reconstruct,
)
from medinr.config import EncoderConfig
from medinr.errors import BitstreamError
from medinr.meta.inits import RANDOM, Init
from medinr.models.grid import GridConfig
from medinr.preprocess import Normalisation
from medinr.ratecontrol import RateTarget
from medinr.varint import read_uvarint, write_uvarint
from medinr.video.motion import decode_field, encode_field, estimate_field, field_shape, predict

INTRA, INTER, SKIP = 0, 1, 2
MODES = ("intra", "inter", "skip")
#: motion cell sizes tried (px), as log2
BLOCK_LOG2 = (3, 4, 5)
#: frame 0's share of a bpp budget, in later frames' shares
INTRA_WEIGHT = 3.0
#: intra is tried for a later frame only when its motion-compensated prediction's squared error exceeds this
#: fraction of the frame's variance (see the module docstring)
INTRA_TRY = 0.25
#: an inter fit trains the grid network only when the frame budget is at least this many times the network's
#: estimated coded size (below, the init's network codes the residual: its deltas are nearly free)
TRAIN_NETWORK_FROM = 2.0
#: frame 0's budget is raised towards this bpp when its share is below (a grid frame under it is mostly
#: network), as far as it leaves the later frames SKIP_BPP each (about their motion-only cost)
MIN_INTRA_BPP, SKIP_BPP = 0.5, 0.016
#: a candidate over its frame budget by more than this factor is not chosen (it would starve later frames)
OVER_BUDGET = 1.25

_GRID = GridCodec()


@dataclass
class _Record:
    """One frame's coded record, its decoded stored values and squared error (normalised units)."""

    data: bytes
    decoded: np.ndarray
    mse: float


@dataclass(frozen=True)
class _Parsed:
    mode: int
    block_log2: int
    motion: bytes
    grid: bytes


def _length_prefixed(data: bytes) -> bytes:
    return write_uvarint(len(data)) + data


def _read_prefixed(payload: bytes, pos: int, what: str) -> tuple[bytes, int]:
    n, pos = read_uvarint(payload, pos, what)
    if pos + n > len(payload):
        raise BitstreamError(f"truncated grid-mc payload ({what})")
    return payload[pos:pos + n], pos + n


def parse_records(payload: bytes, frames: int) -> tuple[int, list[_Parsed]]:
    """The network width and the frames' records of a ``grid-mc`` payload (BitstreamError when malformed)."""
    if not payload or not 1 <= payload[0] <= 64:
        raise BitstreamError("corrupted grid-mc payload (network width)")
    pos, records = 1, []
    for t in range(frames):
        if pos >= len(payload):
            raise BitstreamError(f"truncated grid-mc payload (frame {t})")
        mode, pos = payload[pos], pos + 1
        if mode > SKIP or (t == 0 and mode != INTRA):
            raise BitstreamError(f"corrupted grid-mc payload (mode {mode} of frame {t})")
        block_log2, motion, grid = 0, b"", b""
        if mode != INTRA:
            if pos >= len(payload) or payload[pos] not in BLOCK_LOG2:
                raise BitstreamError(f"corrupted grid-mc payload (motion cell size of frame {t})")
            block_log2 = payload[pos]
            motion, pos = _read_prefixed(payload, pos + 1, "motion field")
        if mode != SKIP:
            grid, pos = _read_prefixed(payload, pos, "grid frame")
        records.append(_Parsed(mode, block_log2, motion, grid))
    if pos != len(payload):
        raise BitstreamError("corrupted grid-mc payload (trailing bytes)")
    return payload[0], records


def frame_modes(payload: bytes, frames: int) -> list[str]:
    """How each frame of a ``grid-mc`` payload is coded: ``intra``, ``inter`` or ``skip``."""
    return [MODES[r.mode] for r in parse_records(payload, frames)[1]]


def _frame_network(config: GridConfig, init: Init, width: int) -> tuple[GridConfig, Init]:
    """The frames' grid network (``config`` at the payload's width) and its init (the header's, by name)."""
    narrowed = replace(config, hidden=width)
    return narrowed, _GRID.load_init(init.name, narrowed)


def _motion_part(block_log2: int, field: np.ndarray) -> bytes:
    return bytes([block_log2]) + _length_prefixed(encode_field(field))


def reconstruct_sequence(payload: bytes, config: GridConfig, init: Init, norm: Normalisation, dtype: np.dtype,
                         shape: tuple[int, int, int]) -> np.ndarray:
    """The decoder's path: each frame from its record and the decoded previous frame -> (T, H, W) stored values."""
    width, records = parse_records(payload, shape[0])
    config, init = _frame_network(config, init, width)
    frame_shape = shape[1:]
    out: list[np.ndarray] = []
    for record in records:
        base = None
        if record.mode != INTRA:
            field = decode_field(record.motion, field_shape(frame_shape, 2**record.block_log2))
            base = predict(norm.forward(out[-1]), field)
        out.append(norm.inverse(base, dtype) if record.mode == SKIP
                   else reconstruct(record.grid, config, init, norm, dtype, frame_shape, base))
    return np.stack(out)


class _SequenceEncoder:
    """The encoder's state along the sequence: budget spent, the decoded previous frame, the current λ."""

    def __init__(self, frames: np.ndarray, norm: Normalisation, config: GridConfig, init: Init, cfg: EncoderConfig,
                 target: RateTarget, budget: float | None, progress: ProgressFn | None, label: str) -> None:
        self.frames, self.norm, self.config, self.init, self.cfg = frames, norm, config, init, cfg
        self.target, self.budget, self.progress, self.label = target, budget, progress, label
        self.pixels = frames[0].size
        self.lam = cfg.grid.lam
        peak = (norm.value_max - norm.value_min) / norm.std or 1.0
        self.mse_goal = peak**2 * 10 ** (-(target.value or 0) / 10) if target.mode == "psnr" else 0.0
        self.spent = 1  # the width byte
        self.network_bytes = NET_BITS_PER_PARAM * param_count(config) / 8

    def frame_budget(self, t: int) -> float | None:
        """Bytes frame ``t`` may take: its share of what is left."""
        if self.budget is None:
            return None
        left, budget = len(self.frames) - t, self.budget - self.spent
        if t > 0:
            return budget / left
        floor = min(MIN_INTRA_BPP * self.pixels / 8, budget - (left - 1) * SKIP_BPP * self.pixels / 8)
        return max(budget * INTRA_WEIGHT / (INTRA_WEIGHT + left - 1), floor)

    def record(self, t: int, data: bytes, decoded: np.ndarray) -> _Record:
        error = self.norm.forward(decoded) - self.norm.forward(self.frames[t])
        return _Record(data, decoded, float(np.mean(error**2)))

    def grid_record(self, t: int, head: bytes, budget: float | None, base: np.ndarray | None) -> _Record:
        """A record whose frame (or residual from ``base``) the grid codec fits within ``budget`` bytes."""
        frame = self.frames[t]
        inner = None if budget is None else budget - len(head) - 2
        frozen = base is not None and budget is not None and budget < TRAIN_NETWORK_FROM * self.network_bytes
        opts = replace(self.cfg.grid, lr_net=0.0) if frozen else self.cfg.grid
        fit = _FrameFit(frame, self.norm, self.config, self.init, opts, base)
        latent_bits = latent_budget(inner or 0, self.init) if self.target.mode == "bpp" else None
        fit.start(self.target, latent_bits)
        stage = f"{self.label}frame {t + 1}/{len(self.frames)} {'intra' if base is None else 'inter'} fit"
        fit.train(self.target, latent_bits,
                  (lambda d, n: self.progress(stage, d, n)) if self.progress else None, inner)
        data = fit.choose_payload(self.target, inner)
        if t == 0 or base is not None:  # an intra trial's slope at an inter frame's budget is no guide
            self.lam = fit.lam
        decoded = reconstruct(data, self.config, self.init, self.norm, frame.dtype, frame.shape, base)
        return self.record(t, head + _length_prefixed(data), decoded)

    def motion(self, t: int, reference: np.ndarray, budget: float | None) -> tuple[bytes, np.ndarray]:
        """The motion part of frame ``t``'s record and its prediction: the cell size with least error + λ · rate
        among those within ``budget`` (the coarsest when none is)."""
        current = self.norm.forward(self.frames[t])
        options = []  # (within budget, cost, part, prediction), coarsest cells last
        for block_log2 in BLOCK_LOG2:
            field = estimate_field(reference, current, 2**block_log2)
            part, pred = _motion_part(block_log2, field), predict(reference, field)
            cost = float(np.mean((pred - current) ** 2)) + self.lam * 8 * len(part) / self.pixels
            options.append((budget is None or len(part) + 1 <= budget, cost, part, pred))
        fitting = [o for o in options if o[0]] or options[-1:]
        _, _, part, pred = min(fitting, key=lambda o: o[1])
        return part, pred

    def choose(self, candidates: list[_Record], budget: float | None, last: bool) -> _Record:
        """The rate-distortion choice among a frame's candidate records."""
        if self.target.mode == "psnr":
            reaching = [c for c in candidates if c.mse <= self.mse_goal]
            return min(reaching, key=lambda c: len(c.data)) if reaching else min(candidates, key=lambda c: c.mse)
        if budget is not None:
            fitting = ([c for c in candidates if len(c.data) <= OVER_BUDGET * budget]
                       or [min(candidates, key=lambda c: len(c.data))])
            if last:
                return min(fitting, key=lambda c: c.mse)
            candidates = fitting
        return min(candidates, key=lambda c: c.mse + self.lam * 8 * len(c.data) / self.pixels)

    def encode(self) -> bytes:
        records: list[bytes] = []
        reference = None
        for t in range(len(self.frames)):
            budget = self.frame_budget(t)
            if t == 0:
                chosen = self.grid_record(t, bytes([INTRA]), budget, None)
            else:
                part, pred = self.motion(t, reference, budget)
                skip = self.record(t, bytes([SKIP]) + part, self.norm.inverse(pred, self.frames.dtype))
                candidates = [skip, self.grid_record(t, bytes([INTER]) + part, budget, pred)]
                current = self.norm.forward(self.frames[t])
                if np.mean((pred - current) ** 2) > INTRA_TRY * np.var(current):
                    candidates.append(self.grid_record(t, bytes([INTRA]), budget, None))
                chosen = self.choose(candidates, budget, t == len(self.frames) - 1)
            records.append(chosen.data)
            self.spent += len(chosen.data)
            reference = self.norm.forward(chosen.decoded)
        return b"".join(records)


class MotionCompensatedCodec(ArchCodec):
    name = "grid-mc"
    joint_frames = True
    format_minor = INTERPOLATED_MINOR  # its frames are 2D grid payloads

    def plan(self, height: int, width: int, cfg: EncoderConfig, target: RateTarget,
             frame_budget: float | None, modality: str = "generic") -> GridConfig:
        """The preset's grid network (frames may use a narrower one, see :meth:`encode_frame`)."""
        return _GRID.plan(height, width, cfg, RateTarget("quality"), None, modality)

    def content_minor(self, config: GridConfig, payloads: Sequence[bytes] = ()) -> int:
        return SYMMETRIC_MINOR if config.symmetric else self.format_minor

    def config_from_bytes(self, data: bytes) -> GridConfig:
        return GridConfig.from_bytes(data)

    def load_init(self, name: str, config: GridConfig) -> Init:
        return _GRID.load_init(name, config)

    def default_init(self, config: GridConfig, modality: str, bpp: float | None = None) -> Init:
        return _GRID.default_init(config, modality, bpp)

    def encode_frame(self, frame: np.ndarray, norm: Normalisation, config: GridConfig, init: Init,
                     cfg: EncoderConfig, target: RateTarget, frame_budget: float | None,
                     progress: ProgressFn | None, label: str) -> tuple[bytes, list[str]]:
        """Payload of the whole (T, H, W) stack ``frame``; the network is narrowed (from a random init) as
        ``grid`` would for one frame's share of ``frame_budget``."""
        t, height, width = frame.shape
        if init.name == RANDOM and target.mode == "bpp":
            config = _GRID.plan(height, width, cfg, target, (frame_budget or 0) / t)
        config, init = _frame_network(config, init, config.hidden)
        encoder = _SequenceEncoder(frame, norm, config, init, cfg, target, frame_budget, progress, label)
        payload = bytes([config.hidden]) + encoder.encode()
        if target.mode != "psnr":
            return payload, []
        decoded = reconstruct_sequence(payload, config, init, norm, frame.dtype, frame.shape)
        mse = float(np.mean((norm.forward(decoded) - norm.forward(frame)) ** 2))
        return payload, psnr_shortfall(label, target, 10 * math.log10(encoder.mse_goal / mse) + (target.value or 0))

    def decode_frame(self, payload: bytes, config: GridConfig, init: Init, norm: Normalisation, dtype: np.dtype,
                     shape: tuple[int, ...]) -> np.ndarray:
        check_sequence_shape(self.name, shape)
        return reconstruct_sequence(payload, config, init, norm, dtype, shape)

    def describe(self, config: GridConfig) -> dict[str, Any]:
        return {**_GRID.describe(config), "motion_cells_px": [2**b for b in BLOCK_LOG2]}


register(MotionCompensatedCodec())
