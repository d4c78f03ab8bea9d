"""write_dicom: valid CR files that pydicom (and kerassev.io.dicom.read_dicom) read back exactly."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID, ComputedRadiographyImageStorage, ExplicitVRLittleEndian

from kerassev.io.dicom_write import full_range_window, stored_values, write_dicom


def _ramp(h: int = 40, w: int = 56) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.random((h, w)).astype(np.float32)
    img[0, 0], img[-1, -1] = 0.0, 1.0  # full range, so a min/max reader also recovers it
    return img


@pytest.mark.parametrize("bits", [8, 12, 16])
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_roundtrip_pydicom(tmp_path, bits, photometric):
    img = _ramp()
    path = write_dicom(
        tmp_path / "sub" / "a.dcm",
        img,
        photometric=photometric,
        bits_stored=bits,
        patient_id="P001",
        view_position="PA",
        pixel_spacing=(0.15, 0.16),
    )
    ds = pydicom.dcmread(path)
    top = (1 << bits) - 1
    expected = np.rint(img.astype(np.float64) * top).astype(np.int64)
    if photometric == "MONOCHROME1":
        expected = top - expected
    arr = ds.pixel_array
    assert arr.dtype == (np.uint8 if bits == 8 else np.uint16)
    np.testing.assert_array_equal(arr.astype(np.int64), expected)
    np.testing.assert_array_equal(
        arr, stored_values(img, photometric=photometric, bits_stored=bits)
    )
    assert arr.max() == top and arr.min() == 0
    # Header: image pixel module, identity, file meta.
    assert ds.PhotometricInterpretation == photometric
    assert (ds.BitsStored, ds.HighBit, ds.BitsAllocated) == (bits, bits - 1, 8 if bits == 8 else 16)
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PixelRepresentation) == (40, 56, 1, 0)
    assert ds.PatientID == "P001" and ds.Modality == "CR" and ds.ViewPosition == "PA"
    assert [float(v) for v in ds.PixelSpacing] == [0.15, 0.16]
    assert ds.SOPClassUID == ComputedRadiographyImageStorage
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert ds.preamble == b"\0" * 128
    for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
        assert UID(uid).is_valid
    assert "WindowCenter" not in ds and "RescaleSlope" not in ds


def test_given_uids_window_rescale_and_extra_tags(tmp_path):
    path = write_dicom(
        tmp_path / "b.dcm",
        _ramp(),
        patient_id="P2",
        study_uid="1.2.3.4",
        series_uid="1.2.3.4.5",
        sop_uid="1.2.3.4.5.6",
        window=(2048.0, 4096.0),
        rescale=(2.0, -10.0),
        extra={"StudyDate": "20200401", "SeriesDescription": "test"},
    )
    ds = pydicom.dcmread(path)
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) == (
        "1.2.3.4",
        "1.2.3.4.5",
        "1.2.3.4.5.6",
    )
    assert float(ds.WindowCenter) == 2048.0 and float(ds.WindowWidth) == 4096.0
    assert float(ds.RescaleSlope) == 2.0 and float(ds.RescaleIntercept) == -10.0
    assert ds.StudyDate == "20200401" and ds.SeriesDescription == "test"


def test_uids_are_deterministic(tmp_path):
    img = _ramp()
    a = pydicom.dcmread(write_dicom(tmp_path / "a.dcm", img, patient_id="P9"))
    b = pydicom.dcmread(write_dicom(tmp_path / "b.dcm", img, patient_id="P9"))
    c = pydicom.dcmread(write_dicom(tmp_path / "c.dcm", img[::-1].copy(), patient_id="P9"))
    d = pydicom.dcmread(write_dicom(tmp_path / "d.dcm", img, patient_id="P10"))
    assert a.SOPInstanceUID == b.SOPInstanceUID and a.StudyInstanceUID == b.StudyInstanceUID
    assert c.SOPInstanceUID != a.SOPInstanceUID  # content differs
    assert d.StudyInstanceUID != a.StudyInstanceUID


@pytest.mark.parametrize(
    ("image", "kwargs", "match"),
    [
        (np.full((4, 4), 1.5), {}, r"\[0, 1\]"),
        (np.full((4, 4), -0.1), {}, r"\[0, 1\]"),
        (np.full((4, 4), np.nan), {}, "NaN"),
        (np.zeros((2, 4, 4)), {}, "2-D"),
        (np.zeros((4, 4)), {"bits_stored": 10}, "bits_stored"),
        (np.zeros((4, 4)), {"photometric": "RGB"}, "photometric"),
        (np.zeros((4, 4)), {"patient_id": " "}, "patient_id"),
        (np.zeros((4, 4)), {"window": (10.0, 0.0)}, "window"),
        (np.zeros((4, 4)), {"extra": {"NotAKeyword": 1}}, "NotAKeyword"),
    ],
)
def test_bad_input_raises(tmp_path, image, kwargs, match):
    kwargs = {"patient_id": "P", **kwargs}
    with pytest.raises(ValueError, match=match):
        write_dicom(tmp_path / "x.dcm", image, **kwargs)
    assert not (tmp_path / "x.dcm").exists()


@pytest.mark.parametrize("bits", [12, 16])
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_roundtrip_through_read_dicom(tmp_path, bits, photometric):
    from kerassev.io.dicom import read_dicom

    img = _ramp()
    top = (1 << bits) - 1
    quantised = np.rint(img.astype(np.float64) * top) / top
    # Without a window the reader stretches min/max (the ramp spans [0, 1], so: identity) ...
    plain = write_dicom(tmp_path / "plain.dcm", img, photometric=photometric, bits_stored=bits,
                        patient_id="P1")  # fmt: skip
    got = read_dicom(plain)
    assert got.pixels.dtype == np.float32
    np.testing.assert_allclose(got.pixels, quantised, atol=1e-6)
    assert got.meta.photometric_interpretation == photometric
    assert got.meta.patient_id == "P1" and got.meta.bits_stored == bits
    # ... and with the full-range window it recovers even an image that does not span [0, 1].
    dim = 0.2 + 0.5 * img
    windowed = write_dicom(tmp_path / "win.dcm", dim, photometric=photometric, bits_stored=bits,
                           patient_id="P1", window=full_range_window(bits))  # fmt: skip
    np.testing.assert_allclose(
        read_dicom(windowed).pixels, np.rint(dim.astype(np.float64) * top) / top, atol=1e-6
    )
