"""Sequences (2D+t: cardiac cine, echo): DICOM series folders, PNG-sequence folders, lossless video files
(FFV1 in Matroska, through the system's ``ffmpeg``) and 4D NIfTI. Everything becomes a ``(T, H, W)``
:class:`MedicalImage` with ``frame_times`` in ms from the first frame.

A DICOM series folder is ordered by TriggerTime, then InstanceNumber; files of another series or slice
location, gaps in InstanceNumber and frames of different sizes are refused. Writers keep per-frame timing:
a series gets TriggerTime per file, a multi-frame DICOM FrameTime(Vector) (:mod:`medinr.io.dicom`), a
video file its frame rate plus the exact times in a tag, a PNG sequence a ``sequence.json`` sidecar.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from medinr.errors import InputError, MissingDependencyError
from medinr.io.common import SliceSpec, image_from_array, make_image, one_line, take_slice
from medinr.io.dicom import (
    Derivation,
    dicom_frame_times,
    is_dicom_file,
    new_dataset,
    read_dataset,
    read_dicom,
    write_dicom,
)
from medinr.io.image import MedicalImage
from medinr.io.raster import read_png_jpeg, write_png

#: frame rate assumed when a source carries no timing (reports must say it was assumed)
DEFAULT_FPS = 30.0
#: video containers read through ffmpeg; ``.mkv`` (FFV1, lossless) is also written
VIDEO_EXTENSIONS = (".mkv", ".avi", ".mp4", ".mov", ".nut", ".webm")
#: sidecar of a PNG sequence folder: frame times, bits stored, signed offset
PNG_SIDECAR = "sequence.json"
_TAG_PREFIX = "MEDINR_"
_DEPTH_RE = re.compile(r"p?(\d+)(le|be)$")


def require_sequence(image: MedicalImage, what: str = "this operation") -> None:
    """InputError unless ``image`` holds at least two frames (a single frame is not a video)."""
    if image.frames < 2:
        raise InputError(f"{what} needs a sequence of at least 2 frames, got a single {image.height}x{image.width} "
                         "frame")


def frame_rate(image: MedicalImage) -> tuple[float, bool]:
    """Frames per second from the frame times, and whether they were known (else :data:`DEFAULT_FPS`)."""
    return rate_of(image.frame_times)


def rate_of(times: tuple[float, ...] | None) -> tuple[float, bool]:
    """Frames per second of frame times in ms (mean interval), and whether known (else :data:`DEFAULT_FPS`)."""
    if times is None or len(times) < 2 or times[-1] <= times[0]:
        return DEFAULT_FPS, False
    return 1000.0 * (len(times) - 1) / (times[-1] - times[0]), True


def read_sequence(path: str | os.PathLike[str], *, slice: str | None = None,  # noqa: A002
                  z: int | None = None, luma: bool = False) -> MedicalImage:
    """Read any sequence source (folder, video file, multi-frame DICOM, ``.npy``, 4D NIfTI with slice ``z``)
    and require at least two frames. ``luma=True`` reads a colour DICOM (e.g. ultrasound) as its luma."""
    from medinr.io.dispatch import read

    path = Path(path)
    nifti = path.name.lower().endswith((".nii", ".nii.gz"))
    if z is not None and not nifti:
        raise InputError(f"{path}: z selects a slice of a 4D NIfTI only")
    if nifti:
        try:
            image = read_nifti_sequence(path, z)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from exc
        image.source_path = str(path)
    else:
        image = read(path, slice=slice, luma=luma)
    try:
        require_sequence(image, "a video")
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return image


def read_dicom_luma(path: Path) -> MedicalImage:
    """A DICOM file as grayscale: the coded Y plane of YBR_FULL(_422) (no colour conversion), rounded BT.601
    luma of RGB, grayscale files as :func:`medinr.io.dicom.read_dicom` reads them. Timing as in the file."""
    from pydicom.pixels import pixel_array

    if int(read_dataset(path, stop_before_pixels=True).get("SamplesPerPixel", 1) or 1) == 1:
        return read_dicom(path, None)  # grayscale: the pixel data is read once, there
    ds = read_dataset(path)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if int(ds.get("BitsStored", 8)) != 8:
        raise InputError(f"colour DICOM with {ds.get('BitsStored')} bits per sample: luma is read from 8-bit only")
    try:
        pixels = pixel_array(ds, as_rgb=False)
    except (ValueError, RuntimeError, AttributeError, NotImplementedError) as exc:
        raise InputError(f"cannot decode DICOM pixel data: {one_line(exc)}") from exc
    if photometric.startswith("YBR_FULL"):
        gray = pixels[..., 0]
    elif photometric == "RGB":
        gray = np.rint(pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    else:
        raise InputError(f"no luma for photometric interpretation {photometric!r}")
    times = dicom_frame_times(ds, len(gray)) if gray.ndim == 3 else None
    del ds.PixelData
    for keyword in ("PlanarConfiguration", "SamplesPerPixel", "PhotometricInterpretation"):
        ds.pop(keyword, None)
    return make_image(np.ascontiguousarray(gray), source_format="dicom", bits_stored=8, modality=ds.get("Modality"),
                      frame_times=times, metadata={"dicom": ds, "luma_of": photometric})


# ---------------------------------------------------------------------------------------------- folders

def read_folder(path: Path, sel: SliceSpec | None) -> MedicalImage:
    """A folder of single-frame DICOMs of one series, or of PNG frames (named in frame order)."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    dicoms = [p for p in files if p.suffix.lower() in (".dcm", ".dicom") or (not p.suffix and is_dicom_file(p))]
    pngs = [p for p in files if p.suffix.lower() == ".png"]
    if dicoms and pngs:
        raise InputError(f"folder mixes {len(dicoms)} DICOM and {len(pngs)} PNG files")
    if dicoms:
        image = read_dicom_series(dicoms)
    elif pngs:
        image = read_png_sequence(path, pngs)
    else:
        raise InputError("folder holds no DICOM (.dcm) or PNG frames")
    if sel is not None:
        pixels, spacing, where = take_slice(image.pixels, sel, (None, *image.pixel_spacing)
                                            if image.pixel_spacing else None)
        image.pixels, image.pixel_spacing, image.frame_times = pixels, spacing, None
        image.metadata["slice"] = where
    return image


