"""Metrics against hand-computed values, an independent SSIM, and real image crops."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from PIL import Image

from medinr import metrics
from medinr.errors import InputError


@pytest.fixture(scope="module")
def cxr(shared_data) -> np.ndarray:
    """A 200x200 8-bit crop of a real NIH chest X-ray (large enough for 5-scale MS-SSIM)."""
    return np.asarray(Image.open(shared_data / "cxr" / "test" / "00000001_000.png"))[400:600, 400:600]


def _noisy(x: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(x + rng.normal(0, sigma, x.shape)), 0, 255).astype(x.dtype)


def test_psnr_hand_values() -> None:
    ref = np.array([[0, 10], [20, 30]], dtype=np.uint8)
    test = np.array([[1, 9], [21, 29]], dtype=np.uint8)  # MSE 1, peak max-min = 30
    assert metrics.psnr(ref, test) == pytest.approx(10 * math.log10(900))
    assert metrics.psnr(ref, test, peak=100.0) == pytest.approx(40.0)
    assert metrics.psnr_bits(ref, test, bits=8) == pytest.approx(20 * math.log10(255))
    assert metrics.psnr_bits(ref, test, bits=12) == pytest.approx(20 * math.log10(4095))
    assert metrics.psnr(ref, ref) == math.inf


def test_psnr_constant_reference_uses_peak_one() -> None:
    ref = np.zeros((3, 3), dtype=np.int16)
    assert metrics.psnr(ref, ref + 1) == pytest.approx(0.0)  # MSE 1, peak 1


def test_psnr_is_over_the_whole_stack() -> None:
    ref = np.stack([np.arange(16).reshape(4, 4)] * 2).astype(np.uint16)  # peak 15
    test = ref.copy()
    test[1] += 2  # MSE over the stack = (0 * 16 + 4 * 16) / 32 = 2
    assert metrics.psnr(ref, test) == pytest.approx(10 * math.log10(225 / 2))


def test_errors_are_computed_without_integer_wraparound() -> None:
    ref = np.array([[0, 0]], dtype=np.uint8)
    test = np.array([[255, 0]], dtype=np.uint8)
    assert metrics.max_abs_error(ref, test) == 255.0
    assert metrics.rmse(ref, test) == pytest.approx(math.sqrt(255**2 / 2))
    signed = np.array([[-2048, 2047]], dtype=np.int16)
    assert metrics.max_abs_error(signed, -signed - 1) == 4095.0


def test_shape_mismatch_is_an_input_error() -> None:
    with pytest.raises(InputError, match="shape"):
        metrics.psnr(np.zeros((4, 4)), np.zeros((4, 5)))


def test_bpp_and_compression_ratio() -> None:
    assert metrics.bpp(1000, 8000) == 1.0
    assert metrics.compression_ratio(1000, 8000, 12) == 12.0
    assert metrics.compression_ratio(512, 64 * 64, 8) == 8.0


def test_ms_ssim_method_by_size() -> None:
    assert metrics.ms_ssim_method((161, 300)) == "ms-ssim"
    assert metrics.ms_ssim_method((4, 160, 300)) == "ssim (image under 161 px)"
    assert metrics.ms_ssim_method((10, 64)) == "unavailable (image under 11 px)"


def test_ms_ssim_on_real_crop(cxr: np.ndarray) -> None:
    assert metrics.ms_ssim_method(cxr.shape) == "ms-ssim"
    assert metrics.ms_ssim(cxr, cxr, 255.0) == pytest.approx(1.0, abs=1e-6)
    mild, strong = metrics.ms_ssim(cxr, _noisy(cxr, 2), 255.0), metrics.ms_ssim(cxr, _noisy(cxr, 12), 255.0)
    assert 0.0 < strong < mild < 1.0


def test_single_scale_ssim_matches_scikit_image(cxr: np.ndarray) -> None:
    from skimage.metrics import structural_similarity

    ref = cxr[:64, :64]
    test = _noisy(ref, 6)
    expected = structural_similarity(ref.astype(float), test.astype(float), data_range=255, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
    assert metrics.ms_ssim(ref, test, 255.0) == pytest.approx(expected, abs=1e-4)


def test_ms_ssim_is_the_mean_over_frames(cxr: np.ndarray) -> None:
    ref = cxr[:64, :64]
    noisy = _noisy(ref, 6)
    stack = metrics.ms_ssim(np.stack([ref, ref]), np.stack([ref, noisy]), 255.0)
    assert stack == pytest.approx((1.0 + metrics.ms_ssim(ref, noisy, 255.0)) / 2, abs=1e-6)


def test_ms_ssim_is_nan_for_tiny_images(cxr: np.ndarray) -> None:
    assert math.isnan(metrics.ms_ssim(cxr[:8, :8], cxr[:8, :8], 255.0))


def test_lpips_reports_missing_package() -> None:
    if importlib.util.find_spec("lpips") is not None:
        pytest.skip("lpips is installed here")
    ok, reason = metrics.lpips_available()
    assert not ok and "'lpips'" in reason
    assert metrics.lpips(np.zeros((32, 32)), np.ones((32, 32)), 1.0) is None


def test_lpips_reports_missing_weights_without_downloading(monkeypatch, tmp_path) -> None:
    import torch

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name in ("lpips", "torchvision") else real_find_spec(name, *a))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    ok, reason = metrics.lpips_available()
    assert not ok and "not found locally" in reason and metrics.LPIPS_BACKBONE_FILE in reason
    assert not any(tmp_path.iterdir())  # nothing was fetched


def test_quality_report(cxr: np.ndarray) -> None:
    test = _noisy(cxr, 3)
    report = metrics.quality_report(cxr, test, bits=8, num_bytes=5000)
    assert set(report) == {"psnr", "psnr_bits", "ms_ssim", "ms_ssim_method", "rmse", "max_abs_error", "bpp",
                           "compression_ratio"}
    assert report["psnr"] == pytest.approx(metrics.psnr(cxr, test))
    assert report["psnr_bits"] == pytest.approx(metrics.psnr_bits(cxr, test, 8))
    assert report["ms_ssim"] == pytest.approx(metrics.ms_ssim(cxr, test, metrics.default_peak(cxr)))
    assert report["ms_ssim_method"] == "ms-ssim"
    assert report["bpp"] == pytest.approx(8 * 5000 / cxr.size)
    assert report["compression_ratio"] == pytest.approx(cxr.size * 8 / (8 * 5000))
    assert report["rmse"] ** 2 == pytest.approx(np.mean((cxr.astype(float) - test) ** 2))
