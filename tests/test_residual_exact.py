"""The bit-exact seed predictor: accurate, close to the torch decoder, and the same bits whatever the
thread count or denormal mode (the residual depends on every one of its bits)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import medinr
from medinr.archs.exact import cosine, exact_steps, exp2, seed_prediction, sine
from medinr.bitstream import Tag, read_container
from medinr.codec import _arch_and_config
from medinr.preprocess import Normalisation
from medinr.quant import step_values
from medinr.verify import pixel_sha256

INR_FILE = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "near_lossless_d2_inr_mr.minr"


def _prediction(data: bytes) -> np.ndarray:
    container = read_container(data)
    h = container.header
    arch, config = _arch_and_config(h)
    init = arch.load_init(h.init_name, config)
    norm = Normalisation(h.norm_mean, h.norm_std, h.value_min, h.value_max)
    return seed_prediction(container.payloads(Tag.FRAME)[0], config, init, norm, (h.height, h.width))


def test_own_transcendentals_are_accurate() -> None:
    x = np.linspace(-2000.0, 2000.0, 40001)
    assert np.abs(sine(x) - np.sin(x)).max() < 1e-12
    assert np.abs(cosine(x) - np.cos(x)).max() < 1e-12
    assert max(abs(exp2(v) / 2.0**v - 1) for v in np.linspace(-30, 30, 121)) < 1e-14
    np.testing.assert_allclose(exact_steps(np.arange(256)), step_values(np.arange(256)), rtol=1e-15)


def test_exact_prediction_matches_the_torch_decoder(shared_data) -> None:
    image = medinr.read(shared_data / "cxr" / "test" / "txv_512_00000001_000.png").pixels[200:240, 200:240]
    data = medinr.encode(np.ascontiguousarray(image), arch="seed", preset="fast", fit_steps=30, fit_qat_steps=2)
    exact = _prediction(data)
    torch_decoded = medinr.decode(data).pixels.astype(np.int64)
    assert np.abs(exact - torch_decoded).max() <= 1
    assert (exact == torch_decoded).mean() > 0.99


def test_prediction_ignores_flush_to_zero() -> None:
    data = INR_FILE.read_bytes()
    reference = _prediction(data)
    if not torch.set_flush_denormal(True):  # returns whether the CPU supports it, not the previous state
        pytest.skip("this CPU has no flush-to-zero mode")
    try:
        np.testing.assert_array_equal(_prediction(data), reference)
    finally:
        torch.set_flush_denormal(False)  # the process default


_CHILD = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
import medinr
from medinr.verify import pixel_sha256
data = open(sys.argv[2], "rb").read()
print(pixel_sha256(medinr.decode(data).pixels).hex())
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_decode_is_identical_on_1_and_2_threads(threads) -> None:
    data = INR_FILE.read_bytes()
    assert read_container(data).payloads(Tag.FRAME)  # the file really carries an INR prediction
    torch.set_num_threads(1)
    here = pixel_sha256(medinr.decode(data).pixels).hex()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    child = subprocess.run([sys.executable, "-c", _CHILD, str(threads), str(INR_FILE)], env=env,
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == here
