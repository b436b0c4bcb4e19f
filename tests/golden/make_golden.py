"""Regenerate golden streams: ``python tests/golden/make_golden.py NAME...`` (only when a format change is meant).

Each case is a small crop of a shipped sample image, encoded once; the stream and its decoded stored values are
kept, so the decoder of every later version must turn the same bytes into the same pixels (CompressAI-style
golden files). Encoders may change; the meaning of a stream may not. ``grid-cxr-1bpp`` is a format 1.2 stream
(per-symbol latent coding) and stays one; ``grid-cxr-tables`` is 1.3 (table-coded latents: its 256 px crop has
passes large enough); ``nearlossless-cxr-tiled`` is 1.4 (a tiled residual section: the encoder tiles frames of
512 px and more, so this small crop is written with the tile size lowered to 16, ragged tiles included);
``grid-mr-compact`` is 1.5 (the compact header and one-byte END marker, on a 12-bit source); ``grid-wavelet-cxr`` is
1.6 (wavelet latents: 4 levels, and a frame padded from 200 x 232 to 208 x 240); ``grid-wavelet-magnitudes-cxr`` is
1.7 (a context network that reads magnitudes); ``grid-wavelet-interpolated-cxr`` is 1.8 (an interpolated
approximation band, 16 x 16); the 1.6-1.8 cases ask for the periodic ``cdf97`` that encoders then used;
``grid-wavelet-symmetric-cxr`` is 1.9 (the symmetric edge extension, a frame padded from 248 x 248 to 256 x 256);
``grid-wavelet-named-cxr`` is 1.10 (the header's names as codes, from the shipped ``grid-wavelet-cxr`` init);
``grid-video-temporal-cxr`` is 1.11 (``grid-video`` latents coded as spectra along time, on a sequence of the crop
moving down a row a frame); ``grid-video-scaled-cxr`` is 1.12 (the same with frequency scales).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from medinr import codec
from medinr.io.dispatch import read
from medinr.residual import coder

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parents[1] / "src" / "medinr" / "data" / "samples"

#: name -> (sample file, crop (rows, cols), encode options)
CASES: dict[str, tuple[str, tuple[slice, slice], dict]] = {
    "grid-cxr-1bpp": ("cxr_nih_00000001_000_crop256.png", (slice(96, 160), slice(96, 160)),
                      {"arch": "grid", "preset": "fast", "bpp": 1.0, "grid_steps": 60}),
    "seed-mr-psnr": ("mr_head_12bit_2frames.dcm", (slice(8, 56), slice(8, 56)),
                     {"arch": "seed", "preset": "fast", "psnr": 30.0, "fit_steps": 60}),
    "nearlossless-mr": ("mr_head_12bit_2frames.dcm", (slice(16, 48), slice(16, 48)),
                        {"max_error": 2}),
    "grid-cxr-tables": ("cxr_nih_00000001_000_crop256.png", (slice(0, 256), slice(0, 256)),
                        {"arch": "grid", "preset": "fast", "bpp": 0.5, "grid_steps": 20}),
    "nearlossless-cxr-tiled": ("cxr_nih_00000001_000_crop256.png", (slice(100, 172), slice(60, 160)),
                               {"max_error": 1}),
    "grid-mr-compact": ("mr_head_12bit_2frames.dcm", (slice(8, 56), slice(8, 56)),
                        {"arch": "grid", "preset": "fast", "bpp": 2.0, "grid_steps": 30}),
    "grid-wavelet-cxr": ("cxr_nih_00000001_000_crop256.png", (slice(20, 220), slice(10, 242)),
                         {"arch": "grid-wavelet", "preset": "fast", "bpp": 0.5, "grid_steps": 20,
                          "grid_context_magnitudes": False, "grid_upsampling": "cdf97"}),
    "grid-wavelet-magnitudes-cxr": ("cxr_nih_00000001_000_crop256.png", (slice(30, 230), slice(0, 216)),
                                    {"arch": "grid-wavelet", "preset": "fast", "bpp": 1.0, "grid_steps": 20,
                                     "grid_upsampling": "cdf97"}),
    "grid-wavelet-interpolated-cxr": ("cxr_nih_00000001_000_crop256.png", (slice(0, 256), slice(0, 256)),
                                      {"arch": "grid-wavelet", "preset": "fast", "bpp": 0.2, "grid_steps": 20,
                                       "grid_upsampling": "cdf97"}),
    "grid-wavelet-symmetric-cxr": ("cxr_nih_00000001_000_crop256.png", (slice(0, 248), slice(8, 256)),
                                   {"arch": "grid-wavelet", "preset": "fast", "bpp": 0.3, "grid_steps": 20}),
    "grid-wavelet-named-cxr": ("cxr_nih_00000001_000_crop256.png", (slice(0, 256), slice(0, 256)),
                               {"arch": "grid-wavelet", "preset": "fast", "bpp": 0.1, "grid_steps": 20,
                                "modality": "cxr"}),
    "grid-video-temporal-cxr": ("cxr_nih_00000001_000_crop256.png", (slice(100, 132), slice(90, 130)),
                                {"arch": "grid-video", "preset": "fast", "bpp": 1.0, "video_steps": 20,
                                 "video_frequency_scales": False}),
    "grid-video-scaled-cxr": ("cxr_nih_00000001_000_crop256.png", (slice(60, 92), slice(100, 140)),
                              {"arch": "grid-video", "preset": "fast", "bpp": 0.5, "video_steps": 20}),
}
#: sequence cases and their frame counts: the crop moved down one row a frame
FRAMES = {"grid-video-temporal-cxr": 5, "grid-video-scaled-cxr": 6}
#: cases written with the residual coder's tile size lowered (small crops that still hold several tiles)
TILE_OVERRIDE = {"nearlossless-cxr-tiled": 16}


def source(name: str) -> np.ndarray:
    """The case's source pixels: the first frame of the sample, cropped; a sequence case's (T, H, W) frames."""
    file, (rows, columns), _ = CASES[name]
    frame = read(SAMPLES / file).frame_stack()[0]
    if name not in FRAMES:
        return np.ascontiguousarray(frame[rows, columns])
    return np.stack([frame[rows.start + t:rows.stop + t, columns] for t in range(FRAMES[name])])


def main(names: list[str]) -> None:
    for name in names:
        options = CASES[name][2]
        default_tile = coder.TILE
        coder.TILE = TILE_OVERRIDE.get(name, default_tile)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = codec.encode(source(name), **{"modality": "generic", **options})
        finally:
            coder.TILE = default_tile
        (HERE / f"{name}.minr").write_bytes(data)
        np.save(HERE / f"{name}.npy", codec.decode(data).pixels)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
