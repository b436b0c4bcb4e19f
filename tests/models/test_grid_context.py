"""The grid context features, against a position-by-position definition, in 2D and (t, y, x)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from medinr.entropy.context import (
    MAX_ABS_LATENT,
    MEAN_FRAC,
    SCALE_INDEX_RANGE,
    SCALE_STEPS,
    anchors,
    fixed_point,
    pass_masks,
)
from medinr.models.grid import (
    _W_FRAC,
    _W_MAX,
    GridConfig,
    GridModel,
    _round_hidden,
    context_features,
    context_inputs,
)


def _by_definition(current: np.ndarray, parent: np.ndarray | None, magnitudes: bool = False) -> np.ndarray:
    """One column per position (row-major): parent 3x3 (spatial) around the co-located sample, zero outside;
    on odd index sums the face neighbours (previous, next along each axis) and a 1, else zeros. With
    ``magnitudes`` the parent values and the face values are each followed by their absolute values."""
    columns = []
    for pos in itertools.product(*map(range, current.shape)):
        hood = []
        if parent is None:
            hood += [0.0] * 9
        else:
            at = [p // (1 if parent.shape[a] == current.shape[a] else 2) for a, p in enumerate(pos)]
            for dy, dx in itertools.product((-1, 0, 1), repeat=2):
                y, x = at[-2] + dy, at[-1] + dx
                inside = 0 <= y < parent.shape[-2] and 0 <= x < parent.shape[-1]
                hood.append(float(parent[(*at[:-2], y, x)]) if inside else 0.0)
        second = sum(pos) % 2 == 1
        faces = []
        for axis in range(current.ndim):
            for step in (-1, 1):
                q = list(pos)
                q[axis] += step
                inside = 0 <= q[axis] < current.shape[axis]
                faces.append(float(current[tuple(q)]) if second and inside else 0.0)
        extra = (lambda values: [abs(v) for v in values]) if magnitudes else (lambda values: [])
        columns.append(hood + extra(hood) + faces + extra(faces) + [1.0 if second else 0.0])
    return np.array(columns).T


@pytest.mark.parametrize("magnitudes", [False, True])
@pytest.mark.parametrize("shape, parent_shape", [((5, 7), (3, 4)), ((5, 7), None), ((5, 7), (5, 7)), ((3, 5, 6), (3, 3, 3)),
                                                 ((4, 4, 5), (2, 2, 3))])
def test_features_match_the_definition_and_passes_select_columns(shape, parent_shape, magnitudes) -> None:
    rng = np.random.default_rng(0)
    current = rng.integers(-9, 10, shape).astype(np.float64)
    parent = None if parent_shape is None else rng.integers(-9, 10, parent_shape).astype(np.float64)
    parent_tensor = None if parent is None else torch.from_numpy(parent)
    features = context_features(torch.from_numpy(current), parent_tensor, magnitudes=magnitudes)
    expected = _by_definition(current, parent, magnitudes)
    assert features.shape == (context_inputs(len(shape), magnitudes), current.size)
    np.testing.assert_array_equal(features.numpy(), expected)
    for checker_pass, mask in enumerate((anchors(shape), ~anchors(shape))):
        masked = context_features(torch.from_numpy(current), parent_tensor, checker_pass, magnitudes)
        np.testing.assert_array_equal(masked.numpy(), expected[:, mask.reshape(-1)])


@pytest.mark.parametrize("shape, parent_shape, magnitudes", [
    ((16, 16), (8, 8), False), ((9, 13), (5, 7), False), ((8, 6), None, False), ((40, 300), (20, 150), False),
    ((3, 5, 6), (3, 3, 3), False), ((5, 9, 8), (3, 5, 4), False), ((4, 3, 4), None, False),
    ((7, 160, 130), (4, 80, 65), False), ((9, 13), (5, 7), True), ((12, 10), (12, 10), True), ((8, 6), None, True),
    ((40, 300), (20, 150), True)])
def test_exact_pass_predictor_matches_the_gathered_features(shape, parent_shape, magnitudes) -> None:
    """The coder's sliced passes give, to the bit, the context network on the gathered features (checked against
    the definition above) at the pass's positions, in 2D and (t, y, x) (a parent keeping the frames, or halving
    them), with and without magnitudes; (40, 300) and (7, 160, 130) span several blocks."""
    rng = np.random.default_rng(2)
    model = GridModel(GridConfig(levels=2, dims=len(shape), context_magnitudes=magnitudes))
    with torch.no_grad():
        for p in model.entropy_parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.5, p.shape)))
    current = rng.integers(-40, 41, shape).astype(np.float64)
    parent = None if parent_shape is None else rng.integers(-40, 41, parent_shape).astype(np.float64)
    level = 0 if parent is not None else 1
    w1, b1, w2, b2, bias = [torch.from_numpy(np.clip(fixed_point(p.detach().double().numpy(), _W_FRAC),
                                                     -_W_MAX, _W_MAX)) for p in model.entropy_parameters()]
    features = context_features(torch.from_numpy(current), None if parent is None else torch.from_numpy(parent),
                                magnitudes=magnitudes)
    hidden = _round_hidden(torch.relu(b1[:, None] + w1 @ features))
    full = ((b2 + bias[level])[:, None] + w2 @ hidden).numpy()
    predict = model.exact_predictor()
    for checker_pass, mask in enumerate(pass_masks(shape)):
        means, indices = predict(level, current, parent, checker_pass)
        selected = full[:, mask.reshape(-1)]
        np.testing.assert_array_equal(means, np.clip(fixed_point(selected[0], MEAN_FRAC),
                                                     -MAX_ABS_LATENT, MAX_ABS_LATENT))
        np.testing.assert_array_equal(indices, np.clip(np.rint(selected[1] * SCALE_STEPS), *SCALE_INDEX_RANGE))


@pytest.mark.parametrize("shape, parent_shape, magnitudes", [((37, 52), (19, 26), False), ((5, 21, 18), (3, 11, 9), False),
                                                             ((37, 52), (19, 26), True)])
def test_training_context_matches_the_gathered_features(shape, parent_shape, magnitudes) -> None:
    """The differentiable (float) context of a whole level is the same function as on the gathered features."""
    rng = np.random.default_rng(3)
    model = GridModel(GridConfig(levels=2, dims=len(shape), context_magnitudes=magnitudes))
    current = torch.from_numpy(rng.normal(0, 3, shape).astype(np.float32))
    parent = torch.from_numpy(rng.normal(0, 3, parent_shape).astype(np.float32))
    w1, b1, w2, b2, bias = model.entropy_parameters()
    with torch.no_grad():
        w2.copy_(torch.from_numpy(rng.normal(0, 0.5, w2.shape)))
        features = context_features(current, parent, magnitudes=magnitudes)
        expected = (b2 + bias[0])[:, None] + w2 @ torch.relu(b1[:, None] + w1 @ features)
        got = model._context(0, current, parent, [w1, b1, w2, b2, bias], lambda h: h)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("shape, parent_shape, magnitudes", [((37, 52), (19, 26), False), ((5, 21, 18), (3, 11, 9), False),
                                                             ((37, 52), (19, 26), True)])
def test_training_context_gradient_matches_the_gathered_features(shape, parent_shape, magnitudes, monkeypatch) -> None:
    """Values and network gradients of the sliced context equal the gathered definition's when a level is evaluated
    in several blocks (the sub-grids are joined and interleaved, not written in place)."""
    monkeypatch.setattr("medinr.models.grid.CONTEXT_CHUNK", 40)
    rng = np.random.default_rng(4)
    # float64: sums in any order agree
    model = GridModel(GridConfig(levels=2, dims=len(shape), context_magnitudes=magnitudes)).double()
    current = torch.from_numpy(rng.normal(0, 3, shape))
    parent = torch.from_numpy(rng.normal(0, 3, parent_shape))
    weights = model.entropy_parameters()
    w1, b1, w2, b2, bias = weights
    upstream = torch.from_numpy(rng.normal(0, 1, (2, current.numel())))

    def gradients(contexts: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.autograd.grad((contexts * upstream).sum(), weights))

    features = context_features(current, parent, magnitudes=magnitudes)
    expected = (b2 + bias[0])[:, None] + w2 @ torch.relu(b1[:, None] + w1 @ features)
    got = model._context(0, current, parent, weights, lambda h: h)
    torch.testing.assert_close(got, expected)
    for g, e in zip(gradients(got), gradients(expected)):
        torch.testing.assert_close(g, e)


def test_batched_levels_match_each_levels_own_context_and_rate() -> None:
    """Training evaluates a wavelet level's three subbands as one batch (:meth:`GridModel.rate_contexts`): the same
    Laplace parameters as each level alone, with its own level bias, and the rate is the sum of the levels'."""
    rng = np.random.default_rng(5)
    config = GridConfig(levels=2, upsampling="cdf97-symmetric", hidden=4, context_magnitudes=True)
    model = GridModel(config).double()
    weights = model.entropy_parameters()
    with torch.no_grad():
        for p in weights:
            p.copy_(torch.from_numpy(rng.normal(0, 0.5, p.shape)))
    latents = [torch.from_numpy(rng.normal(0, 3, shape)) for shape in config.level_shapes(20, 28)]
    parents = config.parents()
    contexts = model.rate_contexts(latents)
    assert len(contexts) == len(latents) == 7
    expected_bits = 0.0
    for s, (z, p) in enumerate(zip(latents, parents)):
        alone = model._context(s, z, None if p is None else latents[p], weights, lambda h: h)
        torch.testing.assert_close(contexts[s].reshape(2, -1), alone)
        expected_bits += float(model.rate_bits([z], [alone.reshape(2, *z.shape)]))
    assert float(model.rate_bits(latents)) == pytest.approx(expected_bits, rel=1e-12)


