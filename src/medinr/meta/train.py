"""``meta_train``: learn a modality's per-scale seed initialisation from its training images.

Each outer step draws ``tasks_per_batch`` tasks (:mod:`medinr.meta.tasks`), takes every width's
meta-gradient on each (:mod:`medinr.meta.algorithms`) and applies their mean with Adam (step
``outer_lr``), or for Reptile with plain SGD (``outer_lr`` = the interpolation factor). Every
``val_every`` steps the init is scored the way the codec will use it: the mean
PSNR after ``val_fit_steps`` codec fitting steps on fixed tasks from held-back series; the best init
per width is kept and written, with a record of how it was made, as an :class:`~medinr.meta.inits.InitFile`.
A checkpoint (by default ``<output>.ckpt``) holds everything needed to continue bit-exactly.
With ``clip_frames`` the tasks are (frames, size, size) clips and the network is the ``seed-video`` one
(``coord_dims=3``), scored with the sequence fitter; its init is the modality's video init (``seed-cine``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medinr.errors import InputError, MedinrError
from medinr.io.common import atomic_write
from medinr.meta.algorithms import ALGORITHMS, Learner
from medinr.meta.evaluate import default_seed_config, fit_psnr
from medinr.meta.inits import MODALITY_FAMILY, InitFile, init_name_for, random_init
from medinr.meta.tasks import Task, TaskSampler, load_sources, split_sources
from medinr.models.seed import SeedConfig

#: progress(step, total, stats): stats has "query_loss" each step, "val_psnr" on validation steps
MetaProgress = Callable[[int, int, dict[str, float]], None]

#: inner step sizes that work for z-scored images: plain gradient descent (MAML family) and Adam (Reptile)
DEFAULT_INNER_LR = {"maml": 0.05, "fomaml": 0.05, "metasgd": 0.05, "reptile": 0.01}
#: outer steps: Adam's step for the MAML family, Reptile's interpolation factor (init += eps * (adapted - init))
DEFAULT_OUTER_LR = {"maml": 1e-3, "fomaml": 1e-3, "metasgd": 1e-3, "reptile": 0.1}
ARCH = "seed"


@dataclass
class MetaTrainResult:
    """What :func:`meta_train` made and measured (PSNRs in dB on held-back tasks, per width)."""

    output: Path
    name: str
    algorithm: str
    config: SeedConfig
    widths: tuple[int, ...]
    steps: int
    best_step: dict[int, int]
    best_val_psnr: dict[int, float]
    random_val_psnr: dict[int, float]
    #: width -> fitting steps -> {"meta": psnr, "random": psnr}
    summary: dict[int, dict[int, dict[str, float]]]
    history: list[dict[str, float]]
    train_series: list[str]
    val_series: list[str]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        """A few lines for a terminal: how much better the meta-init fits held-back images than random."""
        lines = [f"{self.name} ({self.algorithm}, {self.steps} steps, {self.seconds:.0f} s) -> {self.output}"]
        for w, table in self.summary.items():
            cells = ", ".join(f"{n} steps {v['meta']:.2f} vs {v['random']:.2f} dB" for n, v in table.items())
            lines.append(f"  width {w} (best at step {self.best_step[w]}): meta vs random init: {cells}")
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def _val_psnr(images: list[np.ndarray], config: SeedConfig, params: Sequence[torch.Tensor], steps: int) -> float:
    from medinr.video.fit import fit_sequence_psnr

    fit = fit_psnr if config.coord_dims == 2 else fit_sequence_psnr
    return float(np.mean([fit(img, config, params, steps) for img in images]))


def meta_train(modality: str, paths: Sequence[Path], output: Path, *, algorithm: str = "maml", steps: int = 300,
               inner_steps: int = 3, inner_lr: float | None = None, outer_lr: float | None = None,
               tasks_per_batch: int = 4,
               task_size: int = 128, seed_config: SeedConfig | None = None, widths: Sequence[int] | None = None,
               support_pixels: int = 4096, query_pixels: int | None = 8192, whole_fraction: float = 0.5,
               val_paths: Sequence[Path] | None = None, val_fraction: float = 0.2,
               val_tasks: int = 8, val_every: int = 25, val_fit_steps: int = 50,
               summary_steps: Sequence[int] = (50, 100), seed: int = 0, threads: int | None = 1,
               clip_frames: int = 0,
               checkpoint: Path | None = None, resume: bool = False,
               progress: MetaProgress | None = None) -> MetaTrainResult:
    """Meta-learn the ``seed`` init of ``modality`` from the images under ``paths`` and write it to ``output``.

    - ``modality``: cxr, mri or cine (cine trains the ``seed-mri`` family, which serves both).
    - ``paths``: image files or folders (searched recursively; a sub-folder's files form one series).
    - ``output``: the init file (``.pt``) to write; ``checkpoint``: where the resumable state is saved at
      every validation (default ``<output>.ckpt``).
    - ``algorithm``: ``maml`` (second order), ``fomaml``, ``reptile`` (Adam inner loop) or ``metasgd``
      (learned per-parameter inner steps, used during meta-training only).
    - ``steps``: outer steps; ``inner_steps``: adaptation steps per task; ``inner_lr``: their step size
      (default per algorithm, :data:`DEFAULT_INNER_LR`); ``outer_lr``: Adam step of the init for the
      MAML family, the interpolation factor towards the mean adapted weights (plain SGD on
      ``init - adapted``) for Reptile (default :data:`DEFAULT_OUTER_LR`).
    - ``tasks_per_batch``: tasks per outer step; ``task_size``: side of a task in pixels, which fixes the
      number of meta-learned scales (``SeedConfig.scales_for``); ``support_pixels``: size of a task's
      support set; ``query_pixels``: size of its query set, drawn from the other pixels (None: all of
      them), which bounds the cost of large tasks; ``whole_fraction``: share of tasks that are
      whole slices rather than crops.
    - ``seed_config``: network shape (its ``scales`` is replaced by the task size's); default: the
      codec's default config; ``widths``: hidden widths to meta-learn (default: ``seed_config.hidden``).
    - ``val_paths``: held-back images (default: ``val_fraction`` of the series, by a seeded draw);
      ``val_tasks`` fixed whole slices of them (what the codec fits) at the task size, scored every
      ``val_every`` steps by the PSNR after ``val_fit_steps`` codec fitting steps; the best init is
      kept. ``summary_steps``: fitting budgets of the final meta-vs-random comparison.
    - ``clip_frames``: > 0 meta-learns the video init: tasks are clips of that many frames
      (:class:`~medinr.meta.tasks.TaskSampler`), the config gets ``coord_dims=3``.
    - ``seed``: every random draw; ``threads``: torch threads during training (restored after; 1 makes
      the result reproducible bit for bit), None leaves them.
    - ``resume``: continue from the checkpoint when it exists and was made with the same arguments
      (``steps`` may grow); ``progress(step, steps, stats)`` is called after every outer step.
    """
    started = time.perf_counter()
    if clip_frames:
        from medinr.archs.video import VIDEO_INITS as families
    else:
        families = {m: init_name_for(ARCH, m) for m in MODALITY_FAMILY}
    name = families.get(modality)
    if name is None:
        raise InputError(f"no meta-learned init for modality {modality!r}: choose one of {', '.join(families)}")
    if algorithm not in ALGORITHMS:
        raise InputError(f"unknown meta-learning algorithm {algorithm!r}: choose one of {', '.join(ALGORITHMS)}")
    inner_lr = DEFAULT_INNER_LR[algorithm] if inner_lr is None else inner_lr
    outer_lr = DEFAULT_OUTER_LR[algorithm] if outer_lr is None else outer_lr
    if steps < 0 or inner_steps < 1 or tasks_per_batch < 1 or task_size < 8 or val_tasks < 1 or val_every < 1:
        raise InputError("meta-train needs steps >= 0, inner_steps >= 1, tasks_per_batch >= 1, task_size >= 8, "
                         "val_tasks >= 1 and val_every >= 1")
    output = Path(output)
    if not output.parent.is_dir():
        raise InputError(f"output folder {output.parent} does not exist")
    config = replace(seed_config or default_seed_config(), scales=SeedConfig.scales_for(task_size, task_size),
                     coord_dims=3 if clip_frames else 2)
    widths = tuple(widths or (config.hidden,))
    args = {"modality": modality, "paths": [str(p) for p in paths], "algorithm": algorithm,
            "inner_steps": inner_steps, "inner_lr": inner_lr, "outer_lr": outer_lr,
            "tasks_per_batch": tasks_per_batch, "task_size": task_size, "seed_config": asdict(config),
            "widths": list(widths), "support_pixels": support_pixels, "query_pixels": query_pixels,
            "whole_fraction": whole_fraction,
            "val_paths": None if val_paths is None else [str(p) for p in val_paths], "val_fraction": val_fraction,
            "val_tasks": val_tasks, "val_every": val_every, "val_fit_steps": val_fit_steps, "seed": seed,
            **({"clip_frames": clip_frames} if clip_frames else {})}

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        sources, notes = load_sources(list(paths))
        if val_paths is None:
            train_sources, val_sources = split_sources(sources, val_fraction, seed)
        else:
            val_sources, val_notes = load_sources(list(val_paths))
            notes += val_notes
            train_sources = sources
            shared = {s.name for s in train_sources} & {s.name for s in val_sources}
            if shared:
                raise InputError(f"series used for both training and validation: {', '.join(sorted(shared))}")
        sampler = TaskSampler(train_sources, task_size, support_pixels, seed, query_pixels, whole_fraction,
                              clip_frames=clip_frames)
        val_sampler = TaskSampler(val_sources, task_size, support_pixels, seed + 1, whole_fraction=1.0,
                                  clip_frames=clip_frames)
        val_images = [val_sampler.crop(i).numpy() for i in range(val_tasks)]  # round-robin over held-back series
        configs = {w: replace(config, hidden=w) for w in widths}
        learners = {w: Learner(c) for w, c in configs.items()}
        randoms = {w: list(random_init(ARCH, c).params) for w, c in configs.items()}
        params = {w: [p.clone().requires_grad_(True) for p in randoms[w]] for w in widths}
        lrs = {w: [torch.full_like(p, inner_lr).requires_grad_(True) for p in randoms[w]]
               for w in widths} if algorithm == "metasgd" else {}
        outer = torch.optim.SGD if algorithm == "reptile" else torch.optim.Adam
        opts = {w: outer(params[w] + lrs.get(w, []), lr=outer_lr) for w in widths}
        random_psnr = {w: _val_psnr(val_images, configs[w], randoms[w], val_fit_steps) for w in widths}
        best = {w: {"step": 0, "psnr": random_psnr[w], "params": [p.clone() for p in randoms[w]]} for w in widths}
        history: list[dict[str, float]] = []
        start = 0

        ckpt = Path(checkpoint) if checkpoint is not None else output.with_name(output.name + ".ckpt")
        if resume and ckpt.exists():
            state = _load_checkpoint(ckpt, args)
            start, history = state["step"], json.loads(state["history"])
            sampler.rng.bit_generator.state = json.loads(state["rng"])
            for w in widths:
                key = str(w)
                with torch.no_grad():
                    for p, v in zip(params[w] + lrs.get(w, []), state["params"][key] + state["lrs"].get(key, [])):
                        p.copy_(v)
                opts[w].load_state_dict(state["opt"][key])
                best[w] = {"step": int(state["best"][key]["step"]), "psnr": float(state["best"][key]["psnr"]),
                           "params": list(state["best"][key]["params"])}
        elif resume:
            notes.append(f"no checkpoint at {ckpt}: started afresh")

        for step in range(start, steps):
            tasks = sampler.tasks(tasks_per_batch)
            stats = {"query_loss": float(np.mean([_outer_step(algorithm, learners[w], params[w], lrs.get(w),
                                                              opts[w], tasks, inner_steps, inner_lr)
                                                  for w in widths]))}
            if (step + 1) % val_every == 0 or step + 1 == steps:
                for w in widths:
                    psnr = _val_psnr(val_images, configs[w], [p.detach() for p in params[w]], val_fit_steps)
                    stats[f"val_psnr_{w}"] = psnr
                    if psnr > best[w]["psnr"]:
                        best[w] = {"step": step + 1, "psnr": psnr, "params": [p.detach().clone() for p in params[w]]}
                stats["val_psnr"] = float(np.mean([stats[f"val_psnr_{w}"] for w in widths]))
                history.append({"step": step + 1, **stats})
                _save_checkpoint(ckpt, args, step + 1, history, sampler, params, lrs, opts, best)
            if progress:
                progress(step + 1, steps, stats)

        summary = {w: {n: {"meta": _val_psnr(val_images, configs[w], best[w]["params"], n),
                           "random": _val_psnr(val_images, configs[w], randoms[w], n)} for n in summary_steps}
                   for w in widths}
    finally:
        torch.set_num_threads(previous_threads)

    result = MetaTrainResult(output, name, algorithm, config, widths, steps, {w: b["step"] for w, b in best.items()},
                             {w: b["psnr"] for w, b in best.items()}, random_psnr, summary, history,
                             [s.name for s in train_sources], [s.name for s in val_sources], notes,
                             time.perf_counter() - started)
    record = {"arguments": {**args, "steps": steps}, "best_step": result.best_step,
              "best_val_psnr": result.best_val_psnr, "random_val_psnr": random_psnr, "summary": summary,
              "train_series": result.train_series, "val_series": result.val_series, "torch": torch.__version__}
    InitFile.from_training(name, ARCH, modality, config, {w: b["params"] for w, b in best.items()},
                           json.loads(json.dumps(record))).save(output)
    return result


def _outer_step(algorithm: str, learner: Learner, params: list[torch.Tensor], lrs: list[torch.Tensor] | None,
                opt: torch.optim.Optimizer, tasks: list[Task], inner_steps: int, inner_lr: float) -> float:
    """One optimiser step of the init (and inner rates) on the mean meta-gradient of ``tasks``; mean query loss."""
    named = learner.as_dict(params)
    named_lrs = learner.as_dict(lrs) if lrs else None
    grads = [learner.meta_grad(algorithm, named, task, inner_steps, inner_lr, named_lrs) for task in tasks]
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        for name, p in named.items():
            p.grad = torch.stack([g.params[name] for g in grads]).mean(0)
        if named_lrs:
            for name, r in named_lrs.items():
                r.grad = torch.stack([g.lrs[name] for g in grads]).mean(0)
    opt.step()
    return float(np.mean([g.query_loss for g in grads]))


def _save_checkpoint(path: Path, args: dict[str, Any], step: int, history: list[dict[str, float]],
                     sampler: TaskSampler, params: dict[int, list[torch.Tensor]], lrs: dict[int, list[torch.Tensor]],
                     opts: dict[int, torch.optim.Optimizer], best: dict[int, dict[str, Any]]) -> None:
    state = {"args": json.dumps(args, sort_keys=True), "step": step, "history": json.dumps(history),
             "rng": json.dumps(sampler.rng.bit_generator.state),
             "params": {str(w): [p.detach().clone() for p in ps] for w, ps in params.items()},
             "lrs": {str(w): [r.detach().clone() for r in rs] for w, rs in lrs.items()},
             "opt": {str(w): o.state_dict() for w, o in opts.items()},
             "best": {str(w): {"step": b["step"], "psnr": b["psnr"], "params": b["params"]} for w, b in best.items()}}
    atomic_write(path, ".ckpt", lambda tmp: torch.save(state, tmp))


def _load_checkpoint(path: Path, args: dict[str, Any]) -> dict[str, Any]:
    try:
        state = torch.load(path, weights_only=True)
        saved = json.loads(state["args"])
    except Exception as exc:  # noqa: BLE001 (unpickling damaged data can raise anything)
        raise MedinrError(f"checkpoint {path} is unreadable ({' '.join(str(exc).split())[:120]}); "
                          "delete it or run without resume") from None
    differing = sorted(k for k in set(saved) | set(args) if saved.get(k) != json.loads(json.dumps(args)).get(k))
    if differing:
        raise MedinrError(f"checkpoint {path} was made with other arguments ({', '.join(differing)}); "
                          "delete it or run without resume")
    return state
