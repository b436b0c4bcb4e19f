"""A NeRV-style baseline (Chen et al., NeurIPS 2021): a frame index to a whole frame through an MLP and a
stack of 3x3 convolution + pixel-shuffle blocks, fitted per sequence; the weights are quantised (about 8
bits: 255 levels per tensor, zero-centred) and entropy-coded with medinr's coder; a CRC-32 closes the file
(the entropy decoder is not meant to see damaged data).

Frame-index models pay for their weights once per sequence, so they are at their best on long videos; on
the 20-phase cine loops here the weights dominate the file. ``rate`` is the channel count (model size).
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from medinr.entropy import decode_tensors, encode_tensors
from medinr.errors import BitstreamError
from medinr.video.baselines import VideoBaseline

_CONFIG = struct.Struct("<BBB")
#: quantisation levels each side of zero (symbols in [-LEVELS, LEVELS])
LEVELS = 127


def _stages(height: int, width: int) -> int:
    """Pixel-shuffle (x2) stages: the first feature map is about 8 px on the smaller side."""
    return max(1, min(5, int(math.log2(min(height, width))) - 3))


class NervNet(nn.Module):
    """t in [0, 1] -> positional encoding -> MLP -> (C, h0, w0) -> [conv 3x3 to 4C, shuffle x2, GELU] x s -> conv 3x3 -> frame."""

    def __init__(self, channels: int, hidden: int, freqs: int, height: int, width: int) -> None:
        super().__init__()
        self.stages = _stages(height, width)
        self.h0, self.w0 = math.ceil(height / 2**self.stages), math.ceil(width / 2**self.stages)
        self.height, self.width, self.channels = height, width, channels
        self.register_buffer("freqs", math.pi * 1.25 ** torch.arange(freqs, dtype=torch.float32), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * freqs, hidden), nn.GELU(),
                                 nn.Linear(hidden, channels * self.h0 * self.w0), nn.GELU())
        self.blocks = nn.ModuleList(nn.Conv2d(channels, 4 * channels, 3, padding=1) for _ in range(self.stages))
        self.head = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t[:, None] * self.freqs
        x = self.mlp(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1))
        x = x.view(len(t), self.channels, self.h0, self.w0)
        for conv in self.blocks:
            x = nn.functional.gelu(nn.functional.pixel_shuffle(conv(x), 2))
        return self.head(x)[:, 0, :self.height, :self.width]


def _times(frames: int) -> torch.Tensor:
    return torch.arange(frames, dtype=torch.float32) / max(1, frames - 1)


class Nerv(VideoBaseline):
    """NeRV-style frame-index INR, ``rate`` = channels (hidden width 2x, 16 frequencies)."""

    name = "nerv"
    rate_param = "channels"
    max_bits = 16
    steps: ClassVar[int] = 600
    lr: ClassVar[float] = 5e-3
    freqs: ClassVar[int] = 16
    #: torch threads while training (one, like the other anchors)
    threads: ClassVar[int] = 1

    def sweep(self) -> list[float]:
        return [16.0, 12.0, 8.0, 6.0, 4.0]

    def _fit(self, target: torch.Tensor, channels: int) -> NervNet:
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._train(target, channels)
        finally:
            torch.set_num_threads(previous)

    def _train(self, target: torch.Tensor, channels: int) -> NervNet:
        torch.manual_seed(0)
        frames, height, width = target.shape
        net = NervNet(channels, 2 * channels, self.freqs, height, width)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.steps, eta_min=self.lr * 0.02)
        t = _times(frames)
        for _ in range(self.steps):
            opt.zero_grad(set_to_none=True)
            loss = (net(t) - target).pow(2).mean()
            loss.backward()
            opt.step()
            sched.step()
        return net

    def _encode(self, samples: np.ndarray, bits: int, rate: float, fps: float) -> bytes:
        channels = int(rate)
        target = torch.from_numpy(samples.astype(np.float32) / (2**bits - 1))
        net = self._fit(target, channels)
        steps, symbols = [], []
        for p in net.parameters():
            w = p.detach().numpy().astype(np.float64)
            step = np.float32(max(float(np.abs(w).max()), 1e-12) / LEVELS)
            steps.append(step)
            symbols.append(np.rint(w / step).astype(np.int64))
        body = (_CONFIG.pack(channels, 2 * channels, self.freqs) + np.asarray(steps, dtype="<f4").tobytes()
                + encode_tensors(symbols))
        return body + struct.pack("<I", zlib.crc32(body))

    def _decode(self, data: bytes, bits: int, shape: tuple[int, int, int]) -> np.ndarray:
        if len(data) < _CONFIG.size + 4 or struct.unpack("<I", data[-4:])[0] != zlib.crc32(data[:-4]):
            raise BitstreamError("nerv file truncated or corrupted (CRC-32 mismatch)")
        data = data[:-4]
        channels, hidden, freqs = _CONFIG.unpack_from(data)
        if not (channels and hidden and freqs):
            raise BitstreamError("nerv file has a corrupted configuration")
        net = NervNet(channels, hidden, freqs, shape[1], shape[2])
        params = list(net.parameters())
        pos = _CONFIG.size + 4 * len(params)
        if len(data) < pos:
            raise BitstreamError("nerv file truncated (steps)")
        steps = np.frombuffer(data[_CONFIG.size:pos], dtype="<f4")
        symbols = decode_tensors(data[pos:], [p.numel() for p in params])
        with torch.no_grad():
            for p, q, step in zip(params, symbols, steps):
                p.copy_(torch.from_numpy((np.asarray(q, dtype=np.float32) * step).reshape(p.shape)))
            out = net(_times(shape[0])).numpy()
        return np.clip(np.rint(out * (2**bits - 1)), 0, 2**bits - 1).astype(np.uint8 if bits <= 8 else np.uint16)
