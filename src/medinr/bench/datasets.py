"""What a benchmark runs on: named data sets, folders, globs and file lists, turned into a list of images.

A spec is a named set (``cxr-test``, ``mri-test``, ``cine-test``, ``cxr-train``, ``mri-train``,
``cine-train``: folders of the shared data beside the repository, or of ``$MEDINR_DATA``), a folder, a
glob or a file. Folders are walked; a folder holding only single-frame DICOM files (and no sub-folder) is
one sequence, its frames ordered by TriggerTime, then InstanceNumber, then file name (how the cine sets
are stored). Volumes (NIfTI, multi-frame DICOM, 3D NumPy/TIFF/HDF5) and sequences become images by the
``frames`` rule: ``sample`` takes :data:`SAMPLE_COUNT` evenly spaced slices in the middle 60 % of the
stack axis, ``all`` every slice, ``stack`` the whole ``(N, H, W)`` stack as one image, ``sequence`` the whole
stack as one *sequence* (benchmarked as video: rate in Mbps, per-frame quality, temporal flicker). NIfTI
slices are cut along the file's third axis (axial for the usual RAS/LAS storage order).

Sequences (:data:`SEQUENCE_TEXT`): under ``sequence`` every multi-frame source is one (NIfTI volumes are
sampled: a 4D NIfTI needs a slice choice this rule does not make); under the other rules,
DICOM-series folders (the cine sets), video files and timed multi-frame DICOM files (FrameTime or FrameTimeVector:
an echo loop, not a volume) are sequences when ``series_as_sequences`` is set (the runner sets it when a video codec
is asked for), so ``medinr bench cine-test --codecs x265,...`` codes whole cine loops while the same set under image
codecs alone is still sampled frame by frame. Colour DICOM files (ultrasound) are read as their luma, for every
codec alike (:func:`medinr.io.read`'s ``luma``).

Items are small picklable records, so worker processes load their own pixels; resizing and cropping
happen on load (:func:`load_item`) and are recorded by the runner.
"""

from __future__ import annotations

import functools
import glob as globlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medinr.errors import InputError
from medinr.io import SUPPORTED_READ_EXTENSIONS, read
from medinr.io.image import MedicalImage
from medinr.io.sequence import VIDEO_EXTENSIONS

#: Environment variable naming the shared data folder (the one holding cxr/, mri/, cine/).
DATA_ENV = "MEDINR_DATA"
#: Named sets: name -> folder under the data root.
NAMED_SETS: dict[str, str] = {
    f"{kind}-{split}": f"{kind}/{split}" for kind in ("cxr", "mri", "cine") for split in ("test", "train")
}
FRAME_RULES = ("sample", "all", "stack", "sequence")
SAMPLE_COUNT = 3
#: The ``sample`` rule's window: the middle 60 % of the stack axis.
SAMPLE_SPAN = (0.2, 0.8)
RULE_TEXT = (f"volumes, multi-frame files and sequences: 'sample' = {SAMPLE_COUNT} evenly spaced slices in the "
             f"middle {round(100 * (SAMPLE_SPAN[1] - SAMPLE_SPAN[0]))} % of the stack axis (NIfTI: the file's "
             "third axis), 'all' = every slice, 'stack' = the whole stack as one image, 'sequence' = the whole "
             "stack as one sequence")
SEQUENCE_TEXT = ("sequences (coded and measured as video): every multi-frame source but NIfTI volumes (sampled) under "
                 "--frames sequence; under the other rules, DICOM-series folders, video files and timed multi-frame "
                 "DICOM files whenever a video codec is among the codecs")


@dataclass(frozen=True)
class BenchItem:
    """One benchmark image: ``paths`` (one file, or a sequence's frames, stacked on load) and the
    ``select`` slice spec ``AXIS:INDEX`` passed to :func:`medinr.io.read` (None: the whole file);
    ``sequence``: benchmarked as a video (at least two frames)."""

    id: str
    dataset: str
    paths: tuple[str, ...]
    select: str | None = None
    sequence: bool = False


