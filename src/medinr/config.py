"""Encoder configuration: dataclasses with defaults, and the ``fast`` / ``balanced`` / ``max`` presets."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from medinr.errors import MedinrError
from medinr.fit import FitConfig


@dataclass
class EncoderConfig:
    """Everything that shapes an encode besides the rate target. CLI flags override preset values."""

    arch: str = "seed"
    activation: str = "sine"
    omega0: float = 3.0
    freqs_per_band: int = 4
    layers: int = 2
    #: hidden widths rate control may choose from, smallest first
    widths: tuple[int, ...] = (8, 12, 16, 24, 32, 48, 64)
    #: width used when no rate target is given
    default_width: int = 24
    #: coded bits per parameter that rate control assumes when sizing the network for a bpp target
    bits_per_param: float = 7.0
    #: with no target, the coarsest steps that cost at most this many dB against the float fit
    quantisation_loss_db: float = 0.3
    threads: int = 2
    fit: FitConfig = field(default_factory=FitConfig)


PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"fit": {"steps": 300, "qat_steps": 60, "batch_pixels": 8192, "lr": 1.5e-2}},
    "balanced": {"fit": {"steps": 1200, "qat_steps": 200, "batch_pixels": 16384}},
    "max": {"fit": {"steps": 4000, "qat_steps": 600, "batch_pixels": 32768, "lr": 8e-3}},
}


def preset_config(preset: str = "balanced", **overrides: Any) -> EncoderConfig:
    """The config of a preset with keyword overrides (``fit_steps=...`` reaches ``fit.steps``)."""
    if preset not in PRESETS:
        raise MedinrError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    values = PRESETS[preset]
    fit_cfg = replace(FitConfig(), **values.get("fit", {}))
    cfg = replace(EncoderConfig(), **{k: v for k, v in values.items() if k != "fit"}, fit=fit_cfg)
    fit_names = {f.name for f in fields(FitConfig)}
    enc_names = {f.name for f in fields(EncoderConfig)} - {"fit"}
    for key, value in overrides.items():
        if value is None:
            continue
        if key.startswith("fit_") and key[4:] in fit_names:
            setattr(cfg.fit, key[4:], value)
        elif key in enc_names:
            setattr(cfg, key, value)
        else:
            raise MedinrError(f"unknown encoder option {key!r}")
    return cfg
