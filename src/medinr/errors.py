"""Exception hierarchy: every failure a user can cause ends in a ``MedinrError`` with a one-line message."""

from __future__ import annotations


class MedinrError(Exception):
    """Base class of all errors medinr raises on purpose; the CLI prints its message and exits non-zero."""

    exit_code = 2


class InputError(MedinrError):
    """The input image or file cannot be used (unreadable, unsupported format, bit depth, shape, NaNs)."""


class BitstreamError(MedinrError):
    """A ``.minr`` stream is corrupted, truncated, of an unknown version or otherwise not decodable."""

    exit_code = 3


class RateControlError(MedinrError):
    """A rate or quality target is impossible (e.g. a negative bpp, or a PSNR above what the preset can reach)."""


class InitError(MedinrError):
    """A meta-learned initialisation is missing, corrupt, or not the one a bitstream was made with."""


class MissingDependencyError(MedinrError):
    """An optional dependency needed for this operation is not installed; the message names it."""

    def __init__(self, package: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs the optional package '{package}', which is not installed "
                         f"(pip install {package})")
        self.package = package
