"""FiLM conditioning of the ``seed`` init on the hybrid features (issue 3, part 5, third bullet), as a measured
option: off in the codec (see :func:`measure` and the README for the numbers).

An image's code c is ``dims`` numbers in [-1, 1], each quantised to 8 bits: c = q8(tanh(P z)), z the image's 58
pooled hybrid-feature statistics (:func:`medinr.features.classifier.modality_features`) standardised. For each
hidden layer l and scale s it gives a scale gamma = 1 + c A_l and a shift beta = c B_l of that layer's
pre-activations. With the code fixed per image this is exactly a reparametrisation of the init (W_l diag(gamma),
gamma * b_l + beta), so a conditioned init is the shipped init, the map and ``dims`` bytes; fitting and the coded
parameter deltas are unchanged. The map (P, A, B) is meta-learned together with the init by
:func:`film_train`: Reptile's pseudo-gradient (conditioned init - adapted weights) is backpropagated through
the modulation, so the init and the map get their outer steps from the same tasks.

Measured (``python -m medinr.meta.film {mri,cxr} --data ../shared/data --out rows.json``: 100 extra Reptile
steps from the shipped init with a 6-number code, against a control arm of the same 100 steps without FiLM;
float PSNR after 50/100/200 codec fitting steps, the code's 6 bytes not counted): mri/test (3 images)
control 27.94/30.83/33.88 dB, FiLM 28.05/31.07/34.18 dB, all of it from the 64x64 head MR (+0.74/+1.08/+1.18)
while the 256x256 T1 slice lost (-0.16/-0.30/-0.45) and the 128x128 EPI slice was mixed (-0.25/-0.05/+0.18);
cxr/test (3 crops of 256 px) control 29.22/30.45/31.32 dB, FiLM 29.17/30.39/31.26 dB. Over the six images FiLM wins on 2, 2 and 3
of 6 at 50/100/200 steps, mean +0.03/+0.09/+0.12 dB: no consistent gain, so the codec does not use it and
the bitstream carries no code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medinr.features.classifier import modality_features, view_of
from medinr.meta.algorithms import Learner
from medinr.meta.inits import InitFile
from medinr.meta.tasks import TaskSampler, load_sources
from medinr.models.seed import SeedConfig

CODE_LEVELS = 255


@dataclass
class FilmMap:
    """Feature standardisation (``mean``, ``std``: (F,)), projection ``proj`` (D, F) and per-layer, per-scale
    maps ``scale``/``shift`` (L, S, D, hidden) of a seed network's L hidden layers."""

    mean: torch.Tensor
    std: torch.Tensor
    proj: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor

    @classmethod
    def identity(cls, features: np.ndarray, config: SeedConfig, dims: int, seed: int = 0) -> FilmMap:
        """A map that leaves the init unchanged (A = B = 0), standardising like ``features`` (N, F)."""
        f = torch.from_numpy(features).float()
        proj = torch.randn(dims, f.shape[1], generator=torch.Generator().manual_seed(seed)) / f.shape[1] ** 0.5
        zeros = torch.zeros(config.layers, config.scales, dims, config.hidden)
        return cls(f.mean(0), f.std(0).clamp_min(1e-6), proj, zeros, zeros.clone())

    @property
    def dims(self) -> int:
        return self.proj.shape[0]

    def learnable(self) -> list[torch.Tensor]:
        return [self.proj, self.scale, self.shift]

    def code(self, image: np.ndarray) -> torch.Tensor:
        """The image's quantised code, (D,) in [-1, 1] (straight-through rounding, so P still learns)."""
        z = (torch.from_numpy(modality_features(view_of(image))).float() - self.mean) / self.std
        c = torch.tanh(self.proj @ z)
        return c + (dequantise_code(quantise_code(c.detach())) - c).detach()

    def modulate(self, params: Sequence[torch.Tensor], code: torch.Tensor) -> list[torch.Tensor]:
        """Init ``params`` (SeedINR ``parameters()`` order: weights then biases) conditioned on ``code``; scales
        beyond the map's are left as they are."""
        layers = self.scale.shape[0]
        n = len(params) // 2
        weights, biases = list(params[:n]), list(params[n:])
        for l in range(layers):
            s = min(weights[l].shape[0], self.scale.shape[1])
            gamma = 1 + torch.einsum("d,sdh->sh", code, self.scale[l, :s])[:, None, :]
            beta = torch.einsum("d,sdh->sh", code, self.shift[l, :s])[:, None, :]
            weights[l] = torch.cat([weights[l][:s] * gamma, weights[l][s:]])
            biases[l] = torch.cat([biases[l][:s] * gamma + beta, biases[l][s:]])
        return weights + biases

    def condition(self, params: Sequence[torch.Tensor], image: np.ndarray) -> list[torch.Tensor]:
        """The conditioned init of ``image`` (detached)."""
        with torch.no_grad():
            return [p.detach() for p in self.modulate(params, self.code(image))]

    def save(self, path: Path) -> None:
        torch.save({k: getattr(self, k).detach() for k in ("mean", "std", "proj", "scale", "shift")}, path)

    @classmethod
    def load(cls, path: Path) -> FilmMap:
        return cls(**torch.load(path, weights_only=True))


def quantise_code(code: torch.Tensor) -> np.ndarray:
    """8-bit symbols of a code in [-1, 1] (what the bitstream would carry: ``dims`` bytes)."""
    return np.round((code.detach().clamp(-1, 1).numpy() + 1) / 2 * CODE_LEVELS).astype(np.uint8)