def default_data_root() -> Path:
    """``$MEDINR_DATA`` when set, else ``../shared/data`` beside the repository this package lives in."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def data_root() -> Path:
    """The shared data folder; InputError naming where it was looked for when it is absent."""
    root = default_data_root()
    if not root.is_dir():
        how = f"${DATA_ENV}" if os.environ.get(DATA_ENV) else f"set {DATA_ENV} or place it at"
        raise InputError(f"named data sets need the shared data folder: not found ({how} {root})")
    return root


def sample_indices(n: int, rule: str) -> list[int]:
    """Slice indices of an ``n``-slice stack under ``rule`` (``stack`` gives no indices: the whole stack)."""
    if rule not in FRAME_RULES:
        raise InputError(f"unknown frame rule {rule!r}: choose one of {', '.join(FRAME_RULES)}")
    if rule in ("stack", "sequence"):
        return []
    if rule == "all" or n <= SAMPLE_COUNT:
        return list(range(n))
    positions = np.linspace(SAMPLE_SPAN[0] * (n - 1), SAMPLE_SPAN[1] * (n - 1), SAMPLE_COUNT)
    return sorted({int(np.floor(p + 0.5)) for p in positions})


def _is_image_file(path: Path) -> bool:
    from medinr.io.dicom import is_dicom_file

    name = path.name.lower()
    return any(name.endswith(ext) for ext in SUPPORTED_READ_EXTENSIONS) or is_dicom_file(path)


def _stack_axis(path: Path) -> tuple[int, int]:
    """(slice axis for ``read(slice=...)``, number of slices) of a file; 1 slice for a 2D image."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        shape = list(nib.load(path).shape)
        while len(shape) > 2 and shape[-1] == 1:
            shape.pop()
        return 2, shape[2] if len(shape) == 3 else 1
    if name.endswith(".npy"):
        shape = np.load(path, mmap_mode="r").shape
        return 0, shape[0] if len(shape) == 3 else 1
    if name.endswith((".png", ".jpg", ".jpeg")):
        return 0, 1
    header = _dicom_header(path)
    if header is not None:
        return 0, int(header.get("NumberOfFrames", 1) or 1)
    return 0, read(path).frames  # TIFF, HDF5: read once to count


@functools.lru_cache(maxsize=256)
def _dicom_header(path: Path) -> Any:
    """The DICOM file's attributes without its pixels (read once per file), or None for another format."""
    from medinr.io.dicom import is_dicom_file, read_dataset

    if not (path.name.lower().endswith((".dcm", ".dicom")) or is_dicom_file(path)):
        return None
    return read_dataset(path, stop_before_pixels=True)


def _timed_dicom(path: Path, frames: int) -> bool:
    """A DICOM file whose ``frames`` have times, as its reader takes them (FrameTime or FrameTimeVector): a loop
    over time, not a volume."""
    from medinr.io.dicom import dicom_frame_times

    header = _dicom_header(path)
    return header is not None and dicom_frame_times(header, frames) is not None


def _file_items(path: Path, dataset: str, label: str, rule: str, slice_spec: str | None,
                series: bool) -> list[BenchItem]:
    if slice_spec is not None:
        return [BenchItem(f"{label}[{slice_spec}]", dataset, (str(path),), slice_spec)]
    axis, n = _stack_axis(path)
    name = path.name.lower()
    if rule == "sequence" and name.endswith((".nii", ".nii.gz")):
        rule = "sample"  # a volume; a 4D NIfTI sequence needs a slice choice the benchmark does not make
    sequence = rule == "sequence" or (series and (name.endswith(VIDEO_EXTENSIONS) or (n > 1 and _timed_dicom(path, n))))
    if n == 1 or rule == "stack" or sequence:
        return [BenchItem(label, dataset, (str(path),), sequence=sequence and n > 1)]
    return [BenchItem(f"{label}[{axis}:{i}]", dataset, (str(path),), f"{axis}:{i}")
            for i in sample_indices(n, rule)]


def _sequence_order(paths: list[Path]) -> list[Path]:
    import pydicom

    def key(path: Path) -> tuple[float, float, str]:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        trigger, instance = ds.get("TriggerTime"), ds.get("InstanceNumber")
        return (float(trigger) if trigger not in (None, "") else np.inf,
                float(instance) if instance not in (None, "") else np.inf, path.name)

    return sorted(paths, key=key)


def _sequence_frames(folder: Path) -> list[Path] | None:
    """The frames of ``folder`` when it is a sequence (only single-frame DICOM files, at least two), else None."""
    import pydicom

    entries = sorted(folder.iterdir())
    files = [p for p in entries if p.is_file() and not p.name.startswith(".")]
    if any(p.is_dir() for p in entries) or len(files) < 2 or not all(p.suffix.lower() == ".dcm" for p in files):
        return None
    if int(pydicom.dcmread(files[0], stop_before_pixels=True).get("NumberOfFrames", 1) or 1) > 1:
        return None
    return _sequence_order(files)


def _folder_items(folder: Path, dataset: str, label: str, rule: str, slice_spec: str | None,
                  series: bool) -> list[BenchItem]:
    frames = _sequence_frames(folder)
    if frames is not None:
        if rule in ("stack", "sequence") or series:
            return [BenchItem(label, dataset, tuple(map(str, frames)), sequence=rule == "sequence" or series)]
        return [BenchItem(f"{label}[{i}]", dataset, (str(frames[i]),)) for i in sample_indices(len(frames), rule)]
    items: list[BenchItem] = []
    for entry in sorted(folder.iterdir()):
        child = f"{label}/{entry.name}"
        if entry.is_dir():
            items += _folder_items(entry, dataset, child, rule, slice_spec, series)
        elif entry.is_file() and not entry.name.startswith(".") and _is_image_file(entry):
            items += _file_items(entry, dataset, child, rule, slice_spec, series)
    return items


