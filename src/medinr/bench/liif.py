"""LIIF (Chen et al., 2021) as a codec: a JPEG 2000 base layer at half resolution, upsampled by a LIIF decoder.

Encoder: the image is edge-padded to even sides, averaged over 2 x 2 blocks (rounded to its stored dtype) and
coded with the JPEG 2000 baseline (:class:`medinr.bench.baselines.Jpeg2000`) at the rate parameter, its
compression ratio. Decoder: the decoded base layer, normalised by its own minimum and maximum, goes through a
small convolutional feature encoder; for every full-resolution pixel an MLP takes the nearest latent feature,
the coordinate relative to that feature's centre and the cell size (LIIF without local ensemble or feature
unfolding) and predicts the pixel as a residual over the bilinear upsampling of the base layer. The
decoder is trained once on the train split with JPEG 2000-coded base layers
(``python -m medinr.bench.liif train OUT.pt``) and shipped as :data:`WEIGHTS`.

File: uvarints height and width, one byte (bits - 1, signed flag), then the JPEG 2000 codestream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from medinr.bench.autoencoder import (
    WEIGHTS_DIR,
    TrainPatches,
    fit,
    load_weights,
    pad_to,
    save_weights,
    train_cli,
)
from medinr.bench.baselines import BaselineCodec, Jpeg2000, _geometric, storage_dtype
from medinr.errors import BitstreamError
from medinr.varint import read_uvarint, write_uvarint

WEIGHTS = WEIGHTS_DIR / "liif.pt"
SCALE = 2
FEATURES, HIDDEN = 32, 64
#: Queries per MLP call on decode (bounds memory on large images).
CHUNK = 1 << 16
#: Training range of the base layer's bits per base pixel (JPEG 2000 ratio = bits / this).
BASE_BPP_RANGE = (0.15, 8.0)
_FILE = "liif file"


def pixel_centres(height: int, width: int) -> torch.Tensor:
    """(height * width, 2) pixel centres (y, x) in [-1, 1], LIIF's coordinate convention."""
    ys = (2 * torch.arange(height) + 1) / height - 1
    xs = (2 * torch.arange(width) + 1) / width - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)


