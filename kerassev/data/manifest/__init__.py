"""Data-set manifests and checks: :mod:`.schema` (``kerassev/data_manifests/*.yaml``, loading and
validating one) and :mod:`.check` (:func:`check_dataset`, behind ``kerassev data check``)."""

from kerassev.data.manifest.check import (
    DICOM_SUFFIXES,
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    CheckReport,
    check_dataset,
)
from kerassev.data.manifest.schema import (
    Manifest,
    ManifestError,
    available_manifests,
    load_manifest,
    manifest_dir,
)

__all__ = [
    "DICOM_SUFFIXES",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "CheckReport",
    "Manifest",
    "ManifestError",
    "available_manifests",
    "check_dataset",
    "load_manifest",
    "manifest_dir",
]