def resolve(specs: list[str], *, frames: str = "sample", slice_spec: str | None = None,
            series_as_sequences: bool = False) -> list[BenchItem]:
    """Benchmark items for ``specs`` (named sets, folders, globs, files), in a stable order, no duplicates.

    ``frames`` is the rule for volumes and sequences (see the module doc); ``slice_spec`` (``AXIS:INDEX``)
    instead takes that one slice of every file. ``series_as_sequences``: DICOM-series folders and video files
    are sequences whatever the rule (:data:`SEQUENCE_TEXT`).
    """
    series = series_as_sequences and slice_spec is None
    if frames not in FRAME_RULES:
        raise InputError(f"unknown frame rule {frames!r}: choose one of {', '.join(FRAME_RULES)}")
    items: list[BenchItem] = []
    for spec in specs:
        if spec in NAMED_SETS:
            folder = data_root() / NAMED_SETS[spec]
            if not folder.is_dir():
                raise InputError(f"named data set {spec!r}: folder {folder} is missing")
            found = _folder_items(folder, spec, spec, frames, slice_spec, series)
        elif Path(spec).is_dir():
            found = _folder_items(Path(spec), Path(spec).name, Path(spec).name, frames, slice_spec, series)
        elif Path(spec).is_file():
            found = _file_items(Path(spec), "files", Path(spec).name, frames, slice_spec, series)
        elif globlib.has_magic(spec):
            matches = [Path(p) for p in sorted(globlib.glob(spec, recursive=True))]
            found = []
            for match in matches:
                if match.is_dir():
                    found += _folder_items(match, spec, match.name, frames, slice_spec, series)
                elif _is_image_file(match):
                    found += _file_items(match, spec, match.name, frames, slice_spec, series)
        else:
            raise InputError(f"{spec}: no such file or folder, and not a named data set "
                             f"({', '.join(NAMED_SETS)})")
        if not found:
            raise InputError(f"{spec}: no readable images found")
        items += found
    dupes = sorted(name for name, count in Counter(item.id for item in items).items() if count > 1)
    if dupes:
        raise InputError(f"the same image name appears twice ({', '.join(dupes[:3])}): pass each image once")
    return items


def resize_longer_side(image: MedicalImage, size: int | None) -> MedicalImage:
    """Downscale so the longer side is ``size`` px (anti-aliased, rounded and clipped to the stored dtype);
    no-op when the image is already that small."""
    if not size or max(image.height, image.width) <= size:
        return image
    from skimage.transform import resize

    scale = size / max(image.height, image.width)
    shape = (max(1, round(image.height * scale)), max(1, round(image.width * scale)))
    frames = np.stack([resize(f.astype(np.float64), shape, order=1, anti_aliasing=True, preserve_range=True)
                       for f in image.frame_stack()])
    dtype = image.pixels.dtype
    if dtype.kind in "iu":
        frames = np.clip(np.rint(frames), float(image.pixels.min()), float(image.pixels.max()))
    out = frames.astype(dtype).reshape((-1, *shape) if image.pixels.ndim == 3 else shape)
    return image.with_pixels(np.ascontiguousarray(out))


def center_crop(image: MedicalImage, size: int | None) -> MedicalImage:
    """The central ``size`` x ``size`` region (each side left as is where the image is smaller)."""
    if not size or (image.height <= size and image.width <= size):
        return image
    top = max(0, (image.height - size) // 2)
    left = max(0, (image.width - size) // 2)
    return image.with_pixels(np.ascontiguousarray(image.pixels[..., top:top + size, left:left + size]))


def first_frames(image: MedicalImage, count: int | None) -> MedicalImage:
    """The first ``count`` frames of a stack, with their frame times (no-op for None or a shorter stack)."""
    if not count or image.pixels.ndim != 3 or image.frames <= count:
        return image
    times = image.frame_times
    cut = image.with_pixels(np.ascontiguousarray(image.pixels[:count]))
    cut.frame_times = tuple(times[:count]) if times else None
    return cut


def load_item(item: BenchItem, *, resize: int | None = None, crop: int | None = None,
              frames: int | None = None) -> MedicalImage:
    """The item's pixels: read (a sequence's frames stacked; a one-file sequence through
    :func:`medinr.io.sequence.read_sequence`, colour as luma), cut to its first ``frames`` frames (sequences
    only), then resized (longer side), then centre-cropped."""
    if item.sequence and len(item.paths) == 1:
        from medinr.io.sequence import read_sequence

        images = [read_sequence(item.paths[0], luma=True)]
    else:
        images = [read(p, slice=item.select, luma=True) for p in item.paths]
    image = images[0]
    if len(images) > 1:
        shapes = {im.pixels.shape for im in images}
        if len(shapes) > 1:
            raise InputError(f"{item.id}: frames differ in shape ({', '.join(map(str, sorted(shapes)))})")
        times = [im.metadata.get("dicom", {}).get("TriggerTime") if im.metadata.get("dicom") else None
                 for im in images]
        frame_times = tuple(float(t) for t in times) if all(t not in (None, "") for t in times) else None
        image = image.with_pixels(np.stack([im.pixels for im in images]))
        image.frame_times = frame_times
        image.bits_stored = max(im.bits_stored for im in images)
    if item.sequence:
        image = first_frames(image, frames)
    return center_crop(resize_longer_side(image, resize), crop)
