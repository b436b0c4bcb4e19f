"""A tiny real benchmark run shared by the runner and report tests (64 px crops, few fitting steps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medinr.bench.runner import make_config, run_bench


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """One torch thread: the INR baselines fit tiny networks, where a second thread only adds contention."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def bench_run(tmp_path_factory, shared_data) -> tuple[Path, dict]:
    """medinr (seed, 20 fitting steps), JPEG 2000 and SPIHT on a 64 px crop of a real chest X-ray, plus
    JPEG on a 16-bit cine frame it cannot code: (results path, document)."""
    out = tmp_path_factory.mktemp("bench") / "results.json"
    cfg = make_config(codecs=["medinr:seed:fast", "jpeg2000", "spiht", "jpeg"], medinr_bpps=[1.0, 2.0],
                      fit_steps=20, crop=64, rate_points=4, threads=1)
    specs = [str(shared_data / "cxr" / "test" / "txv_512_00000001_000.png"),
             str(shared_data / "cine" / "test" / "SCD0000401_mid" / "frame00.dcm")]
    document = run_bench(specs, cfg, out=out)
    return out, document
