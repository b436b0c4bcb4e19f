"""The grid context features, against a position-by-position definition, in 2D and (t, y, x)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from medinr.entropy.context import anchors
from medinr.models.grid import context_features, context_inputs


def _by_definition(current: np.ndarray, parent: np.ndarray | None) -> np.ndarray:
    """One column per position (row-major): parent 3x3 (spatial) around the co-located sample, zero outside;
    on odd index sums the face neighbours (previous, next along each axis) and a 1, else zeros."""
    columns = []
    for pos in itertools.product(*map(range, current.shape)):
        col = []
        if parent is None:
            col += [0.0] * 9
        else:
            at = [p // (1 if parent.shape[a] == current.shape[a] else 2) for a, p in enumerate(pos)]
            for dy, dx in itertools.product((-1, 0, 1), repeat=2):
                y, x = at[-2] + dy, at[-1] + dx
                inside = 0 <= y < parent.shape[-2] and 0 <= x < parent.shape[-1]
                col.append(float(parent[(*at[:-2], y, x)]) if inside else 0.0)
        second = sum(pos) % 2 == 1
        for axis in range(current.ndim):
            for step in (-1, 1):
                q = list(pos)
                q[axis] += step
                inside = 0 <= q[axis] < current.shape[axis]
                col.append(float(current[tuple(q)]) if second and inside else 0.0)
        col.append(1.0 if second else 0.0)
        columns.append(col)
    return np.array(columns).T


@pytest.mark.parametrize("shape, parent_shape", [((5, 7), (3, 4)), ((5, 7), None), ((3, 5, 6), (3, 3, 3)),
                                                 ((4, 4, 5), (2, 2, 3))])
def test_features_match_the_definition_and_passes_select_columns(shape, parent_shape) -> None:
    rng = np.random.default_rng(0)
    current = rng.integers(-9, 10, shape).astype(np.float64)
    parent = None if parent_shape is None else rng.integers(-9, 10, parent_shape).astype(np.float64)
    features = context_features(torch.from_numpy(current), None if parent is None else torch.from_numpy(parent))
    expected = _by_definition(current, parent)
    assert features.shape == (context_inputs(len(shape)), current.size)
    np.testing.assert_array_equal(features.numpy(), expected)
    for checker_pass, mask in enumerate((anchors(shape), ~anchors(shape))):
        masked = context_features(torch.from_numpy(current), None if parent is None else torch.from_numpy(parent),
                                  checker_pass)
        np.testing.assert_array_equal(masked.numpy(), expected[:, mask.reshape(-1)])
