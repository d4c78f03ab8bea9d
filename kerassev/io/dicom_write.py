"""Write a grayscale image in ``[0, 1]`` as a small, valid DICOM file (CR, Explicit VR Little Endian).

Used to turn synthetic phantoms into DICOM so that the real DICOM loaders run on them unchanged.
Stored values are ``round(image01 * (2**bits_stored - 1))``; for ``MONOCHROME1`` they are inverted
(``max - value``), so a reader that applies the MONOCHROME1 inversion recovers ``image01``.
UIDs that are not given are derived deterministically (``generate_uid`` with ``entropy_srcs``)
from the patient id, the parent UIDs and the pixel content, so rewriting a file is reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ComputedRadiographyImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")
BITS = (8, 12, 16)
_UID_TAG = "kerassev"  # namespace for the deterministic UID entropy sources


def full_range_window(bits_stored: int) -> tuple[float, float]:
    """``(center, width)`` of the LINEAR window that maps stored ``0..2**bits-1`` onto ``[0, 1]``
    exactly (PS3.3 C.11.2.1.2), so a VOI-applying reader recovers ``image01`` without stretching."""
    return float(1 << (bits_stored - 1)), float(1 << bits_stored)


def stored_values(
    image01: np.ndarray,
    *,
    photometric: Literal["MONOCHROME1", "MONOCHROME2"] = "MONOCHROME2",
    bits_stored: Literal[8, 12, 16] = 12,
) -> np.ndarray:
    """The integer pixel values :func:`write_dicom` stores for ``image01`` (uint8 or uint16)."""
    img = np.asarray(image01)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale image, got shape {img.shape}")
    if not np.issubdtype(img.dtype, np.floating) and not np.issubdtype(img.dtype, np.integer):
        raise ValueError(f"expected a numeric image, got dtype {img.dtype}")
    img = img.astype(np.float64)
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or infinite values")
    if img.min() < 0.0 or img.max() > 1.0:
        raise ValueError(f"image values must lie in [0, 1]; got [{img.min():.4g}, {img.max():.4g}]")
    if photometric not in PHOTOMETRICS:
        raise ValueError(f"photometric must be one of {PHOTOMETRICS}, got {photometric!r}")
    if bits_stored not in BITS:
        raise ValueError(f"bits_stored must be one of {BITS}, got {bits_stored!r}")
    top = (1 << bits_stored) - 1
    values = np.rint(img * top).astype(np.int64)
    if photometric == "MONOCHROME1":
        values = top - values  # MONOCHROME1: low values display bright
    return values.astype(np.uint8 if bits_stored == 8 else np.uint16)


def write_dicom(
    path: str | Path,
    image01: np.ndarray,
    *,
    photometric: Literal["MONOCHROME1", "MONOCHROME2"] = "MONOCHROME2",
    bits_stored: Literal[8, 12, 16] = 12,
    patient_id: str,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    view_position: str = "AP",
    pixel_spacing: tuple[float, float] = (0.2, 0.2),
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``image01`` (2-D, values in [0, 1]) to ``path`` as a CR DICOM file; return the path.

    ``window`` is ``(center, width)`` for the VOI LUT tags, ``rescale`` is ``(slope, intercept)``
    for the modality LUT tags (stored values are unchanged by either). ``extra`` sets further
    attributes by DICOM keyword (e.g. ``{"StudyDate": "20200401"}``).
    """
    pixels = stored_values(image01, photometric=photometric, bits_stored=bits_stored)
    if not str(patient_id).strip():
        raise ValueError("patient_id must be a non-empty string")
    patient_id = str(patient_id)
    if window is not None and not float(window[1]) > 0:
        raise ValueError(f"window width must be > 0, got {window!r}")
    if rescale is not None and float(rescale[0]) == 0:
        raise ValueError(f"rescale slope must be non-zero, got {rescale!r}")
    for keyword in extra or {}:
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"unknown DICOM keyword in extra: {keyword!r}")

    path = Path(path)
    study_uid = study_uid or generate_uid(entropy_srcs=[_UID_TAG, "study", patient_id])
    series_uid = series_uid or generate_uid(entropy_srcs=[_UID_TAG, "series", str(study_uid)])
    if sop_uid is None:
        digest = hashlib.sha256(pixels.tobytes()).hexdigest()
        sop_uid = generate_uid(entropy_srcs=[_UID_TAG, "sop", str(series_uid), photometric, digest])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "KERASSEV_0_1"

    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = ComputedRadiographyImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    # Type 2 attributes of the patient/study/series modules: present, possibly empty.
    ds.PatientName = patient_id
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.Modality = "CR"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = view_position
    ds.PatientOrientation = ["L", "F"]  # columns run to the patient's left, rows to the feet
    ds.PixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
    ds.ImagerPixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
    ds.set_pixel_data(pixels, photometric, bits_stored, generate_instance_uid=False)
    if rescale is not None:
        ds.RescaleSlope = float(rescale[0])
        ds.RescaleIntercept = float(rescale[1])
        ds.RescaleType = "US"
    if window is not None:
        ds.WindowCenter = float(window[0])
        ds.WindowWidth = float(window[1])
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)

    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