@pytest.mark.parametrize("config, size", [
    (GridConfig(levels=2, upsampling="cdf97-symmetric", hidden=4, context_magnitudes=True), (20, 28)),
    (GridConfig(levels=3, dims=3, static=1), (4, 12, 10))])
def test_an_encoders_known_levels_predictor_matches_the_decoders_pass_by_pass(config, size) -> None:
    """The encoder's predictor (:meth:`GridModel.exact_predictor` given every level, evaluated in batches with both
    passes at once) answers each pass exactly as the decoder's, which sees only the parent and the level's anchors
    by the second pass; checked to fail when a pass is answered from the other pass's positions."""
    rng = np.random.default_rng(7)
    model = GridModel(config)
    with torch.no_grad():
        for p in model.entropy_parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.5, p.shape)))
    levels = [rng.integers(-20, 21, shape).astype(np.int64) for shape in config.level_shapes(*size)]
    known, decoder = model.exact_predictor(levels), model.exact_predictor()
    for s, (z, p) in enumerate(zip(levels, config.parents())):
        parent = None if p is None else levels[p].astype(np.float64)
        seen = np.zeros(z.shape)
        for checker_pass, mask in enumerate(pass_masks(z.shape)):
            for got, expected in zip(known(s, seen, parent, checker_pass), decoder(s, seen, parent, checker_pass)):
                np.testing.assert_array_equal(got, expected)
            seen[mask] = z[mask]