def _header(path: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path.name}: not a readable DICOM file ({one_line(exc)})") from exc


def _one_value(headers: list[Any], files: list[Path], keyword: str, what: str) -> None:
    """InputError naming the first file whose ``keyword`` differs from the first file's."""
    first = headers[0].get(keyword)
    for ds, f in zip(headers, files):
        value = ds.get(keyword)
        if keyword == "SliceLocation" and first is not None and value is not None:
            same = abs(float(value) - float(first)) < 1e-3
        else:
            same = value == first
        if not same:
            raise InputError(f"{f.name} is of another {what} ({keyword} {value} vs {first} in {files[0].name}): "
                             "a series folder must hold one sequence")


def read_dicom_series(files: list[Path]) -> MedicalImage:
    """Stack single-frame DICOM files of one series and slice, ordered by TriggerTime then InstanceNumber."""
    headers = [_header(f) for f in files]
    for ds, f in zip(headers, files):
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise InputError(f"{f.name} is a multi-frame DICOM: read it on its own, not as part of a series")
    _one_value(headers, files, "SeriesInstanceUID", "series")
    _one_value(headers, files, "SliceLocation", "slice location")
    for keyword in ("Rows", "Columns"):
        _one_value(headers, files, keyword, "frame size")
    for keyword in ("BitsStored", "PixelRepresentation", "PhotometricInterpretation"):
        _one_value(headers, files, keyword, "pixel format")
    numbers = [ds.get("InstanceNumber") for ds in headers]
    if len(files) > 1:
        if any(n is None for n in numbers):
            raise InputError("a series frame lacks InstanceNumber: the frame order cannot be checked")
        ordered = np.sort(np.asarray(numbers, dtype=np.int64))
        gaps = np.flatnonzero(np.diff(ordered) != 1)
        if gaps.size:
            a, b = ordered[gaps[0]], ordered[gaps[0] + 1]
            raise InputError(f"series has missing or duplicate frames: InstanceNumber {a} is followed by {b}")
    triggers = [ds.get("TriggerTime") for ds in headers]
    has_trigger = all(t is not None and str(t).strip() != "" for t in triggers)
    keys = [((float(t) if has_trigger else 0.0), int(n or 0)) for t, n in zip(triggers, numbers)]
    order = sorted(range(len(files)), key=lambda i: keys[i])
    frames = [read_dicom(files[i], None) for i in order]
    first = frames[0]
    pixels = np.stack([f.pixels for f in frames]) if len(frames) > 1 else first.pixels
    times = None
    if has_trigger and len(frames) > 1:
        t = np.asarray([keys[i][0] for i in order])
        times = tuple((t - t[0]).tolist())
    metadata = dict(first.metadata)
    metadata["dicom_frames"] = [f.metadata["dicom"] for f in frames]
    metadata["series_files"] = [files[i].name for i in order]
    return make_image(pixels, source_format="dicom-series", bits_stored=first.bits_stored, signed=first.signed,
                      photometric=first.photometric, modality=first.modality, body_part=first.body_part,
                      pixel_spacing=first.pixel_spacing, frame_times=times, rescale_slope=first.rescale_slope,
                      rescale_intercept=first.rescale_intercept, metadata=metadata)


