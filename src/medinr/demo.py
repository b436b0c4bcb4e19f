"""``medinr demo``: encode and decode the shipped sample images, with JPEG 2000 at the same rate beside them."""

from __future__ import annotations

import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

from medinr.bench.baselines import encode_to_bpp, get_baseline
from medinr.codec import encode_report
from medinr.io import read, write
from medinr.metrics import quality_report

#: sample file -> medinr target bpp
SAMPLES = {"cxr_nih_00000001_000_crop256.png": 1.0, "mr_head_12bit_2frames.dcm": 3.0}


def sample_paths() -> list[Path]:
    root = resources.files("medinr") / "data" / "samples"
    return [Path(str(root / name)) for name in SAMPLES]


def _jpeg2000_at(image: Any, bpp: float) -> dict[str, Any]:
    """JPEG 2000 (OpenJPEG) frame by frame at the same total bpp, measured like medinr."""
    import numpy as np

    codec = get_baseline("jpeg2000")
    frames = image.frame_stack()
    start = time.perf_counter()
    files = [encode_to_bpp(codec, f, bpp, bits=image.bits_stored, signed=image.signed)[0] for f in frames]
    seconds = time.perf_counter() - start
    decoded = np.stack([codec.decode(d, bits=image.bits_stored, signed=image.signed) for d in files])
    metrics = quality_report(image.pixels, decoded.reshape(image.pixels.shape), bits=image.bits_stored,
                             num_bytes=sum(len(d) for d in files))
    return {**metrics, "encode_seconds": seconds}


def run_demo(preset: str = "fast", progress: Any = None) -> list[dict[str, Any]]:
    """Encode, decode (to the source's format, in a temporary folder) and compare each sample."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path, bpp in zip(sample_paths(), SAMPLES.values()):
            image = read(path)
            result = encode_report(image, bpp=bpp, preset=preset, progress=progress)
            minr = Path(tmp) / (path.stem + ".minr")
            minr.write_bytes(result.data)
            write(result.decoded, Path(tmp) / ("decoded_" + path.name))
            rows.append({"file": path.name, "shape": list(image.pixels.shape), "bits": image.bits_stored,
                         "medinr": result.metrics, "jpeg2000": _jpeg2000_at(image, result.metrics["bpp"]),
                         "warnings": result.warnings})
    return rows
