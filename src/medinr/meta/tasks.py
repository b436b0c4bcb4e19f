"""Meta-learning tasks: square crops of a modality's training images, resized to one task size.

A *source* is one series: a 2D image, a stack of frames, or a volume (sliced along any of its three
axes). Files found inside a sub-folder of a folder argument form one series together (e.g. the frames
of one cine slice), and so do DICOM files directly in a folder argument that share a
SeriesInstanceUID, so a validation split never puts neighbouring frames on both sides and each series
is drawn equally often however many frames it has. A *task* is,
with probability ``whole_fraction``, a whole slice (what the codec fits: both axes span [-1, 1] whatever
the aspect ratio), else a square crop with a side drawn log-uniformly between the task size and the
slice's shorter side; either is resized with antialiasing to ``task_size`` x ``task_size`` and z-score
normalised as the codec normalises an image. Its support set is a random subset of its pixels and its
query set the rest (or, to bound the cost of large tasks, a random subset of the rest).

With ``clip_frames`` > 0 (the ``seed-video`` init, coordinates (t, y, x)) a task is a clip instead: that
many frames of one series, evenly spaced with a random stride, the same crop in every frame, resized
and normalised together to (clip_frames, task_size, task_size).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import torch
from torch.nn import functional as F

from medinr.errors import InputError
from medinr.io import SUPPORTED_READ_EXTENSIONS, read
from medinr.io.dicom import is_dicom_file

#: a crop whose z-scored content is flatter than this (std of the stored values / their range) is skipped
MIN_RELATIVE_STD = 0.02


@dataclass(frozen=True)
class Source:
    """One series of training pixels: ``frames`` (N, H, W) in stored values, ``span`` their range; a volume
    is sliced on all three axes."""

    name: str
    frames: np.ndarray
    volume: bool
    span: float

    def slice(self, rng: np.random.Generator) -> np.ndarray:
        axis = int(rng.integers(3)) if self.volume else 0
        index = int(rng.integers(self.frames.shape[axis]))
        return np.take(self.frames, index, axis=axis)

    def clip(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` frames (count, H, W) from a random start with a random stride (1 up to what fits)."""
        stride = int(rng.integers(1, (self.frames.shape[0] - 1) // (count - 1) + 1))
        start = int(rng.integers(self.frames.shape[0] - (count - 1) * stride))
        return self.frames[start:start + (count - 1) * stride + 1:stride]


@dataclass(frozen=True)
class Task:
    """A normalised (T, T) image, or (F, T, T) clip, with disjoint support and query pixel sets (flat indices)."""

    image: torch.Tensor
    support: torch.Tensor
    query: torch.Tensor

    @property
    def size(self) -> int:
        return self.image.shape[-1]

    @property
    def sizes(self) -> tuple[int, ...]:
        """The grid the INR evaluates: (T, T) or (F, T, T)."""
        return tuple(self.image.shape)

    def pixels(self, flat: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Per-axis indices and targets of the given pixels (the INR's ``forward`` input)."""
        return torch.unravel_index(flat, self.image.shape), self.image.reshape(-1)[flat]


def _is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(ext) for ext in SUPPORTED_READ_EXTENSIONS) or (path.suffix == "" and is_dicom_file(path))


def _dicom_series_uid(file: Path) -> str | None:
    if not (file.suffix.lower() in (".dcm", ".dicom") or is_dicom_file(file)):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. UIDs with leading zeros (Sunnybrook)
            ds = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
            uid = ds.get("SeriesInstanceUID")  # values are decoded (and validated) on access
    except (OSError, pydicom.errors.InvalidDicomError):
        return None
    return None if uid is None else str(uid)


def find_series(paths: list[Path]) -> dict[str, list[Path]]:
    """Group image files into series: files in a sub-folder of a folder argument form one series named by
    that sub-folder, DICOM files directly in a folder argument one per SeriesInstanceUID; any other file
    (a file argument, a JPEG directly in a folder argument) stands alone."""
    series: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        path = Path(path)
        if path.is_file():
            series[str(path)].append(path)
        elif path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and _is_image_file(p)):
                uid = _dicom_series_uid(file) if file.parent == path else None
                key = file.parent if file.parent != path else (path / uid if uid else file)
                series[str(key)].append(file)
        else:
            raise InputError(f"{path}: no such file or folder")
    return dict(series)


def load_sources(paths: list[Path]) -> tuple[list[Source], list[str]]:
    """Read every usable series under ``paths``; returns the sources and one note per skipped file."""
    sources, notes = [], []
    for name, files in sorted(find_series(paths).items()):
        frames, volume = [], False
        for file in files:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # per-file DICOM value warnings are noise here
                    image = read(file)
            except InputError as exc:
                notes.append(str(exc))
                continue
            stack = image.frame_stack()
            frames.append(stack)
            volume = volume or (image.source_format == "nifti" and stack.shape[0] > 1)
        shapes = {f.shape[1:] for f in frames}
        if len(shapes) > 1:
            notes.append(f"{name}: frames of different sizes {sorted(shapes)}; series skipped")
            continue
        if frames:
            stack = np.concatenate(frames)
            sources.append(Source(name, stack, volume and len(frames) == 1, float(np.ptp(stack)) or 1.0))
    if not sources:
        raise InputError(f"no usable training images under {', '.join(str(p) for p in paths)}")
    return sources, notes


def split_sources(sources: list[Source], val_fraction: float, seed: int) -> tuple[list[Source], list[Source]]:
    """Deterministic split by series: about ``val_fraction`` of them (at least one) held back for validation."""
    if len(sources) < 2:
        raise InputError("meta-training needs at least two series (one is held back for validation)")
    order = np.random.default_rng(seed).permutation(len(sources))
    n_val = min(len(sources) - 1, max(1, round(val_fraction * len(sources))))
    held = set(order[:n_val].tolist())
    return ([s for i, s in enumerate(sources) if i not in held], [s for i, s in enumerate(sources) if i in held])


def resize(image: np.ndarray, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of a 2D array (or each frame of a (F, H, W) clip) to (size, size), float32
    (aspect not kept)."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    lead = x.shape[:-2]
    if x.shape[-2:] == (size, size):
        return x
    x = F.interpolate(x.reshape(-1, 1, *x.shape[-2:]), size=(size, size), mode="bilinear", antialias=True,
                      align_corners=False)
    return x.reshape(*lead, size, size)


def normalise(image: torch.Tensor) -> torch.Tensor:
    """Z-score as the codec does (mean 0, std 1; a constant image stays 0)."""
    std = float(image.std(unbiased=False))
    return (image - image.mean()) / (std if std > 0 else 1.0)


class TaskSampler:
    """Draws tasks from sources with its own NumPy generator (whose state checkpoints save)."""

    def __init__(self, sources: list[Source], task_size: int, support_pixels: int, seed: int,
                 query_pixels: int | None = None, whole_fraction: float = 0.5, max_tries: int = 50,
                 clip_frames: int = 0) -> None:
        if clip_frames:
            sources = [s for s in sources if not s.volume and s.frames.shape[0] >= clip_frames]
            if clip_frames < 2 or not sources:
                raise InputError(f"{clip_frames}-frame clips need clip_frames >= 2 and a series of that many frames")
        points = task_size**2 * max(1, clip_frames)
        if not 0 < support_pixels < points:
            raise InputError(f"support_pixels must be in [1, {points - 1}] for {task_size} px tasks, "
                             f"got {support_pixels}")
        if query_pixels is not None and query_pixels < 1:
            raise InputError(f"query_pixels must be >= 1, got {query_pixels}")
        if not 0 <= whole_fraction <= 1:
            raise InputError(f"whole_fraction must be in [0, 1], got {whole_fraction}")
        self.sources = sources
        self.whole_fraction = whole_fraction
        self.task_size = task_size
        self.support_pixels = support_pixels
        self.clip_frames = clip_frames
        self.points = points
        self.query_end = points if query_pixels is None else min(points, support_pixels + query_pixels)
        self.rng = np.random.default_rng(seed)
        self.max_tries = max_tries

    def crop(self, source_index: int | None = None) -> torch.Tensor:
        """A normalised (T, T) view (or (F, T, T) clip) of a random whole slice or crop (of a random source unless
        given) that is not (nearly) flat."""
        for _ in range(self.max_tries):
            pick = int(self.rng.integers(len(self.sources))) if source_index is None else source_index
            source = self.sources[pick % len(self.sources)]
            plane = source.clip(self.rng, self.clip_frames) if self.clip_frames else source.slice(self.rng)
            if self.rng.uniform() < self.whole_fraction:
                if plane.std() >= MIN_RELATIVE_STD * source.span:
                    return normalise(resize(plane, self.task_size))
                continue
            short = min(plane.shape[-2:])
            lo = min(self.task_size, short)
            side = round(math.exp(self.rng.uniform(math.log(lo), math.log(short))))
            top = int(self.rng.integers(plane.shape[-2] - side + 1))
            left = int(self.rng.integers(plane.shape[-1] - side + 1))
            patch = plane[..., top:top + side, left:left + side].astype(np.float64)
            if patch.std() >= MIN_RELATIVE_STD * source.span:
                return normalise(resize(patch, self.task_size))
        raise InputError("the training images are (nearly) constant: no usable crop found")

    def task(self) -> Task:
        image = self.crop()
        perm = torch.from_numpy(self.rng.permutation(self.points))
        return Task(image, perm[:self.support_pixels], perm[self.support_pixels:self.query_end])

    def tasks(self, n: int) -> list[Task]:
        return [self.task() for _ in range(n)]