def write_dicom_series(image: MedicalImage, folder: Path, derivation: Derivation | None = None) -> None:
    """One single-frame DICOM per frame (``frameNNN.dcm``) sharing one SeriesInstanceUID, with
    InstanceNumber in frame order and TriggerTime = the first frame's TriggerTime + ``frame_times``."""
    from pydicom.uid import generate_uid
    from pydicom.valuerep import DSfloat

    stack = image.frame_stack()
    sources = image.metadata.get("dicom_frames")
    per_frame = sources is not None and len(sources) == len(stack)
    template = image.metadata.get("dicom") or new_dataset(image, stack[0])
    series_uid = str(template.get("SeriesInstanceUID") or generate_uid())
    base_number = int(template.get("InstanceNumber", 1) or 1)
    trigger0 = float(template.get("TriggerTime", 0.0) or 0.0)
    times = image.frame_times if image.frame_times is not None and len(image.frame_times) == len(stack) else None
    width = max(3, len(str(len(stack) - 1)))
    for i, frame in enumerate(stack):
        ds = copy.deepcopy(sources[i] if per_frame else template)
        if not per_frame:
            ds.SOPInstanceUID = generate_uid()  # the template's UID belongs to one frame only
            ds.InstanceNumber = base_number + i
            if times is not None:
                ds.TriggerTime = DSfloat(trigger0 + times[i], auto_format=True)
        ds.SeriesInstanceUID = series_uid
        one = image.with_pixels(frame)
        one.frame_times = None
        one.metadata = {"dicom": ds}
        write_dicom(one, folder / f"frame{i:0{width}d}.dcm", derivation)