def dequantise_code(symbols: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(symbols.astype(np.float32) / CODE_LEVELS * 2 - 1)


def film_train(init: InitFile, paths: Sequence[Path], *, dims: int = 6, steps: int = 100, inner_steps: int = 10,
               inner_lr: float = 0.01, outer_lr: float = 0.1, film_lr: float = 1e-2, tasks_per_batch: int = 4,
               task_size: int = 256, support_pixels: int = 4096, query_pixels: int = 8192, seed: int = 0,
               width: int = 24) -> tuple[InitFile, FilmMap | None]:
    """Continue Reptile meta-training of ``init`` (its ``width`` network) on the images under ``paths`` for
    ``steps`` outer steps, with a FiLM map of ``dims`` numbers meta-learned alongside (``dims=0``: no FiLM, the
    control arm on the same task stream). Returns the new init and the map."""
    config = SeedConfig(**init.base_config, scales=init.scales, hidden=width)
    sources, _ = load_sources(list(paths))
    sampler = TaskSampler(sources, task_size, support_pixels, seed, query_pixels)
    learner = Learner(config)
    theta = [p.clone().requires_grad_(True) for p in init.params[width]]
    outer = [torch.optim.SGD(theta, lr=outer_lr)]
    film = None
    if dims:
        stats = TaskSampler(sources, task_size, support_pixels, seed + 1)
        features = np.stack([modality_features(view_of(stats.crop().numpy())) for _ in range(64)])
        film = FilmMap.identity(features, config, dims, seed)
        for t in film.learnable():
            t.requires_grad_(True)
        outer.append(torch.optim.Adam(film.learnable(), lr=film_lr))
    for _ in range(steps):
        for opt in outer:
            opt.zero_grad(set_to_none=True)
        for task in sampler.tasks(tasks_per_batch):
            start = theta if film is None else film.modulate(theta, film.code(task.image.numpy()))
            adapted = learner._adam_adapt(learner.as_dict([s.detach() for s in start]), inner_lr, task, inner_steps)
            pseudo = [(s.detach() - adapted[n]) / tasks_per_batch for s, n in zip(start, learner.names)]
            torch.autograd.backward(start, pseudo)
        for opt in outer:
            opt.step()
    record = {"film_train": {"base": init.name, "dims": dims, "steps": steps, "inner_steps": inner_steps,
                             "inner_lr": inner_lr, "outer_lr": outer_lr, "film_lr": film_lr, "seed": seed,
                             "tasks_per_batch": tasks_per_batch, "task_size": task_size}}
    trained = InitFile.from_training(init.name + ("-film" if dims else "-cont"), "seed", init.modality, config,
                                     {width: [p.detach() for p in theta]}, record)
    return trained, film


def measure(images: dict[str, np.ndarray], base: InitFile, control: InitFile, film_init: InitFile, film: FilmMap,
            steps: Sequence[int] = (50, 100, 200)) -> list[dict[str, Any]]:
    """The ablation (:func:`medinr.meta.evaluate.ablation`) of the shipped init, the control arm (same extra
    training without FiLM) and FiLM, on normalised images: PSNR after each budget in ``steps``."""
    from medinr.meta.evaluate import Variant, ablation

    variants = {"shipped": Variant(base), "control": Variant(control), "film": Variant(film_init, film=film)}
    return ablation(images, variants, steps=steps, reference="shipped", reference_steps=max(steps), grid=())


#: test images of the measurement (evaluation only): (file, frame or None) under ``<data>/<modality>/test``
MEASURE_IMAGES = {"mri": [("dipy_t1_coronal_slice.npy", None), ("dipy_S0_10slices.nii.gz", 5),
                          ("emri_small_head_12bit_10fr.dcm", 5)],
                  "cxr": [("8fc103ca.jpg", None), ("a2eba651.jpg", None), ("00000001_000.png", None)]}


def measurement_images(data: Path, modality: str, crop: int = 256) -> dict[str, np.ndarray]:
    """The z-scored test images :func:`main` measures on: a frame of each file, centre-cropped to ``crop``."""
    from medinr.io import read
    from medinr.meta.tasks import normalise

    images = {}
    for name, frame in MEASURE_IMAGES[modality]:
        pixels = read(Path(data) / modality / "test" / name).pixels
        pixels = pixels if frame is None else pixels[frame]
        top, left = max(0, (pixels.shape[0] - crop) // 2), max(0, (pixels.shape[1] - crop) // 2)
        patch = np.asarray(pixels[top:top + crop, left:left + crop], dtype=np.float64)
        images[name] = normalise(torch.from_numpy(patch).float()).numpy()
    return images


def main(argv: list[str] | None = None) -> None:
    """Train both arms from a shipped init on its recipe's training data, then measure them on test images."""
    from medinr.meta.inits import read_installed
    from medinr.meta.ship import RECIPES

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("modality", choices=sorted(MEASURE_IMAGES))
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (../shared/data)")
    parser.add_argument("--steps", type=int, default=100, help="extra outer steps of both arms")
    parser.add_argument("--dims", type=int, default=6, help="numbers in the FiLM code")
    parser.add_argument("--out", type=Path, required=True, help="JSON rows of the ablation")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    paths, _, kwargs = RECIPES[args.modality]
    base = read_installed(f"seed-{args.modality}")
    common = {"steps": args.steps, "task_size": kwargs["task_size"], "seed": kwargs["seed"]}
    control, _ = film_train(base, [args.data / p for p in paths], dims=0, **common)
    film_init, film = film_train(base, [args.data / p for p in paths], dims=args.dims, **common)
    rows = measure(measurement_images(args.data, args.modality), base, control, film_init, film)
    args.out.write_text(json.dumps(rows, indent=1))
    for row in rows:
        print(row["image"], row["variant"], {n: round(v, 2) for n, v in row["psnr"].items()})


if __name__ == "__main__":
    sys.exit(main())
