"""Benchmark of the near-lossless / lossless modes on the shared test images (not run in CI).

For every integer image in ``<data>/{cxr,mri,cine}/test`` (cine: each sequence folder as one stack) and
every δ: encode with ``max_error=δ``, decode the real bytes, check the bound on every pixel, and record
the file's bpp beside JPEG-LS (NEAR = δ, frame by frame), and at δ = 0 JPEG 2000 and JPEG XL lossless.
``python -m medinr.residual.bench --max-pixels 300000 --out residual_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import medinr
from medinr.bench.baselines import get_baseline
from medinr.io.image import MedicalImage

DELTAS = (0, 1, 2, 4)
DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def shared_test_images(data: Path) -> list[tuple[str, MedicalImage]]:
    """(name, image) of every file under the test folders, cine sequences stacked."""
    out = []
    for kind in ("cxr", "mri", "cine"):
        for path in sorted((data / kind / "test").iterdir()):
            if path.is_dir():
                frames = [medinr.read(f) for f in sorted(path.glob("*.dcm"))]
                stack = np.stack([f.pixels for f in frames])
                out.append((f"{kind}/{path.name}", frames[0].with_pixels(stack)))
            else:
                out.append((f"{kind}/{path.name}", medinr.read(path)))
    return out


def _baseline_bpp(name: str, image: MedicalImage, delta: int) -> float | None:
    codec = get_baseline(name)
    try:
        sizes = [len(codec.encode_lossless(f, bits=image.bits_stored, signed=image.signed) if delta == 0
                     else codec.encode(f, delta, bits=image.bits_stored, signed=image.signed))
                 for f in image.frame_stack()]
    except medinr.MedinrError:
        return None
    return 8 * sum(sizes) / image.num_pixels


def run(data: Path, max_pixels: int) -> list[dict[str, Any]]:
    rows = []
    for name, image in shared_test_images(data):
        if image.is_float or image.num_pixels > max_pixels:
            reason = "float pixels" if image.is_float else f"{image.num_pixels} pixels > {max_pixels}"
            rows.append({"image": name, "skipped": reason})
            print(f"{name}: skipped ({reason})", file=sys.stderr)
            continue
        for delta in DELTAS:
            start = time.perf_counter()
            encoded = medinr.encode(image, max_error=delta)
            encode_s = time.perf_counter() - start
            decoded = medinr.decode(encoded).pixels
            error = int(np.abs(decoded.astype(np.int64) - image.pixels.astype(np.int64)).max())
            row = {"image": name, "shape": list(image.pixels.shape), "bits": image.bits_stored, "delta": delta,
                   "max_error": error, "bound_holds": error <= delta, "bpp": 8 * len(encoded) / image.num_pixels,
                   "jpegls_bpp": _baseline_bpp("jpegls", image, delta), "encode_s": encode_s,
                   "decode_s": time.perf_counter() - start - encode_s}
            if delta == 0:
                row.update(jpeg2000_bpp=_baseline_bpp("jpeg2000", image, 0), jpegxl_bpp=_baseline_bpp("jpegxl", image, 0))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--max-pixels", type=int, default=5_000_000)
    parser.add_argument("--out", type=Path, default=Path("residual_bench.json"))
    args = parser.parse_args()
    rows = run(args.data, args.max_pixels)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    failures = [r for r in rows if r.get("bound_holds") is False]
    print(f"{len(rows)} rows, bound violated in {len(failures)}; written to {args.out}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
