"""A learned transform codec in the style of Ballé et al. (2017) / CompressAI's factorized prior, CPU-sized.

Analysis: four 5x5 stride-2 convolutions with GDN between them, so the latent is 1/16 of the image side;
synthesis: the mirror image with transposed convolutions and inverse GDN. Quantisation: ``round(y / q)``,
where the step ``q`` is the rate parameter, so one network covers the whole rate range: it is trained with a
random ``q`` per batch (log-uniform, :data:`Q_RANGE`) on ``log(bpp + K * mse / q**2)`` (the Lagrangian of the
rate point ``q``; additive uniform noise for the rate term, straight-through rounding for the distortion).
Entropy model: every latent channel is a zero-mean quantised Laplace whose scale is fitted to the image and
sent as one byte (an index of :mod:`medinr.entropy`'s log-spaced grid, 0 for an all-zero channel); the symbols
are coded with constriction's range coder. Input: 2-16 bit grey values, normalised to [0, 1] by the image's
own minimum and maximum (in the header), edge-padded to a multiple of 16, cropped on decode.

File: uvarints height, width, low, high, largest |symbol| and payload words; float32 ``q``; one scale byte
per latent channel; the range coder's 32-bit words. ``bpp = 8 * len(file) / pixels`` counts all of it.

The network is trained once on the train split (``python -m medinr.bench.autoencoder train OUT.pt``, see
:func:`train`) and shipped as :data:`WEIGHTS`; this module also holds the train-split patch sampler and the
time-budgeted training loop that :mod:`medinr.bench.liif` shares.
"""

from __future__ import annotations

import argparse
import math
import struct
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import constriction
import numpy as np
import torch
from torch import nn

from medinr.bench.baselines import BaselineCodec, _geometric
from medinr.bench.datasets import default_data_root
from medinr.entropy import (
    LAPLACE,
    SCALE_OFFSET,
    SCALE_STEPS_PER_OCTAVE,
    TensorModel,
    _bin_probabilities,
)
from medinr.errors import BitstreamError, InitError
from medinr.varint import read_uvarint, write_uvarint

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "data" / "bench"
WEIGHTS = WEIGHTS_DIR / "autoencoder.pt"
CHANNELS, LATENT = 40, 40
#: Side multiple of the analysis transform (four stride-2 layers).
BLOCK = 16
#: Training range of the quantisation step, and the Lagrange constant of the rate point ``q``: K / q**2.
Q_RANGE = (0.125, 8.0)
K = 3000.0
_Q = struct.Struct("<f")
_FILE = "autoencoder file"


# ---------------------------------------------------------------- networks

