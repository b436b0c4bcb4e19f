"""INR architectures behind one interface: a frozen config dataclass with ``to_bytes``/``from_bytes``
and an ``nn.Module`` whose ``forward(index, sizes)`` returns per-scale contributions (P, S)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from medinr.models.seed import SeedConfig, SeedINR


@dataclass(frozen=True)
class Architecture:
    name: str
    config_type: type
    model_type: type[nn.Module]


ARCHITECTURES: dict[str, Architecture] = {"seed": Architecture("seed", SeedConfig, SeedINR)}


def build_model(arch: str, config: Any) -> nn.Module:
    """Instantiate an architecture's network from its config."""
    return ARCHITECTURES[arch].model_type(config)


def config_from_bytes(arch: str, data: bytes) -> Any:
    return ARCHITECTURES[arch].config_type.from_bytes(data)
