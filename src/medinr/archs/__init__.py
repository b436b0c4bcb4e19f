"""Architecture codecs: how one architecture turns a normalised frame into a payload and back.

The container, normalisation, metadata and rate-target plumbing live in :mod:`medinr.codec`; each
architecture implements :class:`ArchCodec` and registers itself in :data:`ARCH_CODECS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from medinr.config import EncoderConfig
from medinr.errors import BitstreamError, InputError
from medinr.meta.inits import Init
from medinr.preprocess import Normalisation
from medinr.ratecontrol import RateTarget

#: progress(stage, done, total)
ProgressFn = Callable[[str, int, int], None]


def psnr_shortfall(label: str, target: RateTarget, reached: float) -> list[str]:
    """The note for a PSNR target an encode did not reach (none when it did, or without a PSNR target)."""
    if target.mode != "psnr" or reached >= (target.value or 0):
        return []
    return [f"{label}target {target.value:.2f} dB not reached: best is {reached:.2f} dB (try --preset max)"]


def check_sequence(arch: str, frames: np.ndarray) -> None:
    """InputError unless a joint-frames architecture got a (T, H, W) stack of at least 2 frames."""
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise InputError(f"{arch} codes a sequence of at least 2 frames, got shape {frames.shape}")


def check_sequence_shape(arch: str, shape: tuple[int, ...]) -> None:
    """BitstreamError unless the header's shape is a (T, H, W) sequence."""
    if len(shape) != 3:
        raise BitstreamError(f"{arch} decodes a (T, H, W) sequence, header gives shape {shape}")


class ArchCodec(ABC):
    """One architecture's encoder and decoder for single 2D frames."""

    name: str
    #: False: ``encode_frame``/``decode_frame`` get one 2D frame at a time (one FRAME section each).
    #: True: they get the whole (N, H, W) stack at once and ``shape`` is (N, H, W) (one FRAME section),
    #: for architectures that model time or depth jointly (video).
    joint_frames: bool = False
    #: lowest container minor version (:mod:`medinr.bitstream`) whose readers decode this codec's frame payloads
    format_minor: int = 0

    def content_minor(self, config: Any, payloads: Sequence[bytes] = ()) -> int:
        """Lowest container minor version whose readers decode these frame payloads of this config
        (``format_minor`` unless a config option or a payload feature came later)."""
        return self.format_minor

    @abstractmethod
    def plan(self, height: int, width: int, cfg: EncoderConfig, target: RateTarget,
             frame_budget: float | None, modality: str = "generic") -> Any:
        """The architecture config shared by all frames (e.g. network width sized for the budget, which may
        depend on whether ``modality`` has a learned init that makes the network nearly free)."""

    @abstractmethod
    def config_from_bytes(self, data: bytes) -> Any:
        """Parse the header's arch config; raises ValueError when invalid."""

    @abstractmethod
    def load_init(self, name: str, config: Any) -> Init:
        """The initialisation named in a header (or chosen by the encoder)."""

    def default_init(self, config: Any, modality: str, bpp: float | None = None) -> Init:
        """The init an encoder starts from for this modality (a meta-learned one when installed); ``bpp``: the
        encode's bpp target, if it has one (a learned init may serve only rates near those it was learned at)."""
        from medinr.meta.inits import RANDOM

        return self.load_init(RANDOM, config)

    @abstractmethod
    def encode_frame(self, frame: np.ndarray, norm: Normalisation, config: Any, init: Init, cfg: EncoderConfig,
                     target: RateTarget, frame_budget: float | None, progress: ProgressFn | None,
                     label: str) -> tuple[bytes, list[str]]:
        """Payload of one frame of stored values, plus notes on targets not met."""

    @abstractmethod
    def decode_frame(self, payload: bytes, config: Any, init: Init, norm: Normalisation, dtype: np.dtype,
                     shape: tuple[int, int]) -> np.ndarray:
        """Stored values of one frame from its payload (raises BitstreamError on a bad payload)."""

    @abstractmethod
    def describe(self, config: Any) -> dict[str, Any]:
        """Human-readable facts for ``medinr info``: config, parameter count, decoder cost."""


ARCH_CODECS: dict[str, ArchCodec] = {}


def register(codec: ArchCodec) -> ArchCodec:
    ARCH_CODECS[codec.name] = codec
    return codec


def get_arch(name: str) -> ArchCodec:
    from medinr.archs import grid, grid_video, motion, seed, video  # noqa: F401  (registers the built-in architectures)

    if name not in ARCH_CODECS:
        raise KeyError(name)
    return ARCH_CODECS[name]
