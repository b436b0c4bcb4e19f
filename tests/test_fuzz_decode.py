"""A short fuzz pass over the ``.minr`` reader (the long one is ``fuzz/fuzz_decode.py``, benchmark only):
every input decodes or ends in a MedinrError, and a corrupted residual file never decodes to wrong pixels."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medinr.codec import describe

FUZZ = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_decode.py"
_spec = importlib.util.spec_from_file_location("fuzz_decode", FUZZ)
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

SEEDS = fuzz.corpus()
REFERENCE = fuzz._reference()
FUZZ_SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_corpus_has_every_kind_and_decodes() -> None:
    facts = [describe(data) for data in SEEDS.values()]
    assert {f["mode"] for f in facts} == {"lossy", "lossless", "near-lossless"}
    assert any(f["mode"] != "lossy" and f["frame_payload_bytes"] for f in facts)  # a residual on an INR
    assert {f["dtype"] for f in facts} >= {"uint8", "uint16", "int16"}
    # a 1.2 stream: a timed sequence (TIMING section) coded as one (x, y, t) representation
    assert any(f["format_version"] == "1.2" and f["arch"] == "grid-video" and not f["fps_assumed"] for f in facts)
    for data in SEEDS.values():
        assert fuzz.check(data) == "ok"


def test_seeded_mutation_pass() -> None:
    rng = random.Random(7)
    seeds = list(SEEDS.values())
    outcomes = [fuzz.check(*fuzz.mutate(seeds, rng), reference=REFERENCE) for _ in range(250)]
    assert outcomes.count("error") > 0


@pytest.mark.parametrize("name", sorted(n for n in SEEDS if "16bit" in n or "8bit" in n or "timing" in n))
def test_every_truncation_is_an_error(name) -> None:
    data = SEEDS[name]
    for end in range(len(data)):
        assert fuzz.check(data[:end]) == "error"


@FUZZ_SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    fuzz.check(data)


@FUZZ_SETTINGS
@given(st.randoms(use_true_random=False))
def test_structure_aware_mutations(rng: random.Random) -> None:
    data, seed, payload_only = fuzz.mutate(list(SEEDS.values()), rng)
    fuzz.check(data, seed, payload_only, REFERENCE)
