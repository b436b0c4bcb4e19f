"""Named, content-hashed initialisations.

Every bitstream records the name and an 8-byte digest of the initialisation its parameters are
deltas from; the decoder rebuilds (or loads) that init and refuses to decode if the digest differs.
``random`` is generated from a fixed PCG64 stream by our own integer-to-float conversion, so it is
identical on every machine and library version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from medinr.errors import InitError
from medinr.models import build_model

RANDOM = "random"
_SEED = 0x6D6564696E72  # "medinr"


@dataclass(frozen=True)
class Init:
    """Parameters (in the model's ``parameters()`` order) that fitting starts from and deltas refer to."""

    name: str
    arch: str
    params: tuple[torch.Tensor, ...]
    digest: bytes

    def clone_params(self) -> list[torch.Tensor]:
        return [p.clone() for p in self.params]


def digest_of(name: str, arch: str, config_bytes: bytes, params: list[torch.Tensor]) -> bytes:
    h = hashlib.sha256(f"{name}|{arch}|".encode() + config_bytes)
    for p in params:
        h.update(np.ascontiguousarray(p.detach().numpy(), dtype="<f4").tobytes())
    return h.digest()[:8]


def _pcg_uniform(rng: np.random.Generator) -> "Any":
    def uniform(shape: torch.Size) -> torch.Tensor:
        raw = rng.bit_generator.random_raw(int(np.prod(shape)))
        values = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return torch.from_numpy(values.astype(np.float32).reshape(tuple(shape)))
    return uniform


def random_init(arch: str, config: Any) -> Init:
    """The reproducible random initialisation of an architecture and config."""
    model = build_model(arch, config)
    model.reset_parameters(_pcg_uniform(np.random.Generator(np.random.PCG64(_SEED))))
    params = [p.detach().clone() for p in model.parameters()]
    return Init(RANDOM, arch, tuple(params), digest_of(RANDOM, arch, config.to_bytes(), params))


def load_init(name: str, arch: str, config: Any) -> Init:
    """Resolve an init by name for an architecture and config."""
    if name == RANDOM:
        return random_init(arch, config)
    raise InitError(f"no initialisation named {name!r} for architecture {arch!r} is installed")


def check_digest(init: Init, expected: bytes) -> None:
    """Refuse to decode with an init other than the one the stream was made with."""
    if init.digest != expected:
        raise InitError(f"initialisation {init.name!r} on this machine (digest {init.digest.hex()}) differs from "
                        f"the one this file was encoded with (digest {expected.hex()}); "
                        "install the medinr version that wrote it")
