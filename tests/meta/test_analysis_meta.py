"""Meta-training of the grid analysis network on real training crops (a few steps)."""

from __future__ import annotations

import math

from medinr.meta.analysis import train_analysis


def test_training_runs_on_real_crops_and_reports_its_gain(shared_data) -> None:
    net, record = train_analysis([shared_data / "cxr" / "train"], steps=2, tasks=2)
    assert record["steps"] == 2 and record["held_series"]
    # relative to the plain pyramid: finite, and near 1 after two small steps from the identity
    assert math.isfinite(record["held_relative_cost"]) and 0.5 < record["held_relative_cost"] < 2
    assert any(p.abs().sum() > 0 for p in net.convs[-1].parameters())
