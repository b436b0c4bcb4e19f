"""Golden streams: files written by an earlier version must keep decoding to the same pixels.

A failure here means the meaning of existing ``.minr`` files changed. If that is intended (a new format version),
regenerate with ``python tests/golden/make_golden.py`` and say so in the commit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medinr import codec
from medinr.errors import BitstreamError

HERE = Path(__file__).resolve().parent
CASES = sorted(p.stem for p in HERE.glob("*.minr"))


def test_cases_present() -> None:
    assert {"grid-cxr-1bpp", "seed-mr-psnr", "nearlossless-mr", "nearlossless-cxr-tiled", "grid-mr-compact",
            "grid-wavelet-cxr", "grid-wavelet-magnitudes-cxr", "grid-wavelet-interpolated-cxr",
            "grid-wavelet-symmetric-cxr", "grid-wavelet-named-cxr", "grid-video-temporal-cxr",
            "grid-video-scaled-cxr"} <= set(CASES)


def test_the_golden_streams_cover_both_header_forms() -> None:
    """Legacy header and END section (1.1, 1.3, 1.4), the compact ones (1.5-1.9) and the named ones (1.10 on), with
    each frame and residual coding (1.2 added only the TIMING section, 1.6 wavelet latents, 1.7 a context network
    reading magnitudes, 1.8 interpolated parentless levels, 1.9 the wavelet's symmetric edge extension, 1.11
    ``grid-video`` latents as spectra along time, 1.12 their frequency scales)."""
    assert {(HERE / f"{name}.minr").read_bytes()[5] for name in CASES} == {1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}


@pytest.mark.parametrize("name", CASES)
def test_golden_stream_decodes_to_the_stored_pixels(name: str) -> None:
    decoded = codec.decode((HERE / f"{name}.minr").read_bytes()).pixels
    expected = np.load(HERE / f"{name}.npy")
    assert decoded.dtype == expected.dtype and decoded.shape == expected.shape
    # float32 synthesis may round one value differently on another instruction set (see archs.grid)
    diff = np.abs(decoded.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= 1 and np.count_nonzero(diff) <= expected.size // 100


@pytest.mark.parametrize(("name", "bound", "minor"), [("nearlossless-mr", 2, 1), ("nearlossless-cxr-tiled", 1, 4)])
def test_near_lossless_golden_is_exact_and_within_its_bound(name: str, bound: int, minor: int) -> None:
    """Untiled (1.1) and tiled (1.4) residual sections."""
    from make_golden import source  # noqa: PLC0415 (the generator's own crop of the shipped sample)

    data = (HERE / f"{name}.minr").read_bytes()
    decoded = codec.decode(data).pixels
    np.testing.assert_array_equal(decoded, np.load(HERE / f"{name}.npy"))
    assert data[5] == minor
    assert np.abs(decoded.astype(np.int64) - source(name).astype(np.int64)).max() <= bound


@pytest.mark.parametrize("name", CASES)
def test_golden_stream_with_one_flipped_bit_is_rejected(name: str) -> None:
    data = bytearray((HERE / f"{name}.minr").read_bytes())
    data[len(data) // 2] ^= 0x10
    with pytest.raises(BitstreamError):
        codec.decode(bytes(data))


def test_grid_goldens_cover_both_latent_codings() -> None:
    """One grid stream per latent coding: per-symbol (format 1.2 and before) and table-coded (1.3, flag set)."""
    assert (HERE / "grid-cxr-1bpp.minr").read_bytes()[5] < 3
    assert (HERE / "grid-cxr-tables.minr").read_bytes()[5] == 3


@pytest.mark.parametrize("name", ["grid-cxr-tables", "grid-wavelet-cxr", "grid-wavelet-magnitudes-cxr",
                                  "grid-wavelet-interpolated-cxr", "grid-wavelet-symmetric-cxr",
                                  "grid-wavelet-named-cxr", "grid-video-temporal-cxr", "grid-video-scaled-cxr"])
def test_grid_golden_decodes_identically_on_one_and_two_threads(name: str, decode_on_one_and_two_threads) -> None:
    one, two = decode_on_one_and_two_threads((HERE / f"{name}.minr").read_bytes())
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize(("name", "form"), [("grid-mr-compact", "_read_compact_side"),
                                            ("grid-cxr-tables", "_read_legacy_side")])
def test_the_golden_streams_cover_both_forms_of_network_side_information(name: str, form: str, monkeypatch) -> None:
    from medinr import entropy

    calls = []
    original = getattr(entropy, form)
    monkeypatch.setattr(entropy, form, lambda *args: calls.append(1) or original(*args))
    codec.decode((HERE / f"{name}.minr").read_bytes())
    assert calls
