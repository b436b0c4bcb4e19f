"""The grid analysis network: identity when untrained, saved and loaded exactly, bad files refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medinr.archs.grid import pyramid_latents
from medinr.errors import InitError
from medinr.models.analysis import AnalysisNet
from medinr.models.grid import GridConfig


def _pyramid(analysis: AnalysisNet | None) -> list[torch.Tensor]:
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.standard_normal((32, 32)).astype(np.float32))
    config = GridConfig(levels=4)
    gains = 0.1 * 2.0 ** -torch.arange(4, dtype=torch.float32)
    return pyramid_latents(target, config.level_shapes(32, 32), gains, "bilinear", analysis)


def test_untrained_network_gives_the_plain_pyramid() -> None:
    for plain, analysed in zip(_pyramid(None), _pyramid(AnalysisNet())):
        assert torch.equal(plain, analysed)


def test_a_trained_network_changes_the_start_and_survives_save_and_load(tmp_path) -> None:
    net = AnalysisNet()
    with torch.no_grad():
        net.convs[-1].bias.fill_(0.7)  # pushes every latent up by 0.7 step before rounding
    assert any(not torch.equal(a, b) for a, b in zip(_pyramid(None), _pyramid(net)))
    path = tmp_path / "analysis.pt"
    net.save(path, {"steps": 1})
    loaded = AnalysisNet.load(path)
    for a, b in zip(_pyramid(net), _pyramid(loaded)):
        assert torch.equal(a, b)


def test_bad_files_are_refused_by_name(tmp_path) -> None:
    with pytest.raises(InitError, match="not found"):
        AnalysisNet.load(tmp_path / "missing.pt")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"not a torch file")
    with pytest.raises(InitError, match="damaged.pt is unreadable"):
        AnalysisNet.load(damaged)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(InitError, match="format"):
        AnalysisNet.load(other)
