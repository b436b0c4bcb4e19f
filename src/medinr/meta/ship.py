"""The recipes of the shipped meta-learned inits, and the command that rebuilds them.

``python -m medinr.meta.ship {cxr,mri,cine} --data ../shared/data`` runs :func:`medinr.meta.train.meta_train`
with the recorded arguments (one thread, so the result is bit-identical on the same torch build),
writes ``medinr/data/inits/seed-<family>.pt`` (``seed-cine``: the ``seed-video`` init) and re-indexes
the manifest with the command.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from medinr.meta.inits import INIT_DIR, write_manifest
from medinr.meta.train import MetaTrainResult, meta_train

_CINE_TRAIN = [f"cine/train/SCD0000{p}01_{s}" for p in (1, 2) for s in ("apical", "basal", "mid")]
_CINE_HELD = [f"cine/train/SCD0000301_{s}" for s in ("apical", "basal", "mid")]

#: modality -> (paths, validation paths or None, keyword arguments), paths relative to the data folder.
#: Reptile adapts with the codec's own optimiser (10 Adam steps at its learning rate) and stays stable;
#: FOMAML on 512 px X-ray tasks diverged after ~200 outer steps (its SGD inner loop blew up).
_REPTILE = {"algorithm": "reptile", "steps": 160, "inner_steps": 10, "inner_lr": 0.01, "outer_lr": 0.1,
            "tasks_per_batch": 4, "val_every": 40, "val_tasks": 4, "seed": 0}
RECIPES: dict[str, tuple[list[str], list[str] | None, dict[str, Any]]] = {
    # 4 of the 20 training X-rays are held back (seeded split); 512 px tasks meta-learn 8 bands
    "cxr": (["cxr/train"], None, {**_REPTILE, "task_size": 512}),
    # held back: the Colin27 volume and cine patient SCD0000301; 256 px tasks cover all 7 bands of these sizes
    "mri": (["mri/train/nilearn_mni152_2009a_t1.nii.gz", *_CINE_TRAIN],
            ["mri/train/colin27_ch2_1mm.nii.gz", *_CINE_HELD], {**_REPTILE, "task_size": 256}),
    # seed-video (t, y, x) init: 8-frame clips at 128 px (6 bands), held back: patient SCD0000301. Width 48 is
    # what rate control picks for 10 frames x 128 px at 1-1.4 bpp; trained beside width 16 (13.5 min at one
    # thread), which fitted cine/test worse than random after 100-200 steps and was not shipped
    "cine": (_CINE_TRAIN, _CINE_HELD, {**_REPTILE, "steps": 120, "inner_steps": 8, "task_size": 128,
                                       "clip_frames": 8, "widths": (48,), "val_tasks": 2, "summary_steps": ()}),
}


def ship(modality: str, data: Path, directory: Path = INIT_DIR, resume: bool = False) -> MetaTrainResult:
    """Rebuild the shipped init of ``modality`` from ``data`` into ``directory`` and re-index its manifest."""
    paths, val_paths, kwargs = RECIPES[modality]
    result = meta_train(modality, [data / p for p in paths], directory / f"seed-{modality}.pt",
                        val_paths=None if val_paths is None else [data / p for p in val_paths], threads=1,
                        checkpoint=Path(tempfile.gettempdir()) / f"medinr-seed-{modality}.ckpt", resume=resume,
                        progress=_print_progress, **kwargs)
    command = f"nice -n 10 python -m medinr.meta.ship {modality} --data {shlex.quote(str(data))}"
    write_manifest(directory, {result.name: command})
    return result


def _print_progress(step: int, total: int, stats: dict[str, float]) -> None:
    if "val_psnr" in stats or step == total:
        print(f"step {step}/{total}: " + ", ".join(f"{k} {v:.3f}" for k, v in stats.items()), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modality", choices=sorted(RECIPES))
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (../shared/data)")
    parser.add_argument("--directory", type=Path, default=INIT_DIR, help="where the init and manifest go")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in the temp folder")
    args = parser.parse_args(argv)
    print(ship(args.modality, args.data, args.directory, args.resume).describe())


if __name__ == "__main__":
    sys.exit(main())
