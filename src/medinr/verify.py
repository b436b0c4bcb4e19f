"""Integrity: a SHA-256 of the source pixels in the file, and ``medinr verify IN.minr ORIGINAL``.

The digest covers a canonical form of the stored values, so it does not depend on the source's file
format: ``b"medinr-pixels-1|" + dtype (little-endian, e.g. "<u2") + "|N,H,W|" + the values as
little-endian C-order bytes``, with a single image taken as one frame. The HASH section holds one
algorithm byte (0 = this SHA-256) and the 32-byte digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medinr.bitstream import Container, Tag
from medinr.errors import BitstreamError
from medinr.io.dicom import Derivation
from medinr.io.image import MedicalImage

HASH_SHA256 = 0


def pixel_sha256(pixels: np.ndarray) -> bytes:
    """SHA-256 of stored values in the canonical form above (same digest for (H, W) and (1, H, W))."""
    stack = np.asarray(pixels)
    stack = stack[None] if stack.ndim == 2 else stack
    little = stack.astype(stack.dtype.newbyteorder("<"), copy=False)
    shape = ",".join(str(n) for n in stack.shape)
    h = hashlib.sha256(f"medinr-pixels-1|{little.dtype.str}|{shape}|".encode())
    h.update(np.ascontiguousarray(little).tobytes())
    return h.digest()


def hash_section(pixels: np.ndarray) -> bytes:
    """The HASH section's payload for these source pixels."""
    return bytes([HASH_SHA256]) + pixel_sha256(pixels)


def stored_sha256(container: Container) -> bytes | None:
    """The source digest a file carries, or None; BitstreamError when the section is malformed."""
    payloads = container.payloads(Tag.HASH)
    if not payloads:
        return None
    if len(payloads) > 1 or len(payloads[0]) != 33 or payloads[0][0] != HASH_SHA256:
        raise BitstreamError("corrupted integrity hash section")
    return payloads[0][1:]


def derivation_for(data: bytes) -> Derivation:
    """How a decoded file relates to its source, for DICOM: lossless (the SOP Instance UID is kept, no
    LossyImageCompression), near-lossless with its bound in DerivationDescription, or lossy."""
    from medinr.bitstream import read_container
    from medinr.codec import describe
    from medinr.residual import residual_of

    residual = residual_of(read_container(data))
    ratio = describe(data)["compression_ratio"]
    bound = None if residual is None else residual.error_bound
    if bound == 0:
        return Derivation(lossy=False, ratio=round(ratio, 2), method="MEDINR",
                          description=f"Lossless compression with medinr, ratio {ratio:.1f}:1")
    if bound is not None:
        return Derivation(lossy=True, ratio=round(ratio, 2), method="MEDINR",
                          description=f"Near-lossless compression with medinr, max error {bound} "
                                      f"(stored values), ratio {ratio:.1f}:1")
    return Derivation(lossy=True, ratio=round(ratio, 2), method="MEDINR",
                      description=f"Lossy compression with medinr ({'INR' if residual is None else 'predictive'} "
                                  f"codec), ratio {ratio:.1f}:1")


@dataclass
class VerifyReport:
    """What ``medinr verify`` found; ``ok`` is False on any mismatch."""

    shape_matches: bool
    max_abs_error: float | None
    psnr: float | None
    max_error_bound: int | None
    bound_holds: bool | None
    hash_stored: bool
    original_matches_hash: bool | None
    decoded_matches_hash: bool | None

    @property
    def ok(self) -> bool:
        checks = (self.shape_matches, self.bound_holds, self.original_matches_hash, self.decoded_matches_hash)
        return all(c is not False for c in checks)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify(data: bytes, original: MedicalImage) -> VerifyReport:
    """Decode ``data`` and compare it with ``original``: shape, max error, PSNR, the file's error bound,
    and the source hash (against the original, and for lossless files against the decoded pixels)."""
    from medinr.bitstream import read_container
    from medinr.codec import decode
    from medinr.metrics import max_abs_error, psnr
    from medinr.residual import residual_of

    container = read_container(data)
    residual = residual_of(container)
    digest = stored_sha256(container)
    decoded = decode(data).pixels
    source = original.pixels
    same_shape = decoded.shape == source.shape
    error = max_abs_error(source, decoded) if same_shape else None
    bound = None if residual is None else residual.error_bound
    lossless = bound == 0
    return VerifyReport(
        shape_matches=same_shape, max_abs_error=error, psnr=psnr(source, decoded) if same_shape else None,
        max_error_bound=bound, bound_holds=None if bound is None or error is None else error <= bound,
        hash_stored=digest is not None,
        original_matches_hash=None if digest is None else pixel_sha256(source) == digest,
        decoded_matches_hash=pixel_sha256(decoded) == digest if digest is not None and lossless else None)