def read_png_sequence(folder: Path, files: list[Path]) -> MedicalImage:
    """PNG frames in file-name order (natural: ``f2`` before ``f10``), with the sidecar's timing when present."""
    key = lambda p: [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", p.name)]  # noqa: E731
    frames = [read_png_jpeg(p, None, fmt="png") for p in sorted(files, key=key)]
    shapes = {f.pixels.shape for f in frames}
    if len(shapes) > 1:
        raise InputError(f"PNG frames differ in size: {', '.join(str(s) for s in sorted(shapes))}")
    if len({f.pixels.dtype for f in frames}) > 1:
        raise InputError("PNG frames differ in bit depth (8 and 16 bit mixed)")
    pixels = np.stack([f.pixels for f in frames]) if len(frames) > 1 else frames[0].pixels
    side: dict[str, Any] = {}
    sidecar = folder / PNG_SIDECAR
    if sidecar.is_file():
        try:
            side = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable {PNG_SIDECAR} ({one_line(exc)})") from exc
    pixels = _from_container(pixels, side.get("dtype"), int(side.get("offset", 0)))
    times = side.get("frame_times")
    if times is not None and len(times) != len(frames):
        raise InputError(f"{PNG_SIDECAR} lists {len(times)} frame times for {len(frames)} frames")
    return make_image(pixels, source_format="png-sequence", bits_stored=side.get("bits_stored"),
                      frame_times=tuple(times) if times is not None else None)


def write_png_sequence(image: MedicalImage, folder: Path) -> None:
    """``frameNNN.png`` per frame (8/16 bit; signed data shifted by 2**(bits-1)) plus the timing sidecar."""
    samples, offset = _to_container(image.frame_stack(), "PNG")
    width = max(3, len(str(len(samples) - 1)))
    for i, frame in enumerate(samples):
        write_png(image.with_pixels(frame), folder / f"frame{i:0{width}d}.png")
    side = {"bits_stored": image.bits_stored, "dtype": image.pixels.dtype.name, "offset": offset,
            "frame_times": list(image.frame_times) if image.frame_times is not None else None}
    (folder / PNG_SIDECAR).write_text(json.dumps(side))


def write_sequence(image: MedicalImage, path: str | os.PathLike[str], *, derivation: Derivation | None = None,
                   folder_format: str = "dicom") -> Path:
    """Write a sequence: ``.mkv`` (FFV1), ``.dcm`` (multi-frame), ``.nii``/``.nii.gz`` (4D), ``.npy``, or a
    folder (no extension) of ``folder_format`` ``"dicom"`` (one file per frame) or ``"png"`` frames.

    A folder is filled under a temporary name and renamed, so it appears complete or not at all; an
    existing non-empty folder is refused.
    """
    from medinr.io.dispatch import write

    path = Path(path)
    if path.name.lower().endswith((".nii", ".nii.gz")):
        return _atomic_file(path, lambda tmp: write_nifti_sequence(image, tmp))
    if path.suffix:
        return write(image, path, derivation=derivation)
    writers = {"dicom": lambda d: write_dicom_series(image, d, derivation), "png": lambda d: write_png_sequence(image, d)}
    if folder_format not in writers:
        raise InputError(f"unknown folder format {folder_format!r}: choose dicom or png")
    if not path.parent.is_dir():
        raise InputError(f"{path}: output folder {path.parent} does not exist")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"{path}: exists and is not an empty folder")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    tmp.mkdir()
    try:
        writers[folder_format](tmp)
        os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"{path}: cannot write ({one_line(exc)})") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _atomic_file(path: Path, writer: Any) -> Path:
    from medinr.io.common import atomic_write

    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else path.suffix
    atomic_write(path, suffix, writer)
    return path


# ---------------------------------------------------------------------------------------------- video files

def _ffmpeg(tool: str = "ffmpeg") -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise MissingDependencyError(tool, "reading and writing video files (install Debian's ffmpeg package)")
    return exe


