"""Fuzz target for the ``.minr`` reader: every input must decode or end in a ``MedinrError``.

Inputs are mutations of the seed corpus (``fuzz/corpus``, rebuilt by ``make_corpus.py``):

* raw: truncation, bit flips, byte overwrites, insertions, splices of two files, random bytes (with
  and without a valid magic and version) -- these mostly stop at the CRC or the framing checks;
* structure-aware: the same mutations applied *inside* one section (header included), or sections
  dropped, duplicated or swapped, or one header field set to a random value, all re-serialised with
  valid CRCs, so the header parser, the entropy decoders, the exact predictor and the residual decoder
  see corrupt data. Header shape fields stay within twice the original: a forged header may ask for
  any shape up to the container's caps, and the decoder then legitimately works for that long.

Oracle: anything but a ``MedinrError`` is a failure; so is a lossless or near-lossless file whose
residual or prediction payload was corrupted and that still decodes to pixels other than the
original's (the residual section's digest must catch it).

Benchmark run (not CI): ``python fuzz/fuzz_decode.py --inputs 100000`` (a seeded, reproducible
mutation loop with a per-input watchdog); coverage-guided with atheris when installed:
``python fuzz/atheris_decode.py -atheris_runs=100000`` (same oracle and mutator).
"""

from __future__ import annotations

import argparse
import random
import signal
import struct
import sys
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np

import medinr
from medinr.bitstream import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MAGIC,
    Header,
    Tag,
    read_container,
)
from medinr.errors import MedinrError
from medinr.varint import write_uvarint

CORPUS = Path(__file__).resolve().parent / "corpus"
#: seconds one input may take in the benchmark loop before it counts as a hang
WATCHDOG_S = 30


def corpus() -> dict[str, bytes]:
    """The seed files by name."""
    return {p.name: p.read_bytes() for p in sorted(CORPUS.glob("*.minr"))}


def serialise(header_bytes: bytes, sections: list[tuple[int, bytes]], minor: int = FORMAT_MINOR) -> bytes:
    """A container from raw header bytes and (tag, payload) sections, with valid CRCs (no validation)."""
    out = bytearray(MAGIC + bytes([FORMAT_MAJOR, minor]))
    for tag, payload in [(int(Tag.HEADER), header_bytes), *sections, (int(Tag.END), b"")]:
        chunk = bytes([tag]) + write_uvarint(len(payload)) + payload
        out += chunk + struct.pack("<I", zlib.crc32(chunk))
    return bytes(out)


def _bytes_mutation(data: bytes, rng: random.Random) -> bytes:
    """One random byte-level edit: truncate, flip bits, overwrite, insert or delete a run."""
    buf = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0 or not buf:
        return bytes(buf[:rng.randrange(len(buf) + 1)])
    pos = rng.randrange(len(buf))
    if kind == 1:
        for _ in range(rng.randint(1, 8)):
            p = rng.randrange(len(buf))
            buf[p] ^= 1 << rng.randrange(8)
    elif kind == 2:
        run = rng.randint(1, 16)
        buf[pos:pos + run] = bytes(rng.randrange(256) for _ in range(run))
    elif kind == 3:
        buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        del buf[pos:pos + rng.randint(1, 64)]
    return bytes(buf)


