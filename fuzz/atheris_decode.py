"""Coverage-guided fuzzing of the ``.minr`` reader with atheris (libFuzzer), when it is installed.

Same oracle and structure-aware mutator as ``fuzz_decode.py``, seeded from ``fuzz/corpus``; medinr is
imported with atheris's instrumentation so libFuzzer sees its branch coverage. libFuzzer flags pass
through, e.g. ``python fuzz/atheris_decode.py -atheris_runs=100000 -timeout=30``. New interesting
inputs go to ``fuzz-work/`` in the current folder, never into the committed seed corpus.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["medinr"]):
    import medinr  # noqa: F401  (instrumented before fuzz_decode imports it)
    from medinr.bitstream import read_container
    from medinr.errors import MedinrError

import fuzz_decode  # after the instrumented import

SEEDS = list(fuzz_decode.corpus().values())


def one_input(data: bytes) -> None:
    fuzz_decode.check(data)


def mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """Mutate a parsable input structurally, anything else starting from the corpus."""
    try:
        read_container(data)
        base = [data]
    except MedinrError:
        base = SEEDS
    return fuzz_decode.mutate(base, random.Random(seed))[0][:max_size]


if __name__ == "__main__":
    work = Path("fuzz-work")
    work.mkdir(exist_ok=True)
    atheris.Setup([*sys.argv, str(work), str(fuzz_decode.CORPUS)], one_input, custom_mutator=mutator)
    atheris.Fuzz()