def run_ffmpeg(args: list[str], data: bytes | None = None, tool: str = "ffmpeg") -> bytes:
    """Run ffmpeg/ffprobe quietly with ``data`` on stdin; stdout as bytes, InputError with its last line on failure."""
    proc = subprocess.run([_ffmpeg(tool), "-v", "error", "-nostdin", *args] if tool == "ffmpeg"
                          else [_ffmpeg(tool), "-v", "error", *args],
                          input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"{tool} failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
    return proc.stdout


def _pix_depth(pix_fmt: str) -> int:
    match = _DEPTH_RE.search(pix_fmt)
    return int(match[1]) if match else 8


def probe_video(path: Path) -> dict[str, Any]:
    """Width, height, pix_fmt, frame rate (Fraction or None) and tags of a video file's first stream."""
    out = run_ffmpeg(["-select_streams", "v:0", "-show_entries",
                      "stream=width,height,pix_fmt,avg_frame_rate,r_frame_rate:format_tags:stream_tags",
                      "-of", "json", str(path)], tool="ffprobe")
    info = json.loads(out or b"{}")
    streams = info.get("streams") or []
    if not streams:
        raise InputError("file holds no video stream")
    s = streams[0]
    rate = None
    for key in ("avg_frame_rate", "r_frame_rate"):
        num, _, den = str(s.get(key, "0/0")).partition("/")
        if den and int(den) and int(num):
            rate = Fraction(int(num), int(den))
            break
    tags = {k.upper(): v for k, v in {**(info.get("format") or {}).get("tags", {}), **s.get("tags", {})}.items()}
    return {"width": int(s["width"]), "height": int(s["height"]), "pix_fmt": str(s["pix_fmt"]), "rate": rate,
            "tags": tags}


def decode_gray_frames(source: str, depth: int, height: int, width: int, data: bytes | None = None,
                       input_args: tuple[str, ...] = ()) -> np.ndarray:
    """All frames of a gray or YUV video (file name, or ``pipe:0`` with ``data``) as (T, H, W) samples of
    ``depth`` bits: the Y plane exactly as coded (``extractplanes``, no range or depth conversion; decoders
    may output a 4:0:0 stream as YUV with flat chroma)."""
    out_fmt = "gray" if depth <= 8 else f"gray{depth}le" if depth < 16 else "gray16le"
    raw = run_ffmpeg([*input_args, "-i", source, "-map", "0:v:0", "-vf", "extractplanes=y", "-fps_mode",
                      "passthrough", "-f", "rawvideo", "-pix_fmt", out_fmt, "pipe:1"], data)
    dtype = np.dtype(np.uint8 if depth <= 8 else "<u2")
    frame_bytes = height * width * dtype.itemsize
    if not raw or len(raw) % frame_bytes:
        raise InputError(f"video decoded to {len(raw)} bytes, not a whole number of {width}x{height} frames")
    return np.frombuffer(raw, dtype=dtype).reshape(-1, height, width).astype(dtype.newbyteorder("="))


def read_video(path: Path, sel: SliceSpec | None) -> MedicalImage:
    """A video file through ffmpeg; medinr's own tags (from :func:`write_video`) restore bits, sign and times."""
    info = probe_video(path)
    if not info["pix_fmt"].startswith(("gray", "yuv", "nv")):
        raise InputError(f"colour video ({info['pix_fmt']}) is not supported: medinr codes grayscale only")
    pixels = decode_gray_frames(str(path), _pix_depth(info["pix_fmt"]), info["height"], info["width"])
    tags = info["tags"]
    pixels = _from_container(pixels, tags.get(_TAG_PREFIX + "DTYPE"), int(tags.get(_TAG_PREFIX + "OFFSET", 0)))
    times: tuple[float, ...] | None = None
    if _TAG_PREFIX + "FRAME_TIMES" in tags:
        times = tuple(float(v) for v in tags[_TAG_PREFIX + "FRAME_TIMES"].split(","))
        if len(times) != len(pixels):
            raise InputError(f"video tag lists {len(times)} frame times for {len(pixels)} frames")
    elif info["rate"] is not None:
        times = tuple((np.arange(len(pixels)) * 1000.0 / float(info["rate"])).tolist())
    bits = int(tags[_TAG_PREFIX + "BITS_STORED"]) if _TAG_PREFIX + "BITS_STORED" in tags else None
    meta = {"video": {"pix_fmt": info["pix_fmt"], "luma_only": not info["pix_fmt"].startswith("gray"),
                      "frame_rate": None if info["rate"] is None else float(info["rate"])}}
    if len(pixels) == 1 or sel is not None:
        pixels = pixels[0] if len(pixels) == 1 else pixels
        times = None
    return image_from_array(pixels, sel, source_format="video", bits_stored=bits, frame_times=times,
                            modality=tags.get(_TAG_PREFIX + "MODALITY"), metadata=meta)


def _container(dtype: np.dtype) -> tuple[np.dtype, int]:
    """Unsigned 8/16-bit samples a file stores ``dtype`` in, and the offset added to signed values."""
    unsigned = np.dtype(np.uint8 if dtype.itemsize == 1 else np.uint16)
    return unsigned, (1 << (8 * unsigned.itemsize - 1)) if dtype.kind == "i" else 0


def _to_container(stack: np.ndarray, what: str) -> tuple[np.ndarray, int]:
    """Integer samples shifted into unsigned 8/16 bit, or an InputError when they do not fit."""
    if stack.dtype.kind == "f":
        raise InputError(f"{stack.dtype} pixels cannot be stored in {what}; write .npy or .nii instead")
    unsigned, offset = _container(stack.dtype)
    shifted = stack.astype(np.int64) + offset
    if shifted.min() < 0 or shifted.max() > np.iinfo(unsigned).max:
        raise InputError(f"values [{stack.min()}, {stack.max()}] do not fit {8 * unsigned.itemsize}-bit {what}")
    return shifted.astype(unsigned), offset


def _from_container(samples: np.ndarray, dtype: str | None, offset: int) -> np.ndarray:
    if dtype is None:
        return samples
    return (samples.astype(np.int64) - offset).astype(np.dtype(dtype))


def write_video(image: MedicalImage, dest: Path) -> None:
    """Lossless FFV1 in Matroska: 8-bit or 16-bit gray samples (signed shifted to unsigned), dtype and
    bits stored and frame times in tags."""
    stack = image.frame_stack()
    samples, offset = _to_container(stack, "a video")
    fps, _ = frame_rate(image)
    rate = Fraction(fps).limit_denominator(1001)
    tags = {"BITS_STORED": image.bits_stored, "DTYPE": stack.dtype.name, "OFFSET": offset}
    if image.frame_times is not None:
        tags["FRAME_TIMES"] = ",".join(repr(float(t)) for t in image.frame_times)
    if image.modality:
        tags["MODALITY"] = image.modality
    meta = [arg for k, v in tags.items() for arg in ("-metadata", f"{_TAG_PREFIX}{k}={v}")]
    h, w = stack.shape[1:]
    fmt = "gray" if samples.dtype == np.uint8 else "gray16le"
    run_ffmpeg(["-f", "rawvideo", "-pix_fmt", fmt, "-s", f"{w}x{h}", "-framerate", str(rate), "-i", "pipe:0",
                "-c:v", "ffv1", "-level", "3", "-g", "1", "-pix_fmt", fmt, *meta, "-f", "matroska", "-y",
                str(dest)], samples.astype(samples.dtype.newbyteorder("<")).tobytes())


# ---------------------------------------------------------------------------------------------- 4D NIfTI

_TIME_UNIT_MS = {"sec": 1000.0, "msec": 1.0, "usec": 0.001}


def read_nifti_sequence(path: Path, z: int | None) -> MedicalImage:
    """Slice ``z`` of a 4D (X, Y, Z, T) NIfTI as the (T, X, Y) sequence, timed by pixdim[4] in its unit.

    ``z`` may be left out when Z is 1; 2D+t files (X, Y, T) are read as they are.
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    try:
        img = nib.load(path)
    except (ImageFileError, OSError) as exc:
        raise InputError(f"not a NIfTI file ({one_line(exc)})") from exc
    raw = np.asarray(img.dataobj.get_unscaled() if hasattr(img.dataobj, "get_unscaled") else img.dataobj)
    if raw.ndim == 3 and img.header.get_xyzt_units()[1] != "unknown":
        raw = raw[:, :, None, :]  # (X, Y, T) with a time unit: a single-slice sequence
    if raw.ndim != 4:
        raise InputError(f"expected a 4D (X, Y, Z, T) NIfTI sequence, got shape {raw.shape}")
    if z is None:
        if raw.shape[2] != 1:
            raise InputError(f"4D NIfTI has {raw.shape[2]} slices: choose one with z")
        z = 0
    if not -raw.shape[2] <= z < raw.shape[2]:
        raise InputError(f"slice z={z} out of range for {raw.shape[2]} slices")
    pixels = np.moveaxis(raw[:, :, z, :], -1, 0)
    zooms = img.header.get_zooms()
    unit = _TIME_UNIT_MS.get(img.header.get_xyzt_units()[1])
    times = None
    if unit is not None and len(zooms) > 3 and float(zooms[3]) > 0:
        times = tuple((np.arange(len(pixels)) * float(zooms[3]) * unit).tolist())
    return make_image(pixels, source_format="nifti", pixel_spacing=(float(zooms[0]), float(zooms[1])),
                      frame_times=times, rescale_slope=float(getattr(img.dataobj, "slope", 1.0)),
                      rescale_intercept=float(getattr(img.dataobj, "inter", 0.0)),
                      metadata={"affine": np.asarray(img.affine, dtype=np.float64), "slice": (2, z % raw.shape[2])})


def write_nifti_sequence(image: MedicalImage, dest: Path) -> None:
    """The (T, H, W) stack as an (H, W, 1, T) NIfTI with the mean frame interval in ms as pixdim[4]."""
    import nibabel as nib

    stack = image.frame_stack()
    data = np.moveaxis(stack, 0, -1)[:, :, None, :]
    affine = image.metadata.get("affine")
    if affine is None or np.shape(affine) != (4, 4):
        spacing = image.pixel_spacing or (1.0, 1.0)
        affine = np.diag([*spacing[:2], 1.0, 1.0])
    img = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
    img.set_data_dtype(data.dtype)
    fps, _ = frame_rate(image)
    img.header.set_xyzt_units("mm", "msec")
    img.header.set_zooms((*img.header.get_zooms()[:3], 1000.0 / fps))
    if (image.rescale_slope, image.rescale_intercept) != (1.0, 0.0):
        img.header.set_slope_inter(image.rescale_slope, image.rescale_intercept)
    nib.save(img, dest)