class Gdn(nn.Module):
    """Generalised divisive normalisation (Ballé et al. 2016), or its inverse, with |.| keeping it positive."""

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(0.1 * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.sqrt(nn.functional.conv2d(x * x, self.gamma.abs()[:, :, None, None], self.beta.abs() + 1e-6))
        return x * norm if self.inverse else x / norm


class AutoEncoder(nn.Module):
    """Analysis ``1 -> CHANNELS -> ... -> LATENT`` at 1/16 of the side, and its mirrored synthesis."""

    def __init__(self, channels: int = CHANNELS, latent: int = LATENT) -> None:
        super().__init__()
        sides = [1, channels, channels, channels, latent]
        down: list[nn.Module] = []
        up: list[nn.Module] = []
        for i in range(4):
            down.append(nn.Conv2d(sides[i], sides[i + 1], 5, stride=2, padding=2))
            up.append(nn.ConvTranspose2d(sides[4 - i], sides[3 - i], 5, stride=2, padding=2, output_padding=1))
            if i < 3:
                down.append(Gdn(sides[i + 1]))
                up.append(Gdn(sides[3 - i], inverse=True))
        self.analysis = nn.Sequential(*down)
        self.synthesis = nn.Sequential(*up)


def laplace_bits(symbols: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Bits of (noisy) integer ``symbols`` under zero-mean Laplace bins ``[k - 1/2, k + 1/2]`` of ``scale``."""
    tail = -symbols.abs()  # the mass is symmetric; the negative side keeps both CDF values small and exact
    mass = 0.5 * (torch.exp(torch.clamp((tail + 0.5) / scale, max=0.0)) - torch.exp((tail - 0.5) / scale))
    mass = torch.where(tail > -0.5, 1.0 - torch.exp(-0.5 / scale) * torch.cosh(tail / scale), mass)
    return -torch.log2(mass.clamp_min(1e-9)).sum()


# ---------------------------------------------------------------- weights

def save_weights(model: nn.Module, path: Path, info: dict[str, Any]) -> None:
    """The state dict in float16 (the shipped file stays small) plus how it was made."""
    state = {k: v.detach().to(torch.float16) for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": state, "info": info}, path)


@lru_cache(maxsize=4)
def load_weights(path: Path, build: Callable[[], nn.Module]) -> nn.Module:
    """The shipped network at ``path`` in float32 eval mode; InitError naming the file when it is missing."""
    if not path.is_file():
        raise InitError(f"the trained network {path} is missing: train it with "
                        f"`python -m {build.__module__} train {path}`")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = build()
        model.load_state_dict({k: v.float() for k, v in saved["state"].items()})
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        raise InitError(f"the trained network {path} is unreadable or of another shape ({exc})") from exc
    return model.eval()


# ---------------------------------------------------------------- codec

def pad_to(x: np.ndarray, block: int) -> np.ndarray:
    """Edge-replicate the bottom and right of a 2D array to multiples of ``block``."""
    return np.pad(x, ((0, -x.shape[0] % block), (0, -x.shape[1] % block)), mode="edge")


def _scale_indices(symbols: np.ndarray, bound: int) -> np.ndarray:
    """Per channel of (C, n) symbols: the Laplace scale index of least code length, 0 for all-zero channels."""
    indices = np.arange(1, 256)
    scales = 2.0 ** ((indices - SCALE_OFFSET) / SCALE_STEPS_PER_OCTAVE)
    values = np.arange(-bound, bound + 1)
    log_mass = np.log2(_bin_probabilities(LAPLACE, scales, values.astype(np.float64)))  # (scales, values)
    counts = np.stack([np.bincount(c + bound, minlength=values.size) for c in symbols])  # (C, values)
    best = indices[np.argmin(-counts @ log_mass.T, axis=1)]
    return np.where(np.any(symbols != 0, axis=1), best, 0).astype(np.uint8)


class AutoEncoderCodec(BaselineCodec):
    """Learned transform codec (Ballé 2017 style, see the module doc); ``rate`` is the latent step q."""

    name = "autoencoder"
    rate_param = "latent quantisation step"
    rate_increases_bpp = False
    lossless_rate = None
    log_rate = True
    weights: Path = WEIGHTS

    def rate_range(self, bits: int) -> tuple[float, float]:
        return 1 / 64, 64.0

    def sweep(self, bits: int) -> list[float]:
        return _geometric(0.25, 16.0, 7)  # finer steps add rate, not quality, to the trained network

    def _model(self) -> AutoEncoder:
        return load_weights(self.weights, AutoEncoder)

    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        height, width = data.shape
        lo, hi = int(data.min()), int(data.max())
        x = (pad_to(data, BLOCK).astype(np.float32) - lo) / max(hi - lo, 1) - 0.5
        q = float(np.float32(rate))
        with torch.no_grad():
            y = self._model().analysis(torch.from_numpy(x)[None, None])[0].numpy()
        symbols = np.rint(y / q).astype(np.int32).reshape(y.shape[0], -1)
        bound = int(np.abs(symbols).max())
        scales = _scale_indices(symbols, bound)
        coder = constriction.stream.queue.RangeEncoder()
        for channel, index in zip(symbols, scales):
            if index:
                coder.encode(channel, TensorModel(LAPLACE, int(index), -bound, bound).constriction_model())
        words = coder.get_compressed()
        head = b"".join(write_uvarint(v) for v in (height, width, lo, hi, bound, words.size))
        return head + _Q.pack(q) + scales.tobytes() + words.astype("<u4").tobytes()

    def _decode(self, data: bytes) -> np.ndarray:
        model = self._model()
        pos, fields = 0, []
        for _ in range(6):
            value, pos = read_uvarint(data, pos, _FILE)
            fields.append(value)
        height, width, lo, hi, bound, num_words = fields
        latent = model.synthesis[0].in_channels
        end = pos + _Q.size + latent + 4 * num_words
        if len(data) != end or not (0 < height < 1 << 16 and 0 < width < 1 << 16 and lo <= hi < 1 << 16):
            raise BitstreamError(f"{_FILE} is corrupted or truncated: {len(data)} bytes, {height}x{width} image, "
                                 f"its header implies {end} bytes")
        (q,) = _Q.unpack_from(data, pos)
        scales = np.frombuffer(data, np.uint8, latent, pos + _Q.size)
        if not (math.isfinite(q) and q > 0):
            raise BitstreamError(f"{_FILE} is corrupted: quantisation step {q}")
        words = np.frombuffer(data, "<u4", offset=pos + _Q.size + latent).astype(np.uint32)
        decoder = constriction.stream.queue.RangeDecoder(words)
        side = (-(-height // BLOCK), -(-width // BLOCK))
        symbols = np.zeros((latent, side[0] * side[1]), np.float32)
        try:
            for c in np.flatnonzero(scales):
                model_c = TensorModel(LAPLACE, int(scales[c]), -bound, bound).constriction_model()
                symbols[c] = decoder.decode(model_c, symbols.shape[1])
        except Exception as exc:  # constriction raises plain errors on garbage input
            raise BitstreamError(f"{_FILE} has a corrupted payload ({exc})") from exc
        with torch.no_grad():
            x = model.synthesis(torch.from_numpy(symbols * np.float32(q)).reshape(1, latent, *side))[0, 0].numpy()
        values = (x[:height, :width].astype(np.float64) + 0.5) * max(hi - lo, 1) + lo
        return np.clip(np.rint(values), lo, hi).astype(np.int32)


# ---------------------------------------------------------------- training (train split only)

def _train_images(root: Path) -> dict[str, list[np.ndarray]]:
    """2D images of the train split by kind: X-rays, MRI slices (middle 60 % of each axis), cine frames."""
    from medinr.io import read

    out: dict[str, list[np.ndarray]] = {"cxr": [], "mri": [], "cine": []}
    for path in sorted((root / "cxr" / "train").glob("*.jpg")):
        out["cxr"].append(read(path).pixels)
    for path in sorted((root / "mri" / "train").glob("*.nii*")):
        volume = read(path).pixels
        for axis in range(3):
            n = volume.shape[axis]
            out["mri"] += [np.take(volume, i, axis=axis) for i in range(int(0.2 * n), int(0.8 * n), 2)]
    for folder in sorted(p for p in (root / "cine" / "train").iterdir() if p.is_dir()):
        out["cine"] += list(read(folder).pixels)
    return out


class TrainPatches:
    """Random square patches of the train split, each normalised to [0, 1] by its own min and max (as the
    codecs normalise each image), flipped and transposed at random; kinds drawn with equal probability."""

    def __init__(self, size: int, seed: int, root: Path | None = None) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.images = {k: [(im, float(np.ptp(im))) for im in v if min(im.shape) >= size]
                       for k, v in _train_images(root or default_data_root()).items()}

    def patch(self) -> np.ndarray:
        images = self.images[str(self.rng.choice(list(self.images)))]
        for _ in range(20):  # skip near-empty background
            image, span = images[self.rng.integers(len(images))]
            i, j = (self.rng.integers(s - self.size + 1) for s in image.shape)
            crop = image[i:i + self.size, j:j + self.size].astype(np.float32)
            lo, hi = crop.min(), crop.max()
            if hi - lo > 0.05 * span:
                break
        crop = (crop - lo) / max(hi - lo, 1.0)
        if self.rng.random() < 0.5:
            crop = crop[::-1]
        if self.rng.random() < 0.5:
            crop = crop.T
        return np.ascontiguousarray(crop, dtype=np.float32)

    def batch(self, n: int) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.patch() for _ in range(n)]))[:, None]


def fit(model: nn.Module, loss_of: Callable[[], torch.Tensor], seconds: float, lr: float,
        log: Callable[[str], None] = print) -> int:
    """Adam on ``loss_of()`` until ``seconds`` have passed, learning rate cosine-decayed to 5 % over the
    budget; returns the number of steps."""
    torch.set_num_threads(1)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    start, steps, running = time.monotonic(), 0, 0.0
    while (elapsed := time.monotonic() - start) < seconds:
        for group in optimiser.param_groups:
            group["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * elapsed / seconds)))
        optimiser.zero_grad()
        loss = loss_of()
        if not torch.isfinite(loss):  # a rare degenerate batch (e.g. GDN near zero): skip it
            continue
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        steps += 1
        running = 0.98 * running + 0.02 * loss.item()
        if steps % 200 == 0:
            log(f"step {steps} {elapsed:.0f}s loss {running:.4f}")
    return steps


def train(out: Path, *, seconds: float = 660.0, seed: int = 0, patch: int = 64, batch: int = 8) -> dict[str, Any]:
    """Train the autoencoder on train-split patches for ``seconds`` (one thread) and save it to ``out``."""
    torch.manual_seed(seed)
    data = TrainPatches(patch, seed)
    model = AutoEncoder()
    rng = np.random.default_rng(seed + 1)

    def loss_of() -> torch.Tensor:
        x = data.batch(batch) - 0.5
        q = float(np.exp(rng.uniform(*np.log(Q_RANGE))))
        y = model.analysis(x) / q
        noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        scale = noisy.abs().mean(dim=(2, 3), keepdim=True).clamp_min(0.05)
        bpp = laplace_bits(noisy, scale) / x.numel()
        rounded = y + (torch.round(y) - y).detach()
        mse = torch.mean((model.synthesis(rounded * q) - x) ** 2)
        return torch.log(bpp + K * mse / q**2)

    steps = fit(model, loss_of, seconds, lr=1e-3)
    info = {"seed": seed, "seconds": seconds, "steps": steps, "patch": patch, "batch": batch, "q_range": Q_RANGE,
            "k": K, "command": f"python -m medinr.bench.autoencoder train {out} --seconds {seconds:g} --seed {seed}"}
    save_weights(model, out, info)
    return info


def train_cli(description: str, train_fn: Callable[..., dict[str, Any]], default: Path) -> None:
    """``python -m MODULE train OUT.pt [--seconds S] [--seed N]``: the shared command line of the trainers."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("command", choices=["train"])
    parser.add_argument("out", type=Path, nargs="?", default=default)
    parser.add_argument("--seconds", type=float, default=660.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(train_fn(args.out, seconds=args.seconds, seed=args.seed))


if __name__ == "__main__":
    train_cli("Train the autoencoder baseline on the train split.", train, WEIGHTS)
