"""Image quality and rate metrics on stored pixel values, computed in float64.

Every function takes NumPy arrays of stored values, ``(H, W)`` or ``(N, H, W)``, of any integer or float
dtype. PSNR follows the fastMRI convention (peak = the reference's max - min); the ``2**bits - 1`` peak is
available as :func:`psnr_bits` and must be labelled "PSNR (2^bits-1 peak)" wherever it is reported.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np

from medinr.errors import InputError

#: pytorch_msssim's MS-SSIM needs a smaller side above (win_size - 1) * 2**4 = 160 pixels.
MS_SSIM_MIN_SIDE = 161
#: Gaussian window of (single-scale) SSIM; smaller images get no SSIM at all.
SSIM_WIN_SIZE = 11
#: torchvision's AlexNet weights, the LPIPS backbone, as stored in the torch hub cache.
LPIPS_BACKBONE_FILE = "alexnet-owt-7be5be79.pth"


def _pair(ref: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64 after checking they describe the same pixels."""
    ref, test = np.asarray(ref), np.asarray(test)
    if ref.shape != test.shape:
        raise InputError(f"reference and test differ in shape: {ref.shape} vs {test.shape}")
    if ref.ndim not in (2, 3) or ref.size == 0:
        raise InputError(f"expected (H, W) or (N, H, W) pixels, got shape {ref.shape}")
    return ref.astype(np.float64), test.astype(np.float64)


def _mse(ref: np.ndarray, test: np.ndarray) -> float:
    ref, test = _pair(ref, test)
    return float(np.mean(np.square(ref - test)))


def _psnr_from_mse(mse: float, peak: float) -> float:
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


def default_peak(ref: np.ndarray) -> float:
    """fastMRI peak: the reference's max - min over the whole stack, or 1.0 for a constant image."""
    ref = np.asarray(ref)
    span = float(ref.max()) - float(ref.min())
    return span if span > 0 else 1.0


def psnr(ref: np.ndarray, test: np.ndarray, peak: float | None = None) -> float:
    """PSNR in dB over all pixels of the stack; peak defaults to :func:`default_peak`; identical -> inf."""
    return _psnr_from_mse(_mse(ref, test), default_peak(ref) if peak is None else float(peak))


def psnr_bits(ref: np.ndarray, test: np.ndarray, bits: int) -> float:
    """PSNR with the nominal peak ``2**bits - 1`` of the stored bit depth (report as "PSNR (2^bits-1 peak)")."""
    return psnr(ref, test, peak=float(2**bits - 1))


def rmse(ref: np.ndarray, test: np.ndarray) -> float:
    """Root mean squared error in stored-value units."""
    return math.sqrt(_mse(ref, test))


def max_abs_error(ref: np.ndarray, test: np.ndarray) -> float:
    """Largest absolute per-pixel error in stored-value units (the near-lossless guarantee)."""
    ref, test = _pair(ref, test)
    return float(np.max(np.abs(ref - test)))


def ms_ssim_method(shape: tuple[int, ...]) -> str:
    """Which structural similarity :func:`ms_ssim` computes for images of this shape, for reports."""
    side = min(shape[-2:])
    if side < SSIM_WIN_SIZE:
        return f"unavailable (image under {SSIM_WIN_SIZE} px)"
    if side < MS_SSIM_MIN_SIDE:
        return f"ssim (image under {MS_SSIM_MIN_SIDE} px)"
    return "ms-ssim"


def ms_ssim(ref: np.ndarray, test: np.ndarray, data_range: float) -> float:
    """MS-SSIM (pytorch_msssim, mean over frames); single-scale SSIM below 161 px, nan below 11 px.

    :func:`ms_ssim_method` names what was computed. Values go in as stored (no shift), as float32
    tensors ``(N, 1, H, W)``.
    """
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim
    from pytorch_msssim import ssim as _ssim

    ref64, test64 = _pair(ref, test)
    method = ms_ssim_method(ref64.shape)
    if method.startswith("unavailable"):
        return math.nan
    x = torch.from_numpy(ref64.reshape(-1, 1, *ref64.shape[-2:]).astype(np.float32))
    y = torch.from_numpy(test64.reshape(-1, 1, *test64.shape[-2:]).astype(np.float32))
    fn = _ms_ssim if method == "ms-ssim" else _ssim
    with torch.no_grad():
        return float(fn(x, y, data_range=float(data_range), size_average=True))


def bpp(num_bytes: int, num_pixels: int) -> float:
    """Bits per pixel of a file of ``num_bytes`` bytes holding ``num_pixels`` pixels (all frames)."""
    return 8.0 * num_bytes / num_pixels


def compression_ratio(num_bytes: int, num_pixels: int, bits_stored: int) -> float:
    """Raw size at ``bits_stored`` bits per pixel divided by the file size (both in bits)."""
    return num_pixels * bits_stored / (8.0 * num_bytes)


def lpips_available() -> tuple[bool, str]:
    """Whether LPIPS can run offline: the ``lpips`` package and its AlexNet weights already on disk.

    Nothing here downloads; a missing piece is reported, never fetched.
    """
    if importlib.util.find_spec("lpips") is None:
        return False, "the 'lpips' package is not installed"
    if importlib.util.find_spec("torchvision") is None:
        return False, "LPIPS needs 'torchvision', which is not installed"
    import torch

    weights = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE_FILE
    if not weights.is_file():
        return False, f"LPIPS backbone weights not found locally ({weights}); medinr never downloads them"
    return True, f"lpips with AlexNet weights from {weights}"


_LPIPS_MODEL: Any = None


def lpips(ref: np.ndarray, test: np.ndarray, data_range: float) -> float | None:
    """LPIPS (AlexNet), mean over frames, or None when :func:`lpips_available` says it cannot run.

    Values are mapped to [-1, 1] by ``(v - ref.min()) / data_range`` and repeated to three channels.
    """
    ok, _ = lpips_available()
    if not ok:
        return None
    import lpips as lpips_pkg
    import torch

    global _LPIPS_MODEL
    if _LPIPS_MODEL is None:
        _LPIPS_MODEL = lpips_pkg.LPIPS(net="alex", verbose=False).eval()
    ref64, test64 = _pair(ref, test)
    lo = ref64.min()

    def to_tensor(a: np.ndarray) -> torch.Tensor:
        scaled = 2.0 * (a - lo) / float(data_range) - 1.0
        return torch.from_numpy(scaled.reshape(-1, 1, *a.shape[-2:]).astype(np.float32)).repeat(1, 3, 1, 1)

    with torch.no_grad():
        return float(_LPIPS_MODEL(to_tensor(ref64), to_tensor(test64)).mean())


def quality_report(ref: np.ndarray, test: np.ndarray, *, bits: int, num_bytes: int) -> dict[str, float | str]:
    """All metrics of one reconstruction as a flat dict; MS-SSIM uses the PSNR peak as its data range."""
    peak = default_peak(ref)
    num_pixels = int(np.asarray(ref).size)
    return {
        "psnr": psnr(ref, test, peak),
        "psnr_bits": psnr_bits(ref, test, bits),
        "ms_ssim": ms_ssim(ref, test, peak),
        "ms_ssim_method": ms_ssim_method(np.shape(ref)),
        "rmse": rmse(ref, test),
        "max_abs_error": max_abs_error(ref, test),
        "bpp": bpp(num_bytes, num_pixels),
        "compression_ratio": compression_ratio(num_bytes, num_pixels, bits),
    }