class Liif(nn.Module):
    """Conv feature encoder on the low-resolution image and the LIIF MLP over (feature, relative coord, cell)."""

    def __init__(self, features: int = FEATURES, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, features, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(features, features, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(features, features, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(features, features, 3, padding=1))
        self.mlp = nn.Sequential(nn.Linear(features + 4, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, low: torch.Tensor, height: int, width: int, chunk: int = CHUNK) -> torch.Tensor:
        """The ``(B, 1, height, width)`` image from a ``(B, 1, h, w)`` low-resolution one."""
        batch, _, h, w = low.shape
        feat = self.encoder(low)
        centres = pixel_centres(h, w).T.reshape(1, 2, h, w).expand(batch, -1, -1, -1)
        size = torch.tensor([h, w], dtype=low.dtype)
        cell = torch.tensor([2 / height, 2 / width], dtype=low.dtype) * size
        coords = pixel_centres(height, width)
        out = []
        for part in torch.split(coords, chunk):
            grid = part.flip(-1).reshape(1, 1, -1, 2).expand(batch, -1, -1, -1)  # grid_sample wants (x, y)
            nearest = F.grid_sample(feat, grid, mode="nearest", align_corners=False)[:, :, 0].transpose(1, 2)
            centre = F.grid_sample(centres, grid, mode="nearest", align_corners=False)[:, :, 0].transpose(1, 2)
            base = F.grid_sample(low, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0, 0]
            rel = (part - centre) * size
            query = torch.cat([nearest, rel, cell.expand_as(rel)], dim=-1)
            out.append(base + self.mlp(query)[..., 0])
        return torch.cat(out, dim=1).reshape(batch, 1, height, width)


def downscale(data: np.ndarray) -> np.ndarray:
    """2 x 2 block means of the edge-padded image, rounded to its dtype: the base layer's pixels."""
    x = pad_to(data, SCALE).astype(np.float64)
    blocks = x.reshape(x.shape[0] // SCALE, SCALE, x.shape[1] // SCALE, SCALE).mean(axis=(1, 3))
    return np.rint(blocks).astype(data.dtype)


def _normalised(low: np.ndarray) -> tuple[torch.Tensor, float, float]:
    lo, hi = float(low.min()), float(low.max())
    span = max(hi - lo, 1.0)
    return torch.from_numpy(((low - lo) / span).astype(np.float32))[None, None], lo, span


class LiifCodec(BaselineCodec):
    """JPEG 2000 base layer at half resolution plus a trained LIIF decoder (see the module doc)."""

    name = "liif"
    rate_param = "base-layer JPEG 2000 compression ratio"
    rate_increases_bpp = False
    lossless_rate = None
    log_rate = True
    native_signed = True
    min_side = SCALE * Jpeg2000.min_side
    weights: Path = WEIGHTS

    def __init__(self) -> None:
        self.base = Jpeg2000()

    def available(self) -> str | None:
        return self.base.available()

    def rate_range(self, bits: int) -> tuple[float, float]:
        return self.base.rate_range(bits)

    def sweep(self, bits: int) -> list[float]:
        # total bpp ~ base bpp / SCALE**2: from bits / 4 down to 0.05 bpp
        return [bits / (SCALE**2 * t) for t in _geometric(bits / SCALE**2, 0.05, 10)]

    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        height, width = data.shape
        flags = (bits - 1) | (int(data.dtype.kind == "i") << 4)
        head = write_uvarint(height) + write_uvarint(width) + bytes([flags])
        return head + self.base._encode(downscale(data), rate, bits)

    def _decode(self, data: bytes) -> np.ndarray:
        model = load_weights(self.weights, Liif)
        height, pos = read_uvarint(data, 0, _FILE)
        width, pos = read_uvarint(data, pos, _FILE)
        if pos >= len(data) or not (0 < height < 1 << 16 and 0 < width < 1 << 16):
            raise BitstreamError(f"{_FILE} header is corrupted or truncated ({len(data)} bytes)")
        bits, signed = (data[pos] & 15) + 1, bool(data[pos] & 16)
        try:
            low = self.base._decode(data[pos + 1:])
        except (RuntimeError, ValueError) as exc:
            raise BitstreamError(f"{_FILE} has a corrupted JPEG 2000 base layer ({exc})") from exc
        side = (-(-height // SCALE), -(-width // SCALE))
        if low.shape != side or bits < 2:
            raise BitstreamError(f"{_FILE} is corrupted: base layer {low.shape}, header implies {side}")
        x, lo, span = _normalised(low)
        with torch.no_grad():
            up = model(x, SCALE * side[0], SCALE * side[1])[0, 0, :height, :width].numpy().astype(np.float64)
        dtype = storage_dtype(bits, signed)
        vmin, vmax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        return np.clip(np.rint(up * span + lo), vmin, vmax).astype(dtype)


# ---------------------------------------------------------------- training (train split only)

def train(out: Path, *, seconds: float = 660.0, seed: int = 0, patch: int = 64, batch: int = 8) -> dict[str, Any]:
    """Train the LIIF decoder for ``seconds`` (one thread) on train-split patches whose base layers are coded
    with JPEG 2000 at a random ratio (8-bit, as :meth:`LiifCodec._encode` does), and save it to ``out``."""
    torch.manual_seed(seed)
    data = TrainPatches(patch, seed)
    rng = np.random.default_rng(seed + 1)
    base = Jpeg2000()
    model = Liif()

    def base_layer(image: np.ndarray) -> torch.Tensor:
        ratio = max(8.0 / float(np.exp(rng.uniform(*np.log(BASE_BPP_RANGE)))), 1.0)
        low = downscale(np.rint(image * 255).astype(np.uint8))
        return _normalised(base.decode(base.encode(low, ratio, bits=8, signed=False), bits=8, signed=False))

    def loss_of() -> torch.Tensor:
        target = data.batch(batch)
        lows, los, spans = zip(*(base_layer(t[0].numpy()) for t in target))
        shift = torch.tensor(los, dtype=torch.float32)[:, None, None, None] / 255
        span = torch.tensor(spans, dtype=torch.float32)[:, None, None, None] / 255
        pred = model(torch.cat(lows), patch, patch) * span + shift
        return torch.mean((pred - target) ** 2)

    steps = fit(model, loss_of, seconds, lr=1e-3)
    info = {"seed": seed, "seconds": seconds, "steps": steps, "patch": patch, "batch": batch,
            "base_bpp_range": BASE_BPP_RANGE,
            "command": f"python -m medinr.bench.liif train {out} --seconds {seconds:g} --seed {seed}"}
    save_weights(model, out, info)
    return info


if __name__ == "__main__":
    train_cli("Train the LIIF baseline's decoder on the train split.", train, WEIGHTS)
