"""Meta-learned networks of the ``grid`` architecture (issue 4, part 4): synthesis, refinement and context
networks learned per modality with Reptile, shipped as ``grid-<family>`` inits, so an image pays for its
latents and, only where rate-distortion says it pays, for small deltas of the networks.

One outer step: a random 256 px crop of a training series, a log-uniform bpp target, the codec's own
per-frame fit (:class:`medinr.archs.grid._FrameFit`: pyramid start, noise then straight-through training)
for ``inner_steps`` steps from the current init; then every network tensor moves ``outer_lr`` of the way
to the adapted one (Reptile). The per-image level steps (``gain``) are the start point's, not learned.

``python -m medinr.meta.grid {cxr,mri} --data ../shared/data --directory DIR`` trains one (one thread, seeded);
``medinr encode --init DIR/grid-cxr.pt`` uses it, and it becomes the default when installed in the package.

``--workers N`` fits N tasks per outer step in parallel processes and moves towards their mean (batched
Reptile); ``--time-limit`` stops the outer loop early (the step size decays with steps or time, whichever is
further along).

Measured (2026-11-25, 40 outer steps of 60 inner steps, one process, 6.5 min each): +0.25 dB (cxr) and +1.00 dB
(mri) on held-back crops' fits, but in real encodes they did not pay consistently (network deltas cost about
what a narrowed random network costs), so none was shipped then.

Shipped (2026-11-26): ``grid-cxr`` and ``grid-mri``, 65 and 68 outer steps of 8 tasks x 100 inner steps (520-540
fits each, 6.5 min on a 16-core machine; the cxr training images were cut to their central 1280 px to travel
there). Held-back fits at 0.5 bpp: +0.14 dB (cxr) and +0.35 dB (mri) over random. Real encodes of held-back
training series (preset fast, rate control, network deltas coded), random -> learned, same bpp:
cxr 512 px: 28.05 -> 28.19 and 29.75 -> 30.02 dB, 33.44 -> 33.85 and 35.64 -> 35.98 dB (0.25 / 0.5 bpp);
mri family (cine slices, 256 px): 33.86 -> 33.38, 37.55 -> 38.27, 43.14 -> 43.39 dB and 34.64 -> 35.10,
38.45 -> 39.27, 42.63 -> 43.31 dB (0.25 / 0.5 / 1 bpp): +0.29 dB and +0.41 dB on average.

Shipped (2026-11-27): ``grid-wavelet-cxr`` and ``grid-wavelet-mri`` (``--wavelet``: the 4-wide synthesis and the
magnitude-reading context network of ``grid-wavelet`` at 256 px and up), 122 and 115 outer steps of 2 tasks x 100
inner steps, 11.5 min each on this project's 2-core machine; cxr tasks at 0.05-0.6 bpp (``--bpps``), mri at the
default range. Real encodes (preset fast, rate control, network deltas coded) of the held-back series, random ->
learned, about the same bpp: cxr/train 19073f37 and 1f8a4a54 resized to 512 px, 25.16 -> 25.45, 27.78 -> 28.60,
30.59 -> 31.19 dB and 27.73 -> 28.25, 30.72 -> 31.29, 33.68 -> 34.26 dB (0.03 / 0.06 / 0.12 bpp); 1f8a4a54 at 1024 px
31.28 -> 31.69 and 33.62 -> 34.00 dB (0.03 / 0.06); the cine/train slices SCD0000201_basal and SCD0000301_apical
(frame 5, 256 px): 35.81 -> 36.23, 39.70 -> 41.03, 45.05 -> 46.44, 55.06 -> 55.47 dB and 37.77 -> 37.89, 40.99 ->
41.72, 46.07 -> 46.31, 52.57 -> 52.61 dB (0.25 / 0.5 / 1 / 2 bpp). A random init's networks cost about a quarter
of a 512 px file at 0.03 bpp (231 of 984 bytes); a learned one's deltas are coded coarsely or not at all.

``--video`` trains ``grid-video`` networks on 10-frame, 128 px clips (VIDEO_TASK; ``grid-video-cine``, which
:class:`medinr.archs.grid_video.GridVideoCodec` starts cine and MR sequences from when installed). Measured
(2026-11-26): 11 outer steps of 16 clips x 100 inner steps (5 min on 16 cores) gave, in real fast encodes of two
held-back cine/train clips, 28.99 -> 28.48, 34.00 -> 33.94, 40.65 -> 40.77 dB and 29.34 -> 28.94, 34.29 -> 34.46,
41.33 -> 41.62 dB (0.05 / 0.2 / 1 bpp): worse at 0.05 bpp, where the learned init keeps the 16-wide network that a random init
would narrow. Not shipped.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from medinr.archs.grid import GridCodec, GridWaveletCodec, _FrameFit, latent_budget
from medinr.archs.grid_video import GridVideoCodec
from medinr.config import GridOptions, preset_config
from medinr.errors import InitError, InputError
from medinr.fit import psnr_normalised
from medinr.meta.inits import (
    INIT_DIR,
    Init,
    InitFile,
    installed_inits,
    load_init,
    random_init,
    read_init_file,
    write_manifest,
)
from medinr.meta.tasks import Source, load_sources, split_sources
from medinr.models.grid import GridConfig, GridModel
from medinr.preprocess import Normalisation
from medinr.ratecontrol import RateTarget

#: crop side of a task: 256 px frames have the full 7 levels (GridConfig.levels_for)
TASK_SIZE = 256
#: bpp targets of tasks are drawn log-uniformly from this range
TASK_BPPS = (0.15, 1.5)
#: slices tried for one usable crop before giving up
MAX_TRIES = 200

#: modality family -> training paths relative to the data folder (validation: a seeded split by series)
RECIPES: dict[str, list[str]] = {
    "cxr": ["cxr/train"],
    "mri": ["mri/train", "cine/train"],
}
#: the same for ``grid-video`` networks (``--video``): series of at least VIDEO_TASK.frames frames
VIDEO_RECIPES: dict[str, list[str]] = {"cine": ["cine/train"]}


@dataclass(frozen=True)
class TaskKind:
    """What a Reptile task fits: a ``size`` px crop of a slice (``frames`` = 0, ``grid``) or of a clip of
    ``frames`` frames (``grid-video``)."""

    size: int = TASK_SIZE
    frames: int = 0
    #: still crops coded with wavelet latents (``grid-wavelet``)
    wavelet: bool = False

    @property
    def codec(self) -> GridCodec:
        if self.frames:
            return GridVideoCodec()
        return GridWaveletCodec() if self.wavelet else GridCodec()

    def init_name(self, family: str) -> str:
        return f"{self.codec.name}-{family}"


STILL_TASK = TaskKind()
#: 10-frame clips of 128 px, the sequences ``medinr bench --quick`` codes (6 levels serve 128-255 px frames)
VIDEO_TASK = TaskKind(128, 10)
#: 256 px crops with wavelet latents: 5 levels, those of every frame of 256 px or more
WAVELET_TASK = TaskKind(wavelet=True)


@dataclass
class GridMetaResult:
    name: str
    output: Path
    steps: int
    seconds: float
    #: held-back crops: (random-init PSNR, meta-init PSNR) after the same fit, at the same λ-steered target
    validation: list[tuple[float, float]]

    def describe(self) -> str:
        text = f"{self.name}: {self.steps} Reptile steps in {self.seconds:.0f} s -> {self.output}"
        gains = [m - r for r, m in self.validation]
        if gains:
            text += (f"; held-back crops: meta-init fit {np.mean(gains):+.2f} dB vs random ("
                     + ", ".join(f"{g:+.2f}" for g in gains) + ")")
        return text


def _crop(sources: list[Source], rng: np.random.Generator, kind: TaskKind = STILL_TASK) -> np.ndarray:
    """A random ``kind.size`` crop of a random slice, or clip, that is not (nearly) flat; InputError when none is
    found (e.g. every image is smaller than a task, or no series has the clip's frames)."""
    for _ in range(MAX_TRIES):
        source = sources[int(rng.integers(len(sources)))]
        if kind.frames and (source.volume or source.frames.shape[0] < kind.frames):
            continue
        frame = source.clip(rng, kind.frames) if kind.frames else source.slice(rng)
        h, w = frame.shape[-2:]
        if min(h, w) >= kind.size and np.ptp(frame) >= 0.02 * source.span:
            y, x = int(rng.integers(h - kind.size + 1)), int(rng.integers(w - kind.size + 1))
            return np.ascontiguousarray(frame[..., y:y + kind.size, x:x + kind.size])
    what = f"{kind.frames}-frame clip of {kind.size} px" if kind.frames else f"{kind.size} px crop"
    raise InputError(f"no usable {what} in {MAX_TRIES} tries: the training images are smaller, shorter "
                     "or (nearly) constant")


def _fit(frame: np.ndarray, config: GridConfig, params: list[torch.Tensor], opts: GridOptions,
         bpp: float) -> _FrameFit:
    """The codec's fit of one crop from ``params`` towards ``bpp`` (network budget as GridCodec.encode_frame)."""
    init = Init("task", "grid", tuple(params), b"")
    fit = _FrameFit(frame, Normalisation.of(frame), config, init, opts)
    target = RateTarget("bpp", bpp)
    latent_bits = latent_budget(bpp * frame.size / 8, init)
    fit.start(target, latent_bits)
    fit.train(target, latent_bits, None)
    return fit


def _psnr(fit: _FrameFit) -> float:
    """PSNR of the fit with its latents rounded, before network quantisation."""
    with torch.no_grad():
        rec = fit.model.synthesize([torch.round(z) for z in fit.latents], fit.shape)
    return psnr_normalised(rec.numpy(), fit.target.numpy(), fit.peak)


def _task_fit(task: tuple[np.ndarray, GridConfig, list[torch.Tensor], GridOptions, float]) -> list[torch.Tensor]:
    """One Reptile task (a worker process's unit of work): the fitted networks, detached."""
    return [p.detach() for p in _fit(*task).model.parameters()]


def meta_train_grid(family: str, paths: list[Path], output: Path, *, steps: int = 60, inner_steps: int = 60,
                    outer_lr: float = 0.5, val_crops: int = 3, seed: int = 0, threads: int = 1, workers: int = 1,
                    time_limit: float | None = None, sources: list[Source] | None = None,
                    kind: TaskKind = STILL_TASK, task_bpps: tuple[float, float] = TASK_BPPS,
                    start: str | None = None, progress=None) -> GridMetaResult:
    """Reptile over the grid networks of the ``balanced`` preset's config; writes the init file ``output``.

    ``workers`` > 1: each outer step fits that many tasks in parallel processes (one thread each) and moves
    towards their mean (batched Reptile). ``time_limit`` (seconds): stop the outer loop early when it is spent.
    ``sources``: training series already loaded (instead of reading ``paths``). ``kind``: the tasks, and so the
    network (VIDEO_TASK: ``grid-video``'s (t, y, x) one). ``task_bpps``: the range tasks' bpp targets are drawn from
    (log-uniformly). ``start``: an installed init's name or an init file to go on from (else the random init)."""
    torch.set_num_threads(threads)
    start_time = time.perf_counter()
    sources = sources if sources is not None else load_sources(paths)[0]
    train, held = split_sources(sources, 0.2, seed)
    rng = np.random.default_rng(seed)
    cfg = preset_config("balanced", arch="grid")
    config = kind.codec.plan(kind.size, kind.size, cfg, RateTarget("quality"), None)
    opts = replace(cfg.grid, steps=inner_steps)
    params = [p.clone() for p in (random_init("grid", config) if start is None else _start_init(start, config)).params]
    learned = [i for i, (name, _) in enumerate(GridModel(config).named_parameters()) if name != "gain"]
    pool = (multiprocessing.get_context("fork").Pool(workers, initializer=torch.set_num_threads, initargs=(1,))
            if workers > 1 else None)
    done = 0
    try:
        while done < steps and (time_limit is None or time.perf_counter() - start_time < time_limit):
            tasks = [(_crop(train, rng, kind), config, params, opts, float(np.exp(rng.uniform(*np.log(task_bpps)))))
                     for _ in range(workers)]
            fitted = pool.map(_task_fit, tasks) if pool else [_task_fit(tasks[0])]
            elapsed = time.perf_counter() - start_time
            eps = outer_lr * (1 - max(done / steps, elapsed / time_limit if time_limit else 0.0))
            with torch.no_grad():
                for i in learned:
                    mean = torch.stack([f[i] for f in fitted]).mean(0)
                    params[i] = params[i] + eps * (mean - params[i])
            done += 1
            if progress:
                progress(done, steps)
    finally:
        if pool:
            pool.terminate()
    validation = []
    val_rng = np.random.default_rng(seed + 1)
    rand = list(random_init("grid", config).params)
    for _ in range(val_crops):
        frame = _crop(held, val_rng, kind)
        validation.append(tuple(_psnr(_fit(frame, config, p, opts, 0.5)) for p in (rand, params)))
    name = kind.init_name(family)
    record = {"algorithm": "reptile" if workers == 1 else f"batched reptile ({workers} tasks a step)",
              "steps": done, "inner_steps": inner_steps, "outer_lr": outer_lr,
              "task_size": kind.size, "task_frames": kind.frames, "task_bpps": task_bpps, "seed": seed,
              "started_from": start or "random",
              "train_series": [s.name for s in train], "val_series": [s.name for s in held],
              "validation_psnr": validation}
    InitFile.from_training(name, "grid", family, config, {config.hidden: params}, record).save(output)
    return GridMetaResult(name, output, done, time.perf_counter() - start_time, validation)


def _start_init(start: str, config: GridConfig) -> Init:
    """The init to go on from: an installed one by name, or an init file's; InitError if it lacks ``config``."""
    if start in installed_inits():
        return load_init(start, "grid", config)
    return read_init_file(Path(start)).init_for(config)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=sorted({*RECIPES, *VIDEO_RECIPES}))
    parser.add_argument("--video", action="store_true", help="grid-video networks, on clips (VIDEO_RECIPES)")
    parser.add_argument("--wavelet", action="store_true", help="grid-wavelet networks (wavelet latents)")
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (../shared/data)")
    parser.add_argument("--directory", type=Path, default=INIT_DIR, help="where the init and manifest go")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--inner-steps", type=int, default=60)
    parser.add_argument("--outer-lr", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=1, help="tasks fitted in parallel per outer step")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds; stop the outer loop then")
    parser.add_argument("--bpps", type=float, nargs=2, default=TASK_BPPS, metavar=("LOW", "HIGH"),
                        help="range of the tasks' bpp targets")
    parser.add_argument("--from", dest="start", default=None, metavar="INIT",
                        help="go on from this installed init (name) or init file, not from the random init")
    args = parser.parse_args(argv)
    recipes, kind = (VIDEO_RECIPES, VIDEO_TASK) if args.video else (RECIPES, WAVELET_TASK if args.wavelet
                                                                     else STILL_TASK)
    if args.family not in recipes:
        parser.error(f"no {kind.codec.name} recipe for {args.family!r} ({', '.join(sorted(recipes))})")
    try:
        result = meta_train_grid(args.family, [args.data / p for p in recipes[args.family]],
                                 args.directory / f"{kind.init_name(args.family)}.pt", steps=args.steps,
                                 inner_steps=args.inner_steps, outer_lr=args.outer_lr, workers=args.workers,
                                 time_limit=args.time_limit, kind=kind, task_bpps=tuple(args.bpps),
                                 start=args.start,
                                 progress=lambda d, t: print(f"step {d}/{t}", flush=True) if d % 10 == 0 else None)
    except (InputError, InitError) as exc:
        sys.exit(f"error: {exc}")
    command = (f"nice -n 10 python -m medinr.meta.grid {args.family} --data {shlex.quote(str(args.data))} "
               f"--steps {args.steps} --inner-steps {args.inner_steps} --outer-lr {args.outer_lr} "
               f"--workers {args.workers}" + (f" --time-limit {args.time_limit}" if args.time_limit else "")
               + (" --video" if args.video else "") + (" --wavelet" if args.wavelet else "")
               + (f" --bpps {args.bpps[0]} {args.bpps[1]}" if tuple(args.bpps) != TASK_BPPS else "")
               + (f" --from {shlex.quote(args.start)}" if args.start else ""))
    write_manifest(args.directory, {result.name: command})
    print(result.describe())

if __name__ == "__main__":
    main()
