"""Video metrics on stored values: per-frame and mean PSNR / MS-SSIM, temporal flicker, and rate in video
units (bpp and Mbps at the sequence's frame rate; :data:`medinr.io.sequence.DEFAULT_FPS` when the source
carries no timing, reported as assumed)."""

from __future__ import annotations

from typing import Any

import numpy as np

from medinr.errors import InputError
from medinr.metrics import default_peak, ms_ssim, ms_ssim_method, psnr


def temporal_flicker(ref: np.ndarray, test: np.ndarray) -> float:
    """Mean absolute temporal-difference error: mean |Δ_t test - Δ_t ref| over consecutive frames, in stored
    units. Zero for an error that does not change from frame to frame; large for noise that flickers."""
    ref, test = np.asarray(ref, dtype=np.float64), np.asarray(test, dtype=np.float64)
    if ref.shape != test.shape or ref.ndim != 3 or ref.shape[0] < 2:
        raise InputError(f"temporal flicker needs two (T>=2, H, W) stacks of one shape, got {ref.shape} and "
                         f"{test.shape}")
    return float(np.mean(np.abs(np.diff(test, axis=0) - np.diff(ref, axis=0))))


def mbps(num_bytes: int, frames: int, fps: float) -> float:
    """Bit rate in megabits per second of a file holding ``frames`` frames played at ``fps``."""
    return 8.0 * num_bytes * fps / frames / 1e6


def video_report(ref: np.ndarray, test: np.ndarray, *, num_bytes: int, fps: float, fps_known: bool,
                 encode_seconds: float | None = None, decode_seconds: float | None = None) -> dict[str, Any]:
    """Quality, flicker, rate and speed of a decoded sequence against its source (peak: the whole source's
    max - min, the same for every frame)."""
    ref, test = np.asarray(ref), np.asarray(test)
    frames = ref.shape[0]
    peak = default_peak(ref)
    per_frame_psnr = [psnr(r, t, peak=peak) for r, t in zip(ref, test)]
    per_frame_ssim = [ms_ssim(r[None], t[None], data_range=peak) for r, t in zip(ref, test)]
    report: dict[str, Any] = {
        "psnr": psnr(ref, test, peak=peak), "psnr_mean_frames": float(np.mean(per_frame_psnr)),
        "psnr_per_frame": per_frame_psnr, "ms-ssim": float(np.mean(per_frame_ssim)),
        "ms-ssim_per_frame": per_frame_ssim, "ms-ssim_method": ms_ssim_method(ref.shape),
        "temporal_flicker": temporal_flicker(ref, test), "bytes": int(num_bytes),
        "bpp": 8.0 * num_bytes / ref.size, "mbps": mbps(num_bytes, frames, fps), "fps": fps,
        "fps_assumed": not fps_known, "frames": frames,
    }
    if encode_seconds is not None:
        report["encode_seconds_per_frame"] = encode_seconds / frames
    if decode_seconds is not None:
        report["decode_ms_per_frame"] = 1000.0 * decode_seconds / frames
    return report
