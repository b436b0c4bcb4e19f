"""Meta-gradients: one outer step of each algorithm moves the init and helps adaptation on a tiny task."""

from __future__ import annotations

import pytest
import torch

from medinr.meta.algorithms import Learner
from medinr.meta.inits import random_init
from medinr.meta.tasks import Task
from medinr.models.seed import SeedConfig

CONFIG = SeedConfig(scales=3, hidden=8)


@pytest.fixture
def task(mri_crop: torch.Tensor) -> Task:
    perm = torch.randperm(16 * 16, generator=torch.Generator().manual_seed(0))
    return Task(mri_crop, perm[:96], perm[96:])


def _adapted_query_loss(learner: Learner, params: dict, task: Task, lr: float) -> float:
    with torch.enable_grad():
        adapted = learner._sgd_adapt(params, lr, task, 2)
    return float(learner.loss(adapted, task, task.query))


@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "metasgd"])
def test_outer_step_changes_init_and_lowers_query_loss(task: Task, algorithm: str) -> None:
    learner = Learner(CONFIG)
    params = learner.as_dict(list(random_init("seed", CONFIG).params))
    lrs = {n: torch.full_like(p, 0.05) for n, p in params.items()} if algorithm == "metasgd" else None
    before = _adapted_query_loss(learner, params, task, 0.05)
    g = learner.meta_grad(algorithm, params, task, inner_steps=2, inner_lr=0.05, lrs=lrs)
    assert g.query_loss == pytest.approx(before, rel=1e-5)
    stepped = {n: p - 0.01 * g.params[n] for n, p in params.items()}
    assert any(not torch.equal(stepped[n], params[n]) for n in params)
    assert _adapted_query_loss(learner, stepped, task, 0.05) < before
    if algorithm == "metasgd":
        assert all(torch.isfinite(g.lrs[n]).all() and g.lrs[n].abs().sum() > 0 for n in params)


def test_second_order_term_is_present(task: Task) -> None:
    learner = Learner(CONFIG)
    params = learner.as_dict(list(random_init("seed", CONFIG).params))
    second = learner.meta_grad("maml", params, task, inner_steps=2, inner_lr=0.05).params
    first = learner.meta_grad("fomaml", params, task, inner_steps=2, inner_lr=0.05).params
    assert not all(torch.allclose(second[n], first[n]) for n in params)


def test_reptile_moves_init_towards_adapted_weights(task: Task) -> None:
    learner = Learner(CONFIG)
    params = learner.as_dict(list(random_init("seed", CONFIG).params))
    g = learner.meta_grad("reptile", params, task, inner_steps=5, inner_lr=0.01)
    stepped = {n: p - g.params[n] for n, p in params.items()}  # a full Reptile step lands on the adapted weights
    assert float(learner.loss(stepped, task, task.support)) < float(learner.loss(params, task, task.support))


def test_unknown_algorithm(task: Task) -> None:
    learner = Learner(CONFIG)
    with pytest.raises(ValueError, match="unknown meta-learning algorithm"):
        learner.meta_grad("adam", learner.as_dict(list(random_init("seed", CONFIG).params)), task, 1, 0.1)
