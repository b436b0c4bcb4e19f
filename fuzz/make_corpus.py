"""Rebuild the fuzzing seed corpus (fuzz/corpus/*.minr): small real files of every kind the reader handles.

Tiny crops of the shared sample data, tiny fits, so the files stay a few kilobytes and decode fast:
lossy seed (a 2-frame 12-bit stack with DICOM metadata and a source hash), lossy grid (8-bit),
lossless without an INR (8-bit), lossless signed 16-bit, near-lossless (δ = 2) on top of a seed INR, and a
3-frame cine clip with frame times (format 1.2, TIMING section) as one (x, y, t) ``grid-video`` representation. Run from the
repository root: ``python fuzz/make_corpus.py``.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import medinr
from medinr.archs import get_arch
from medinr.bitstream import write_container
from medinr.codec import _header_for
from medinr.config import preset_config
from medinr.preprocess import Normalisation
from medinr.residual import encode_near_lossless

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CORPUS = Path(__file__).resolve().parent / "corpus"
TINY = {"arch": "seed", "preset": "fast", "fit_steps": 20, "fit_qat_steps": 2}


def _inr_file(image: medinr.MedicalImage, max_error: int) -> bytes:
    """A near-lossless file that must carry an INR prediction (the encoder would drop it on such a tiny crop)."""
    cfg = preset_config("fast", fit_steps=20, fit_qat_steps=2)
    frames = image.frame_stack()
    norm = Normalisation.of(frames)
    chosen = encode_near_lossless(frames, norm, max_error, "mri", get_arch("seed"), cfg, (1.0,), require_inr=True)
    header = _header_for(image, norm, "mri", "seed", chosen.config.to_bytes(), chosen.init)
    return write_container(header, chosen.sections)


def main() -> None:
    torch.set_num_threads(1)
    mr = medinr.read(DATA / "mri" / "test" / "emri_small_head_12bit_10fr.dcm")
    cxr = medinr.read(DATA / "cxr" / "test" / "txv_512_00000001_000.png")
    cine = medinr.read(DATA / "cine" / "train" / "SCD0000101_mid" / "frame00.dcm")
    stack = mr.with_pixels(np.ascontiguousarray(mr.pixels[4:6, 24:40, 24:40]))
    series = medinr.read(DATA / "cine" / "train" / "SCD0000101_mid")
    clip = replace(series, pixels=np.ascontiguousarray(series.pixels[:3, 120:136, 120:136]),
                   frame_times=series.frame_times[:3], metadata={})
    signed = cine.with_pixels((cine.pixels[120:136, 120:136].astype(np.int32) - 300).astype(np.int16))
    files = {
        "seed_lossy_mr_2fr_meta_hash.minr": medinr.encode(stack, keep_metadata=True, source_hash=True, **TINY),
        "grid_lossy_cxr_8bit.minr": medinr.encode(np.ascontiguousarray(cxr.pixels[200:232, 200:232]), arch="grid",
                                                  preset="fast", grid_steps=20),
        "lossless_cxr_8bit_hash.minr": medinr.encode(np.ascontiguousarray(cxr.pixels[200:224, 200:224]),
                                                     max_error=0, inr_bpps=(), source_hash=True),
        "lossless_signed_16bit.minr": medinr.encode(signed, max_error=0, inr_bpps=()),
        "grid_video_cine_3fr_timing.minr": medinr.encode(clip, arch="grid-video", preset="fast", grid_steps=10),
        "near_lossless_d2_inr_mr.minr": _inr_file(mr.with_pixels(np.ascontiguousarray(mr.pixels[5, 20:44, 20:44])), 2),
    }
    CORPUS.mkdir(exist_ok=True)
    for name, data in files.items():
        (CORPUS / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
