"""COIN (Dupont et al., 2021): a SIREN fitted to one image, its weights stored as float16, nothing else.

As published: coordinates in [-1, 1], a sine MLP with omega_0 = 30 in every sine layer and SIREN
initialisation, a linear output layer, full-image MSE with Adam at learning rate 2e-4, the weights with
the lowest training loss kept and cast to float16 (no quantisation-aware training, no entropy coding, no
meta-learning). Rate points are network sizes: for a target bpp the codec takes the widest network of
``depth`` sine layers whose file fits the target. COIN trained 50,000 steps on a GPU; ``steps`` here is
the CPU budget and is recorded in every result.

File: a 16-byte header (``<HHBBHff``: height, width, depth, width of the layers, packed bits-1 / signed,
value range low and high) followed by the float16 parameters in layer order.
"""

from __future__ import annotations

import itertools
import math
import struct
from typing import Any

import numpy as np

from medinr.bench.baselines import BaselineCodec, _geometric
from medinr.errors import BitstreamError, RateControlError

_HEADER = struct.Struct("<HHBBHff")
OMEGA0 = 30.0
LEARNING_RATE = 2e-4


def siren_parameters(width: int, depth: int) -> int:
    """Parameter count of a 2 -> width (x depth sine layers) -> 1 SIREN."""
    return 3 * width + (depth - 1) * (width * width + width) + width + 1


def _siren(width: int, depth: int) -> Any:
    import torch

    class Siren(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dims = [2] + [width] * depth
            self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in itertools.pairwise(dims))
            self.out = torch.nn.Linear(width, 1)
            with torch.no_grad():
                for i, layer in enumerate(self.layers):
                    bound = 1.0 / layer.in_features if i == 0 else math.sqrt(6.0 / layer.in_features) / OMEGA0
                    layer.weight.uniform_(-bound, bound)
                bound = math.sqrt(6.0 / width) / OMEGA0
                self.out.weight.uniform_(-bound, bound)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in self.layers:
                x = torch.sin(OMEGA0 * layer(x))
            return self.out(x)

    return Siren()


def _grid(height: int, width: int) -> Any:
    import torch

    ys = torch.linspace(-1.0, 1.0, height)
    xs = torch.linspace(-1.0, 1.0, width)
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)


class Coin(BaselineCodec):
    """COIN as published (see the module doc); ``rate`` is the target bpp, met by the network size."""

    name = "coin"
    rate_param = "target bpp (network size)"
    rate_increases_bpp = True
    lossless_rate = None
    log_rate = True
    native_signed = True
    max_bits = 16
    min_side = 2
    depth: int = 5
    steps: int = 2000
    seed: int = 0

    def rate_range(self, bits: int) -> tuple[float, float]:
        return 0.01, float(bits)

    def sweep(self, bits: int) -> list[float]:
        return _geometric(0.1, 2.0, 5)

    def width_for(self, target_bpp: float, num_pixels: int) -> int:
        """The widest network of ``depth`` sine layers whose file fits ``target_bpp``."""
        budget = target_bpp * num_pixels / 8 - _HEADER.size
        widths = [w for w in range(2, 256) if 2 * siren_parameters(w, self.depth) <= budget]
        if not widths:
            raise RateControlError(f"coin: {target_bpp:g} bpp cannot hold even a width-2 SIREN of depth "
                                   f"{self.depth} on {num_pixels} pixels")
        return widths[-1]

    def _encode(self, data: np.ndarray, rate: float, bits: int) -> bytes:
        import torch

        height, width = data.shape
        layer_width = self.width_for(rate, data.size)
        lo, hi = float(data.min()), float(data.max())
        span = hi - lo if hi > lo else 1.0
        target = torch.from_numpy(((data.astype(np.float64) - lo) / span).astype(np.float32).reshape(-1, 1))
        coords = _grid(height, width)
        torch.manual_seed(self.seed)
        model = _siren(layer_width, self.depth)
        optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        best, best_state = math.inf, None
        for _ in range(self.steps):
            optimiser.zero_grad()
            loss = torch.mean((model(coords) - target) ** 2)
            if loss.item() < best:
                best, best_state = loss.item(), [p.detach().clone() for p in model.parameters()]
            loss.backward()
            optimiser.step()
        params = torch.cat([p.reshape(-1) for p in best_state or model.parameters()])
        flags = (bits - 1) | (int(data.dtype.kind == "i") << 4)
        header = _HEADER.pack(height, width, self.depth, layer_width, flags, lo, lo + span)
        return header + params.detach().numpy().astype("<f2").tobytes()

    def _parse(self, data: bytes) -> tuple[tuple[int, ...], np.ndarray]:
        if len(data) < _HEADER.size:
            raise BitstreamError(f"coin file of {len(data)} bytes is shorter than its header")
        fields = _HEADER.unpack_from(data)
        height, width, depth, layer_width = fields[:4]
        expected = _HEADER.size + 2 * siren_parameters(layer_width, depth)
        if min(height, width, depth, layer_width) < 1 or len(data) != expected:
            raise BitstreamError(f"coin file is corrupted: {len(data)} bytes, its header implies {expected}")
        return fields, np.frombuffer(data, dtype="<f2", offset=_HEADER.size).astype(np.float32)

    def _decode(self, data: bytes) -> np.ndarray:
        import torch

        (height, width, depth, layer_width, flags, lo, hi), params = self._parse(data)
        bits, signed = (flags & 15) + 1, bool(flags & 16)
        model = _siren(layer_width, depth)
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.from_numpy(params), model.parameters())
            values = model(_grid(height, width)).numpy().reshape(height, width).astype(np.float64)
        x = lo + values * (hi - lo)
        vmin, vmax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        return np.clip(np.rint(x), vmin, vmax).astype(np.int32)

    def describe(self, data: bytes) -> dict[str, Any]:
        (_, _, depth, layer_width, *_), params = self._parse(data)
        return {"parameters": int(params.size), "model_bytes": 2 * int(params.size), "width": layer_width,
                "depth": depth, "fit_steps": self.steps}
