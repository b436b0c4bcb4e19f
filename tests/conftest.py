"""Shared fixtures: the real sample data beside the repository (../shared/data), skipped when absent, and decoding
on one and on two torch threads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from medinr import codec

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; tests that need it are skipped on a machine without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present beside the repository")
    return SHARED_DATA


@pytest.fixture
def decode_on_one_and_two_threads() -> Callable[[bytes], tuple[np.ndarray, np.ndarray]]:
    """A function decoding a stream with torch on one thread, then on two (the caller's count restored after):
    the two decoded pixel arrays, for tests that the decoder does not depend on the thread count."""
    def decode(data: bytes) -> tuple[np.ndarray, np.ndarray]:
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            one = codec.decode(data).pixels
            torch.set_num_threads(2)
            return one, codec.decode(data).pixels
        finally:
            torch.set_num_threads(before)

    return decode
