"""Issue 3's ablation inside ``medinr bench --ablation``: how much the meta-learned inits and the feature
losses help the ``seed`` architecture, in one run on the same step budget.

Arms: the random init; the shipped Reptile init of the image's family (``seed-cxr`` / ``seed-mri``); any
init files given (e.g. MAML and first-order MAML inits from ``medinr meta-train --algorithm ...``; an arm's
files are matched to images by the modality they were trained for); and the
Reptile init with the sparsity-aware loss and with the edge-weighted loss. For every image and arm:

- PSNR after 50/100/200/500 fitting steps and the fewest steps (of 25 ... 1000) reaching the random
  init's 1000-step PSNR (:func:`medinr.meta.evaluate.ablation`, the codec's float fit, no quantisation);
- real encodes at a few bpp targets with ``fit_steps`` fixed to the same budget for every arm (width 24,
  the width the shipped inits cover), their encode time, and BD-rate against JPEG 2000 on the same image.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medinr.bench.datasets import BenchItem, load_item, resolve
from medinr.bench.runner import _baseline_points, _curve, bd_summary, make_config
from medinr.codec import detect_modality, encode_report
from medinr.config import preset_config
from medinr.errors import InputError
from medinr.meta.evaluate import STEP_GRID, Variant, ablation, default_seed_config
from medinr.meta.inits import MODALITY_FAMILY, InitFile, read_init_file, read_installed
from medinr.preprocess import Normalisation

STEPS = (50, 100, 200, 500)
REFERENCE_STEPS = 1000
#: feature-loss strengths of the loss arms (the values the fitting tests use; both losses are off by default)
SPARSITY_WEIGHT = 0.1
EDGE_STRENGTH = 2.0
#: the shipped seed inits cover this width only, so every arm encodes with it
WIDTH = 24


def _arms(family: str, inits: dict[str, list[tuple[InitFile, Path]]], preset: str,
          losses: bool = True) -> dict[str, tuple[Variant, dict[str, Any]]]:
    """Per arm: the fitting variant (curves) and the encoder keyword arguments (real files). An extra arm
    uses its file whose init was trained for ``family`` (no such file: no such arm for this image)."""
    fit = preset_config(preset).fit
    reptile = read_installed(f"seed-{family}")
    arms = {"random": (Variant(None, fit), {"modality": "generic"}),
            "reptile": (Variant(reptile, fit), {"modality": family})}
    for name, files in inits.items():
        for init, path in files:
            if MODALITY_FAMILY.get(init.modality) == family:
                arms[name] = (Variant(init, fit), {"modality": family, "init_file": path})
    if not losses:
        return arms
    arms["reptile+sparsity"] = (Variant(reptile, replace(fit, sparsity_weight=SPARSITY_WEIGHT)),
                                {"modality": family, "fit_sparsity_weight": SPARSITY_WEIGHT})
    arms["reptile+edge"] = (Variant(reptile, replace(fit, edge_strength=EDGE_STRENGTH)),
                            {"modality": family, "fit_edge_strength": EDGE_STRENGTH})
    return arms


def _pick(items: list[BenchItem], per_set: int) -> list[BenchItem]:
    """``per_set`` items of each data set, evenly spread over it."""
    out = []
    for dataset in dict.fromkeys(item.dataset for item in items):
        members = [item for item in items if item.dataset == dataset]
        idx = np.unique(np.linspace(0, len(members) - 1, min(per_set, len(members))).round().astype(int))
        out += [members[i] for i in idx]
    return out


def run_ablation(specs: list[str], *, inits: dict[str, list[Path]] | None = None, per_set: int = 3, crop: int = 128,
                 bpps: tuple[float, ...] = (0.5, 1.0, 2.0), fit_steps: int = 200, preset: str = "fast",
                 steps: tuple[int, ...] = STEPS, reference_steps: int = REFERENCE_STEPS,
                 budgets: tuple[int, ...] = STEP_GRID, losses: bool = True, progress=None) -> dict[str, Any]:
    """The ablation document: per image and arm the fitting curve (PSNR at ``steps``; the fewest of
    ``budgets`` reaching the random init's PSNR at ``reference_steps``), encode points, encode time and
    BD-rate against JPEG 2000; ``summary`` holds the means per data set and arm. ``losses``: include the
    sparsity and edge loss arms."""
    cfg = make_config(crop=crop)
    items = [item for item in _pick(resolve(specs), per_set) if not item.sequence]
    files = {name: [(read_init_file(path), path) for path in paths] for name, paths in (inits or {}).items()}
    rows = []
    for n, item in enumerate(items):
        image = load_item(item, crop=crop)
        if image.frames > 1:
            image = replace(image, pixels=image.pixels[0])
        family = (MODALITY_FAMILY.get(item.dataset.split("-")[0])
                  or MODALITY_FAMILY.get(detect_modality(image).modality, "mri"))
        arms = _arms(family, files, preset, losses)
        normalised = Normalisation.of(image.pixels).forward(image.pixels)
        curves = ablation({item.id: normalised}, {name: arm[0] for name, arm in arms.items()},
                          replace(default_seed_config(), hidden=WIDTH), steps=steps, reference_steps=reference_steps,
                          grid=budgets)
        anchor = _curve(_baseline_points("jpeg2000", image, cfg, [], False))
        for curve in curves:
            points, seconds = [], []
            for bpp in bpps:
                start = time.perf_counter()
                result = encode_report(image, bpp=bpp, preset=preset, arch="seed", fit_steps=fit_steps,
                                       widths=(WIDTH,), default_width=WIDTH, **arms[curve["variant"]][1])
                seconds.append(time.perf_counter() - start)
                points.append((result.metrics["bpp"], result.metrics["psnr"]))
            rows.append({**curve, "dataset": item.dataset, "family": family, "points": points,
                         "encode_seconds": float(np.mean(seconds)), "bd_vs_jpeg2000": bd_summary(anchor, points)})
        if progress:
            progress(n + 1, len(items))
    if not rows:
        raise InputError("no still images to ablate in " + ", ".join(specs))
    return {"config": {"specs": specs, "per_set": per_set, "crop": crop, "bpps": list(bpps), "fit_steps": fit_steps,
                       "preset": preset, "width": WIDTH, "steps": list(steps), "reference_steps": reference_steps,
                       "budgets": list(budgets), "losses": losses,
                       "sparsity_weight": SPARSITY_WEIGHT, "edge_strength": EDGE_STRENGTH,
                       "inits": {k: [str(p) for p in v] for k, v in (inits or {}).items()}},
            "rows": rows, "summary": summarise(rows, steps)}


def summarise(rows: list[dict[str, Any]], steps: tuple[int, ...] = STEPS) -> list[dict[str, Any]]:
    """Means per (data set, arm): PSNR at each budget, steps to the reference (None counts as 'more than
    all'), BD-rate vs JPEG 2000 over the images where it is defined, encode seconds."""
    out = []
    for key in dict.fromkeys((r["dataset"], r["variant"]) for r in rows):
        group = [r for r in rows if (r["dataset"], r["variant"]) == key]
        bd = [r["bd_vs_jpeg2000"]["bd_rate_percent"] for r in group if r["bd_vs_jpeg2000"]["bd_rate_percent"] is not None]
        reached = [r["steps_to_reference"] for r in group]
        out.append({"dataset": key[0], "variant": key[1], "images": len(group),
                    "psnr": {n: float(np.mean([r["psnr"][n] for r in group])) for n in steps},
                    "steps_to_reference": reached, "bd_rate_percent": float(np.mean(bd)) if bd else None,
                    "bd_images": len(bd), "encode_seconds": float(np.mean([r["encode_seconds"] for r in group]))})
    return out


def markdown(document: dict[str, Any]) -> str:
    """The summary as a README table."""
    c = document["config"]
    lines = ["| set | arm | images | " + " | ".join(f"PSNR @{n}" for n in c["steps"])
             + f" | steps to random's {c['reference_steps']}-step PSNR | BD-rate vs JPEG 2000 % (fit {c['fit_steps']} steps)"
             " | encode s |", "|---" * (6 + len(c["steps"])) + "|"]
    for s in document["summary"]:
        reached = ", ".join("-" if r is None else str(r) for r in s["steps_to_reference"])
        bd = "n/a" if s["bd_rate_percent"] is None else f"{s['bd_rate_percent']:+.1f} ({s['bd_images']} img)"
        lines.append(f"| {s['dataset']} | {s['variant']} | {s['images']} | "
                     + " | ".join(f"{s['psnr'][n]:.2f}" for n in c["steps"])
                     + f" | {reached} | {bd} | {s['encode_seconds']:.1f} |")
    return "\n".join(lines)
