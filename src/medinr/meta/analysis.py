"""Meta-training of the grid analysis network (:mod:`medinr.models.analysis`; issue 4, part 4).

A task is a random 256 px training crop at a log-uniform bpp target. The codec's own start
(:meth:`medinr.archs.grid._FrameFit.start`) gives its level steps, λ and the plain pyramid; the network is
trained so that the closed-loop pyramid through it (soft rounding) has a lower
``(D + λ R) / (D + λ R)_plain``, R under the start's entropy model (one zero-mean Laplace per level, scale
the level's mean magnitude: the coder's model before any fitting). Tasks are drawn once and revisited.

Measured (2026-11-26, the defaults: 100 steps over 16 tasks, 55 s on one thread): the learned start's D + λR is
0.9991 of the plain pyramid's on held-back crops (0.994-0.999 over runs with other rates and rounding stand-ins;
straight-through rounding and additive noise made it worse, 1.06-2.7). Steps to quality, 256 px crops at 0.5 bpp
(fast preset; bpp / PSNR without -> with): held-back cxr/train 0a7faa2a after 0 / 40 / 150 steps 0.633 / 25.43 ->
0.633 / 25.46, 0.502 / 30.08 -> 0.501 / 29.96, 0.503 / 30.66 -> 0.516 / 30.66; cxr/test 00000001_000 after 0 / 40
steps 0.721 / 34.98 -> 0.714 / 34.98, 0.492 / 40.38 -> 0.504 / 40.07. The closed-loop pyramid is already close
to the best start the untrained, linear synthesis allows, and the first fitting steps (which train the context
model and the synthesis MLP: +4 to +5 dB in 40 steps) dominate; so no network is shipped and encodes use the
plain pyramid. A start that pays would need a learned synthesis and context model to go with it.

``python -m medinr.meta.analysis --data ../shared/data`` trains it on the cxr, mri and cine train folders (one
thread, seeded; held-back series report the gain) and writes :data:`medinr.models.analysis.WEIGHTS`.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medinr.archs.grid import GridCodec, _FrameFit, latent_budget, pyramid_latents
from medinr.config import preset_config
from medinr.errors import InputError
from medinr.meta.grid import TASK_SIZE, _crop
from medinr.meta.inits import random_init
from medinr.meta.tasks import load_sources, split_sources
from medinr.models.analysis import WEIGHTS, AnalysisNet
from medinr.models.grid import upsample
from medinr.preprocess import Normalisation
from medinr.ratecontrol import RateTarget

TRAIN_FOLDERS = ("cxr/train", "mri/train", "cine/train")
TASK_BPPS = (0.15, 2.0)


@dataclass
class _Task:
    """One crop at one target: its fit state after the codec's start, and the plain pyramid's D + λR."""

    fit: _FrameFit
    plain: float


def _soft_round(z: torch.Tensor) -> torch.Tensor:
    """A differentiable rounding (Agustsson & Theis 2020's limit form): measured better than straight-through
    rounding (whose gradients made the start worse) and additive noise here."""
    return z - torch.sin(2 * math.pi * z) / (2 * math.pi)


def _cost(fit: _FrameFit, analysis: AnalysisNet | None,
          quantise: Callable[[torch.Tensor], torch.Tensor] = torch.round) -> torch.Tensor:
    """D + λ R / pixels of the closed-loop pyramid at the fit's steps, through ``analysis`` when given, with R
    under the start's per-level Laplace model (differentiable in the analysis network)."""
    gains = fit.model.gain.detach()
    latents = pyramid_latents(fit.target, fit.shapes, gains, fit.config.upsampling, analysis, quantise)
    rec = upsample([z * g for z, g in zip(latents, gains)], fit.shape, fit.config.upsampling).sum(0)
    with torch.no_grad():
        fit.model.level_bias[:, 1].copy_(torch.stack([z.detach().abs().mean().clamp_min(2**-4).log2()
                                                      for z in latents]))
    rate = fit.model.rate_bits(latents) / fit.pixels
    return (rec - fit.target).pow(2).mean() + fit.lam * rate


def _tasks(sources, count: int, rng: np.random.Generator) -> list[_Task]:
    """``count`` crops with the codec's start at random targets (random-init networks: what an encode has)."""
    cfg = preset_config("fast", arch="grid")
    config = GridCodec().plan(TASK_SIZE, TASK_SIZE, cfg, RateTarget("quality"), None)
    init = random_init("grid", config)
    tasks = []
    for _ in range(count):
        frame = _crop(sources, rng)
        bpp = float(np.exp(rng.uniform(*np.log(TASK_BPPS))))
        fit = _FrameFit(frame, Normalisation.of(frame), config, init, cfg.grid)
        fit.start(RateTarget("bpp", bpp), latent_budget(bpp * frame.size / 8, init))
        with torch.no_grad():
            tasks.append(_Task(fit, float(_cost(fit, None))))
    return tasks


def relative_cost(tasks: list[_Task], analysis: AnalysisNet) -> float:
    """Mean (D + λR) of the start through ``analysis`` relative to the plain pyramid's (below 1: better)."""
    with torch.no_grad():
        return float(np.mean([float(_cost(t.fit, analysis)) / t.plain for t in tasks]))


def train_analysis(paths: list[Path], *, steps: int = 100, tasks: int = 16, lr: float = 3e-4, seed: int = 0,
                   progress=None) -> tuple[AnalysisNet, dict]:
    """Train the analysis network; returns it and its training record (held-back relative cost included)."""
    torch.manual_seed(seed)
    sources, _ = load_sources(paths)
    train, held = split_sources(sources, 0.2, seed)
    rng = np.random.default_rng(seed)
    train_tasks, held_tasks = _tasks(train, tasks, rng), _tasks(held, max(4, tasks // 6), rng)
    net = AnalysisNet()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for step in range(steps):
        task = train_tasks[step % len(train_tasks)]
        loss = _cost(task.fit, net, _soft_round) / task.plain
        opt.zero_grad()
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        opt.step()
        if progress:
            progress(step + 1, steps)
    net.requires_grad_(False)
    record = {"steps": steps, "tasks": tasks, "lr": lr, "seed": seed, "task_size": TASK_SIZE,
              "task_bpps": TASK_BPPS, "train_relative_cost": relative_cost(train_tasks, net),
              "held_relative_cost": relative_cost(held_tasks, net), "held_series": [s.name for s in held]}
    return net, record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (../shared/data)")
    parser.add_argument("--output", type=Path, default=WEIGHTS)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=16)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        net, record = train_analysis([args.data / p for p in TRAIN_FOLDERS], steps=args.steps, tasks=args.tasks,
                                     progress=lambda d, t: print(f"step {d}/{t}", flush=True) if d % 100 == 0 else None)
    except InputError as exc:
        sys.exit(f"error: {exc}")
    record["command"] = (f"nice -n 10 python -m medinr.meta.analysis --data {shlex.quote(str(args.data))} "
                         f"--steps {args.steps} --tasks {args.tasks}")
    record["seconds"] = round(time.perf_counter() - start, 1)
    net.save(args.output, record)
    print(f"{args.output}: held-back D + λR relative to the plain pyramid {record['held_relative_cost']:.4f} "
          f"(train {record['train_relative_cost']:.4f}), {record['seconds']:.0f} s")


if __name__ == "__main__":
    main()
