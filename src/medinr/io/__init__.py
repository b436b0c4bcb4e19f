"""Readers and writers for medical formats; everything becomes a :class:`MedicalImage`.

``read(path, slice=None)`` handles DICOM, NIfTI, PNG/TIFF/JPEG, NumPy and fastMRI HDF5;
``write(image, path, derivation=None)`` writes DICOM, PNG, TIFF, NumPy and NIfTI atomically.
"""

from medinr.io.dicom import Derivation
from medinr.io.dispatch import SUPPORTED_READ_EXTENSIONS, SUPPORTED_WRITE_EXTENSIONS, read, write
from medinr.io.image import MedicalImage

__all__ = ["Derivation", "MedicalImage", "SUPPORTED_READ_EXTENSIONS", "SUPPORTED_WRITE_EXTENSIONS", "read", "write"]