def _split(data: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    container = read_container(data)
    return container.header.to_bytes(), [(int(t), p) for t, p in container.sections]


def _header_field(header_bytes: bytes, rng: random.Random) -> bytes:
    """One header field set to a random value of its wire type (shapes at most twice the original)."""
    header = Header.from_bytes(header_bytes)
    f = rng.choice(fields(Header))
    fmt = f.metadata["fmt"]
    value = getattr(header, f.name)
    if f.name in ("height", "width", "frames"):
        new: object = rng.randint(0, 2 * value)
    elif fmt in ("str", "bytes"):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
        new = raw.decode("latin-1") if fmt == "str" else raw
    elif fmt in ("d", "f"):
        new = rng.choice([0.0, -1.0, 1e300, float("nan"), float("inf"), value * rng.uniform(-2, 2), value + 1])
    elif fmt == "?":
        new = not value
    else:
        new = rng.randrange(1 << (8 * struct.calcsize(fmt)))
    try:
        setattr(header, f.name, new)
        return header.to_bytes()
    except (ValueError, struct.error, UnicodeEncodeError, OverflowError):
        return header_bytes


def _structured(data: bytes, rng: random.Random) -> tuple[bytes, bool]:
    """A CRC-valid mutation of a parsed file; also says whether only a residual/prediction payload changed."""
    header, sections = _split(data)
    kind = rng.randrange(5)
    if kind == 0:
        return serialise(_header_field(header, rng), sections), False
    if kind == 1:
        return serialise(_bytes_mutation(header, rng), sections), False
    if kind == 2 and sections:
        i = rng.randrange(len(sections))
        tag, payload = sections[i]
        sections[i] = (tag, _bytes_mutation(payload, rng))
        return serialise(header, sections), tag in (Tag.RESIDUAL, Tag.FRAME)
    if kind == 3 and sections:
        i, j = rng.randrange(len(sections)), rng.randrange(len(sections))
        choice = rng.randrange(3)
        if choice == 0:
            del sections[i]
        elif choice == 1:
            sections.insert(j, sections[i])
        else:
            sections[i], sections[j] = sections[j], sections[i]
        return serialise(header, sections), False
    tag = rng.choice([t for t in range(256) if t not in (Tag.END, Tag.HEADER)])
    sections.insert(rng.randrange(len(sections) + 1), (tag, bytes(rng.randrange(256) for _ in range(8))))
    return serialise(header, sections), False


def mutate(seeds: list[bytes], rng: random.Random) -> tuple[bytes, bytes | None, bool]:
    """(input, the seed it came from or None, whether only its residual/prediction payload changed)."""
    seed = rng.choice(seeds)
    kind = rng.randrange(10)
    if kind < 4:
        return _bytes_mutation(seed, rng), seed, False
    if kind == 4:
        other = rng.choice(seeds)
        return seed[:rng.randrange(len(seed) + 1)] + other[rng.randrange(len(other) + 1):], None, False
    if kind == 5:
        prefix = MAGIC + bytes([FORMAT_MAJOR, rng.randrange(FORMAT_MINOR + 2)]) if rng.random() < 0.5 else b""
        return prefix + bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))), None, False
    mutated, payload_only = _structured(seed, rng)
    return mutated, seed, payload_only


def check(data: bytes, seed: bytes | None = None, payload_only: bool = False,
          reference: Callable[[bytes], np.ndarray] | None = None) -> str:
    """Decode one input; returns ``"ok"`` or ``"error"`` and raises AssertionError on a failure.

    A non-medinr exception propagates as the failure itself. ``reference(seed)`` gives the seed's
    decoded pixels, needed to check a residual file whose payload changed but that still decodes.
    """
    try:
        decoded = medinr.decode(data).pixels
    except MedinrError:
        return "error"
    if payload_only and seed is not None and reference is not None:
        original = read_container(seed)
        if original.payloads(Tag.RESIDUAL):
            expected = reference(seed)
            assert decoded.shape == expected.shape and np.array_equal(decoded, expected), \
                "corrupted residual file decoded to wrong pixels without an error"
    return "ok"


def _reference() -> Callable[[bytes], np.ndarray]:
    cache: dict[bytes, np.ndarray] = {}

    def reference(seed: bytes) -> np.ndarray:
        if seed not in cache:
            cache[seed] = medinr.decode(seed).pixels
        return cache[seed]
    return reference


class _Hang(Exception):
    pass


def run(inputs: int, seed: int, crashes: Path) -> int:
    """The benchmark loop: ``inputs`` mutations; failing inputs are saved under ``crashes``."""
    seeds = list(corpus().values())
    rng = random.Random(seed)
    reference = _reference()
    counts = {"ok": 0, "error": 0, "failure": 0, "hang": 0}

    def alarm(signum: int, frame: object) -> None:
        raise _Hang

    signal.signal(signal.SIGALRM, alarm)
    start = time.time()
    for n in range(inputs):
        data, origin, payload_only = mutate(seeds, rng)
        signal.alarm(WATCHDOG_S)
        try:
            counts[check(data, origin, payload_only, reference)] += 1
        except _Hang:
            counts["hang"] += 1
            _save(crashes, "hang", n, data, "")
        except Exception:  # noqa: BLE001  (anything but a MedinrError is what the fuzzer looks for)
            counts["failure"] += 1
            _save(crashes, "failure", n, data, traceback.format_exc())
        finally:
            signal.alarm(0)
        if (n + 1) % 1000 == 0:
            print(f"{n + 1} inputs, {counts}, {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    print(f"done: {inputs} inputs in {time.time() - start:.0f} s: {counts}")
    return 1 if counts["failure"] or counts["hang"] else 0


def _save(folder: Path, kind: str, n: int, data: bytes, trace: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{kind}-{n}.minr").write_bytes(data)
    if trace:
        (folder / f"{kind}-{n}.txt").write_text(trace)
    print(f"{kind} at input {n}: {trace.strip().splitlines()[-1] if trace else 'watchdog'}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    sys.exit(run(args.inputs, args.seed, args.crashes))


if __name__ == "__main__":
    main()
