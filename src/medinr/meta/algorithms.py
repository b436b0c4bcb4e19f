"""Meta-gradients of one task for MAML (second order), first-order MAML, Reptile and Meta-SGD.

Parameters travel as ``{name: tensor}`` dicts evaluated with ``torch.func.functional_call``, so the
inner loop is a pure function of the init and second-order MAML is ``torch.func.grad`` of a loop of
``torch.func.grad`` steps. The inner loop of the MAML family is plain gradient descent on the support
pixels (step ``inner_lr``, or Meta-SGD's learned per-parameter steps); Reptile's inner loop is Adam
(as in Nichol et al. 2018), the optimiser the codec itself fits with, and its meta-gradient is
``init - adapted``. The query loss is the MSE on the query pixels after adaptation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import functional_call, grad

from medinr.meta.tasks import Task
from medinr.models.seed import SeedConfig, SeedINR

ALGORITHMS = ("maml", "fomaml", "reptile", "metasgd")

Params = dict[str, torch.Tensor]


@dataclass
class MetaGrad:
    """One task's gradient for the init (and for Meta-SGD's inner rates), and its query loss after adaptation."""

    params: Params
    lrs: Params | None
    query_loss: float


class Learner:
    """A seed network evaluated functionally on a task's pixel subsets."""

    def __init__(self, config: SeedConfig) -> None:
        self.model = SeedINR(config)
        self.names = [name for name, _ in self.model.named_parameters()]

    def as_dict(self, tensors: list[torch.Tensor]) -> Params:
        return dict(zip(self.names, tensors))

    def loss(self, params: Params, task: Task, flat: torch.Tensor) -> torch.Tensor:
        """MSE of the summed scales on the task pixels ``flat``."""
        index, target = task.pixels(flat)
        pred = functional_call(self.model, params, (index, task.sizes)).sum(dim=1)
        return (pred - target).pow(2).mean()

    def _sgd_adapt(self, params: Params, lrs: Params | float, task: Task, steps: int) -> Params:
        support_grad = grad(lambda p: self.loss(p, task, task.support))
        for _ in range(steps):
            g = support_grad(params)
            params = {n: params[n] - (lrs[n] if isinstance(lrs, dict) else lrs) * g[n] for n in params}
        return params

    def _adam_adapt(self, params: Params, lr: float, task: Task, steps: int) -> Params:
        leaves = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
        opt = torch.optim.Adam(leaves.values(), lr=lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            self.loss(leaves, task, task.support).backward()
            opt.step()
        return {n: p.detach() for n, p in leaves.items()}

    def _query_aux(self, params: Params, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
        loss = self.loss(params, task, task.query)
        return loss, loss.detach()

    def meta_grad(self, algorithm: str, params: Params, task: Task, inner_steps: int, inner_lr: float,
                  lrs: Params | None = None) -> MetaGrad:
        """The meta-gradient of one task (``lrs``: Meta-SGD's per-parameter inner steps)."""
        params = {n: p.detach() for n, p in params.items()}
        if algorithm in ("maml", "metasgd"):
            def adapted_query(p: Params, rates: Params | float) -> tuple[torch.Tensor, torch.Tensor]:
                return self._query_aux(self._sgd_adapt(p, rates, task, inner_steps), task)

            if algorithm == "maml":
                g_params, loss = grad(adapted_query, has_aux=True)(params, inner_lr)
                return MetaGrad(g_params, None, float(loss))
            if lrs is None:
                raise ValueError("metasgd needs per-parameter inner rates")
            rates = {n: r.detach() for n, r in lrs.items()}
            (g_params, g_lrs), loss = grad(adapted_query, argnums=(0, 1), has_aux=True)(params, rates)
            return MetaGrad(g_params, g_lrs, float(loss))
        if algorithm == "fomaml":
            adapted = {n: p.detach() for n, p in self._sgd_adapt(params, inner_lr, task, inner_steps).items()}
            g_params, loss = grad(self._query_aux, has_aux=True)(adapted, task)
            return MetaGrad(g_params, None, float(loss))
        if algorithm == "reptile":
            adapted = self._adam_adapt(params, inner_lr, task, inner_steps)
            with torch.no_grad():
                loss = self.loss(adapted, task, task.query)
            return MetaGrad({n: params[n] - adapted[n] for n in params}, None, float(loss))
        raise ValueError(f"unknown meta-learning algorithm {algorithm!r}: choose one of {', '.join(ALGORITHMS)}")
