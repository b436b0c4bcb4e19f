"""INR architectures behind one interface: a frozen config dataclass with ``to_bytes``/``from_bytes``
and an ``nn.Module`` whose ``forward(index, sizes)`` returns per-scale contributions (P, S)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from medinr.models.seed import SeedConfig, SeedINR


@dataclass(frozen=True)
class Architecture:
    name: str
    config_type: type
    model_type: type[nn.Module]


ARCHITECTURES: dict[str, Architecture] = {"seed": Architecture("seed", SeedConfig, SeedINR)}


def with_params(model: nn.Module, params: Sequence[torch.Tensor]) -> nn.Module:
    """``model`` holding copies of ``params`` (in ``parameters()`` order); the one place a decoder loads weights."""
    with torch.no_grad():
        for p, value in zip(model.parameters(), params):
            p.copy_(value.reshape(p.shape))
    return model


def build_model(arch: str, config: Any) -> nn.Module:
    """Instantiate an architecture's network from its config."""
    return ARCHITECTURES[arch].model_type(config)


def config_from_bytes(arch: str, data: bytes) -> Any:
    return ARCHITECTURES[arch].config_type.from_bytes(data)


from medinr.models import grid as _grid  # noqa: E402,F401  (registers the "grid" architecture)
