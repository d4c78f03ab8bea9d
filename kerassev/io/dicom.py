"""Read DICOM images into ``float32`` arrays in ``[0, 1]`` with their header metadata.

Pipeline, in DICOM's own order (PS3.3 C.11, C.7.6.3.1.2):

1. decode the stored values (pydicom 3 plus the pylibjpeg plugins); pydicom masks bits above
   BitsStored and sign-extends signed data, so the stored values respect BitsStored;
2. modality LUT: Modality LUT Sequence or rescale slope/intercept (``apply_modality_lut``);
3. VOI (``apply_voi=True``): the VOI LUT Sequence when present, else the first window
   centre/width with its VOI LUT Function (LINEAR, LINEAR_EXACT, SIGMOID);
4. scale to ``[0, 1]``:

   * a window was applied: the window's output range maps to ``[0, 1]``, so values outside
     the window clip to 0 or 1 and images with the same window are comparable;
   * no window (none in the file, or ``apply_voi=False``): the actual min/max of the decoded
     array is stretched to ``[0, 1]``. This is per decoded array: ``frame=N`` stretches that
     frame alone, ``frame="all"`` the whole stack (frames keep their relative intensities).
     We chose min/max over the BitsStored range because many files use a fraction of it
     (e.g. 12 bits stored, values 0..467) and would come out nearly black. A constant image
     has no contrast and comes out constant: 0 (1 for MONOCHROME1), never a division by zero;

5. MONOCHROME1 is inverted (``1 - x``) so that air is dark and bone bright, as in MONOCHROME2.

Colour: RGB and YBR files (SamplesPerPixel 3) are converted to grayscale with ITU-R 601-2 luma
(``0.299 R + 0.587 G + 0.114 B``, the same as PIL ``"L"`` and the data packaging convention);
DICOM defines no modality or VOI LUT for colour, so only step 4 (min/max) follows. PALETTE COLOR
is rejected. Per-frame functional groups of enhanced multi-frame objects (per-frame rescale or
window) are not read: the top-level attributes are used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi, pixel_array
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

__all__ = [
    "DicomImage",
    "DicomMeta",
    "DicomReadError",
    "read_dicom",
    "read_dicom_meta",
    "to_uint8",
]

PathType = str | PathLike[str]

# Transfer syntax UID prefix -> what to install to decode it. pydicom decodes native, deflated
# and RLE itself; the rest need a plugin.
_PLUGIN_HINTS: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "pip install pylibjpeg pylibjpeg-libjpeg (or Pillow)",
    "1.2.840.10008.1.2.4.51": "pip install pylibjpeg pylibjpeg-libjpeg (or Pillow)",
    "1.2.840.10008.1.2.4.57": "pip install pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pip install pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pip install pylibjpeg pylibjpeg-libjpeg (or pyjpegls)",
    "1.2.840.10008.1.2.4.81": "pip install pylibjpeg pylibjpeg-libjpeg (or pyjpegls)",
    "1.2.840.10008.1.2.4.90": "pip install pylibjpeg pylibjpeg-openjpeg (or Pillow)",
    "1.2.840.10008.1.2.4.91": "pip install pylibjpeg pylibjpeg-openjpeg (or Pillow)",
    "1.2.840.10008.1.2.4.201": "pip install pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pip install pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pip install pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pip install pylibjpeg pylibjpeg-rle",
}

# ITU-R 601-2 luma, as PIL's "L" conversion.
_LUMA = np.array([0.299, 0.587, 0.114])


class DicomReadError(ValueError):
    """A DICOM file could not be read; ``str(err) == f"{path}: {reason}"``."""

    def __init__(self, path: PathType, reason: str):
        # Both in args so the exception pickles (tf.data / multiprocessing workers).
        super().__init__(str(path), reason)
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class DicomMeta:
    """Header fields of one DICOM file. Strings are ``""`` and image sizes ``0`` when absent."""

    path: str
    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    modality: str
    view_position: str
    photometric_interpretation: str
    # (row, column) in mm: PixelSpacing, else ImagerPixelSpacing
    pixel_spacing: tuple[float, float] | None
    rows: int
    columns: int
    number_of_frames: int
    bits_allocated: int
    bits_stored: int
    transfer_syntax_uid: str
    transfer_syntax_name: str
    window_center: float | None  # first value when the file lists several windows
    window_width: float | None


@dataclass
class DicomImage:
    """Decoded pixels, float32 in ``[0, 1]``: ``(H, W)`` for one frame, ``(F, H, W)`` for all."""

    pixels: np.ndarray
    meta: DicomMeta
    # min and max of the stored values (before any LUT) of the decoded frame(s); for reports.
    stored_range: tuple[float, float] | None = None


def read_dicom_meta(path: PathType) -> DicomMeta:
    """Header only (pixel data is not read)."""
    ds = _read_dataset(path, stop_before_pixels=True)
    return _meta(ds, path)


def read_dicom(
    path: PathType, *, frame: int | Literal["all"] = 0, apply_voi: bool = True
) -> DicomImage:
    """Decode one frame (default ``0``, the only frame of a single-frame file) or ``"all"``.

    See the module docstring for the LUT, scaling and colour rules. Every failure raises
    :class:`DicomReadError` naming the file and the reason.
    """
    if frame != "all" and (not isinstance(frame, int | np.integer) or isinstance(frame, bool)):
        raise TypeError(f"frame must be an int or 'all', got {frame!r}")
    ds = _read_dataset(path, stop_before_pixels=False)
    meta = _meta(ds, path)
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise DicomReadError(path, "float pixel data (parametric maps) is not supported")
        sop = UID(str(ds.get("SOPClassUID", ""))).name or "unknown"
        raise DicomReadError(
            path,
            f"no pixel data: the file has no (7FE0,0010) Pixel Data element (SOP class: {sop}); "
            "it is not an image or the file is truncated",
        )
    photometric = meta.photometric_interpretation.upper()
    if photometric == "PALETTE COLOR":
        raise DicomReadError(path, "PALETTE COLOR images are not supported")
    n_frames = meta.number_of_frames
    if frame != "all" and not 0 <= int(frame) < n_frames:
        raise DicomReadError(
            path,
            f"frame {frame} out of range: the file has {n_frames} frame(s) (0..{n_frames - 1})",
        )

    stored = _decode(ds, path, meta, None if frame == "all" else int(frame))
    if frame == "all" and n_frames == 1:
        stored = stored[np.newaxis]  # pydicom returns (H, W) for one frame; "all" means (F, H, W)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    stored_range = (float(stored.min()), float(stored.max())) if stored.size else None

    if samples == 3:
        values = stored.astype(np.float64) @ _LUMA
        pixels = _minmax(values)
    elif samples == 1:
        values = _modality(stored, ds, path)
        windowed = _voi(values, ds, path) if apply_voi else None
        pixels = _minmax(values) if windowed is None else windowed
        if photometric == "MONOCHROME1":
            pixels = 1.0 - pixels
    else:
        raise DicomReadError(path, f"unsupported SamplesPerPixel {samples} (expected 1 or 3)")

    expected = (meta.rows, meta.columns) if frame != "all" else (n_frames, meta.rows, meta.columns)
    if pixels.shape != expected:
        raise DicomReadError(path, f"decoded shape {pixels.shape} does not match header {expected}")
    return DicomImage(
        pixels=np.ascontiguousarray(pixels, dtype=np.float32), meta=meta, stored_range=stored_range
    )


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """``[0, 1]`` floats -> ``uint8`` 0..255 (clipped, rounded; NaN -> 0) for previews."""
    arr = np.nan_to_num(np.asarray(pixels, dtype=np.float64), nan=0.0)
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


# --- reading ---------------------------------------------------------------------------------


def _read_dataset(path: PathType, *, stop_before_pixels: bool) -> Dataset:
    p = Path(path)
    if not p.exists():
        raise DicomReadError(path, "file not found")
    if not p.is_file():
        raise DicomReadError(path, "not a file")
    try:
        # pydicom reports a file that ends inside the encapsulated pixel data only as a warning
        # and drops the element, which would later read as "no pixel data".
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=stop_before_pixels)
            except InvalidDicomError:
                ds = _read_without_preamble(p, stop_before_pixels)
    except DicomReadError:
        raise
    except (OSError, EOFError) as err:
        raise DicomReadError(path, f"cannot read file ({err})") from err
    except Exception as err:  # pydicom raises many types on corrupt headers
        raise DicomReadError(path, f"corrupt DICOM header ({type(err).__name__}: {err})") from err
    for w in caught:
        if "End of file reached" in str(w.message):
            raise DicomReadError(
                path, "truncated file: it ends before the end of the (encapsulated) pixel data"
            )
    for w in caught:  # pass the others on (invalid values etc.)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ds


def _read_without_preamble(p: Path, stop_before_pixels: bool) -> Dataset:
    """Old files without the 128-byte preamble and 'DICM' prefix; text and junk are rejected."""
    reason = "not a DICOM file (no 'DICM' prefix at byte 128 and no readable DICOM header)"
    try:
        ds = pydicom.dcmread(p, force=True, stop_before_pixels=stop_before_pixels)
    except Exception as err:
        raise DicomReadError(p, reason) from err
    # force=True turns any bytes into some "elements"; require the identity of a real object.
    if "SOPClassUID" not in ds and "PixelData" not in ds:
        raise DicomReadError(p, reason)
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = getattr(ds, "original_encoding", (True, True))
        ds.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian
            if implicit
            else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
        )
    return ds


def _meta(ds: Dataset, path: PathType) -> DicomMeta:
    try:
        ts = UID(str(ds.file_meta.get("TransferSyntaxUID", "") or ""))
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        return DicomMeta(
            path=str(path),
            patient_id=_str(ds, "PatientID"),
            study_instance_uid=_str(ds, "StudyInstanceUID"),
            series_instance_uid=_str(ds, "SeriesInstanceUID"),
            sop_instance_uid=_str(ds, "SOPInstanceUID"),
            modality=_str(ds, "Modality"),
            view_position=_str(ds, "ViewPosition"),
            photometric_interpretation=_str(ds, "PhotometricInterpretation"),
            pixel_spacing=_spacing(ds),
            rows=_int(ds, "Rows", 0),
            columns=_int(ds, "Columns", 0),
            number_of_frames=max(_int(ds, "NumberOfFrames", 1), 1),
            bits_allocated=_int(ds, "BitsAllocated", 0),
            bits_stored=_int(ds, "BitsStored", 0),
            transfer_syntax_uid=str(ts),
            transfer_syntax_name=ts.name if ts else "",
            window_center=center,
            window_width=width,
        )
    except (TypeError, ValueError) as err:
        raise DicomReadError(path, f"invalid header value ({err})") from err


def _str(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _int(ds: Dataset, keyword: str, default: int) -> int:
    value = ds.get(keyword)
    return default if value in (None, "") else int(value)


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue | list | tuple):
        return float(value[0]) if len(value) else None
    return float(value)


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    # CR/DX often carry only ImagerPixelSpacing (at the detector); use it when PixelSpacing is absent.
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2:
            return float(value[0]), float(value[1])
    return None


# --- decoding --------------------------------------------------------------------------------


def _decode(ds: Dataset, path: PathType, meta: DicomMeta, index: int | None) -> np.ndarray:
    ts = UID(meta.transfer_syntax_uid)
    label = f"{ts.name} ({ts})" if ts.name != str(ts) else f"'{ts}'"
    try:
        return pixel_array(ds, index=index)
    except NotImplementedError as err:
        if not ts.is_transfer_syntax:
            reason = f"unknown transfer syntax UID {label}; it cannot be decoded"
        else:
            reason = f"transfer syntax {label} is not supported by pydicom (no decoder exists)"
        raise DicomReadError(path, reason) from err
    except RuntimeError as err:
        if "missing dependencies" in str(err):
            hint = _PLUGIN_HINTS.get(str(ts), "install a pydicom decoding plugin for it")
            raise DicomReadError(
                path, f"cannot decode transfer syntax {label}: no decoder plugin installed; {hint}"
            ) from err
        raise DicomReadError(path, f"cannot decode {label} pixel data ({err})") from err
    except ValueError as err:
        msg = str(err)
        if "less than expected" in msg or "insufficient" in msg or "enough" in msg:
            raise DicomReadError(path, f"truncated pixel data ({msg.split(' - ')[0]})") from err
        raise DicomReadError(path, f"cannot decode {label} pixel data ({msg})") from err
    except Exception as err:  # decoder plugins raise their own types on corrupt streams
        raise DicomReadError(
            path, f"cannot decode {label} pixel data ({type(err).__name__}: {err})"
        ) from err


def _modality(stored: np.ndarray, ds: Dataset, path: PathType) -> np.ndarray:
    try:
        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    except Exception as err:
        raise DicomReadError(path, f"invalid modality LUT / rescale ({err})") from err


def _voi(values: np.ndarray, ds: Dataset, path: PathType) -> np.ndarray | None:
    """VOI LUT Sequence, else first window; output in [0, 1]. None when the file has neither."""
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        try:
            # A LUT is indexed by integers; pydicom warns (rightly) on float input.
            indices = np.rint(values).astype(np.int64)
            out = np.asarray(apply_voi(indices, ds, index=0), dtype=np.float64)
            # The LUT's own output range maps to [0, 1]: evaluate it on its whole input domain.
            n, first = ds.VOILUTSequence[0].LUTDescriptor[:2]
            domain = np.arange(first, first + (n or 65536), dtype=np.int64)
            lut = np.asarray(apply_voi(domain, ds, index=0), dtype=np.float64)
        except Exception as err:
            raise DicomReadError(
                path, f"invalid VOI LUT Sequence ({err}); pass apply_voi=False to skip it"
            ) from err
        lo, hi = float(lut.min()), float(lut.max())
        return (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)

    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is None or width is None:
        return None
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    return _window(values, center, width, function, path)


def _window(
    x: np.ndarray, center: float, width: float, function: str, path: PathType
) -> np.ndarray:
    """PS3.3 C.11.2.1.2 with output range [0, 1] (pydicom's apply_windowing up to its scale)."""
    skip = "; pass apply_voi=False to skip the window"
    if function == "LINEAR":
        if width < 1:
            raise DicomReadError(path, f"invalid window width {width} for LINEAR (< 1){skip}")
        c, w = center - 0.5, width - 1.0
        if w == 0:  # width 1 is a threshold at the centre
            return (x > c).astype(np.float64)
        return np.clip((x - c) / w + 0.5, 0.0, 1.0)
    if width <= 0:
        raise DicomReadError(path, f"invalid window width {width} for {function} (<= 0){skip}")
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    raise DicomReadError(path, f"unknown VOI LUT Function '{function}'{skip}")


def _minmax(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:  # constant image: no contrast to stretch
        return np.zeros_like(values, dtype=np.float64)
    return (values - lo) / (hi - lo)
