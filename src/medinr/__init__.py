"""medinr: medical image compression with implicit neural representations.

Public API: :func:`encode`, :func:`decode`, :func:`read`, :func:`write`, :class:`MedicalImage`.
"""

from __future__ import annotations

from typing import Any

from medinr.errors import BitstreamError, InputError, MedinrError, RateControlError
from medinr.io.image import MedicalImage

__version__ = "0.1.0"
__all__ = ["encode", "decode", "encode_report", "read", "write", "MedicalImage", "MedinrError", "InputError",
           "BitstreamError", "RateControlError", "__version__"]


def __getattr__(name: str) -> Any:
    """Import the heavy layers (torch, pydicom) only when their functions are first used."""
    if name in ("encode", "decode", "encode_report"):
        from medinr import codec

        return getattr(codec, name)
    if name in ("read", "write"):
        from medinr import io

        return getattr(io, name)
    raise AttributeError(f"module 'medinr' has no attribute {name!r}")
