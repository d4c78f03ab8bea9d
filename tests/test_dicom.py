"""Tests for kerassev.io.dicom: every real file in shared/data/dicom decodes, MONOCHROME1 inversion,
LUT/window maths against pydicom, and one synthetic broken file per failure reason."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_voi_lut, get_decoder
from pydicom.uid import (
    MPEG2MPML,
    ExplicitVRLittleEndian,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from kerassev import config
from kerassev.io.dicom import (
    DicomMeta,
    DicomReadError,
    read_dicom,
    read_dicom_meta,
    to_uint8,
)

RSNA = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
RSNA_2 = "c64d5667-a776-4f95-9e21-bfabafb07740.dcm"
FAKE_MONO1 = "Fake_MONOHR1.dcm"
CR_MONO1 = ["CR1_6154.dcm", "CR2_6247.dcm", "CR3_6278.dcm"]
EMRI_VARIANTS = [
    "emri_small_RLE.dcm",
    "emri_small_big_endian.dcm",
    "emri_small_jpeg_2k_lossless.dcm",
    "emri_small_jpeg_ls_lossless.dcm",
]


def _index_rows() -> list:
    """index.csv rows for parametrisation; one placeholder when the data is absent (it skips)."""
    index = config.data_root() / "dicom" / "index.csv"
    if not index.is_file():
        return [pytest.param(None, id="dicom-data-absent")]
    with index.open(newline="") as fh:
        return [pytest.param(row, id=row["file"]) for row in csv.DictReader(fh)]


# --- every real file -------------------------------------------------------------------------


@pytest.mark.parametrize("row", _index_rows())
def test_every_indexed_file_decodes(shared_data, row):
    root = shared_data("dicom")
    path = root / row["file"]
    rows, cols, frames = int(row["rows"]), int(row["columns"]), int(row["number_of_frames"])

    image = read_dicom(path)
    assert image.pixels.shape == (rows, cols)
    assert image.pixels.dtype == np.float32
    assert image.pixels.min() >= 0.0 and image.pixels.max() <= 1.0
    assert image.pixels.max() > image.pixels.min()  # real images have contrast

    stack = read_dicom(path, frame="all")
    assert stack.pixels.shape == (frames, rows, cols)
    assert stack.pixels.dtype == np.float32
    assert stack.pixels.min() >= 0.0 and stack.pixels.max() <= 1.0

    meta = image.meta
    assert meta.path == str(path)
    assert meta.modality == row["modality"]
    assert meta.photometric_interpretation == row["photometric_interpretation"]
    assert meta.transfer_syntax_uid == row["transfer_syntax_uid"]
    assert meta.transfer_syntax_name == row["transfer_syntax_name"]
    assert (meta.rows, meta.columns, meta.number_of_frames) == (rows, cols, frames)
    assert meta.bits_allocated == int(row["bits_allocated"])
    assert meta.bits_stored == int(row["bits_stored"])
    assert read_dicom_meta(path) == meta  # header-only read agrees with the full read


@pytest.mark.parametrize("name", EMRI_VARIANTS)
def test_compressed_variants_equal_uncompressed_reference(shared_data, name):
    root = shared_data("dicom")
    reference = read_dicom(root / "emri_small.dcm", frame="all").pixels
    np.testing.assert_array_equal(read_dicom(root / name, frame="all").pixels, reference)


def test_frame_selection_and_out_of_range(shared_data):
    path = shared_data("dicom") / "emri_small.dcm"
    stored = pydicom.dcmread(path).pixel_array[3].astype(np.float64)
    expected = (stored - stored.min()) / (stored.max() - stored.min())  # no window: min/max
    np.testing.assert_allclose(read_dicom(path, frame=3).pixels, expected, atol=1e-6)
    assert read_dicom(path, frame=3).stored_range == (stored.min(), stored.max())

    with pytest.raises(DicomReadError) as err:
        read_dicom(path, frame=10)
    assert "emri_small.dcm" in str(err.value)
    assert "10 frame" in err.value.reason
    with pytest.raises(DicomReadError, match="out of range"):
        read_dicom(path, frame=-1)


# --- photometric interpretation --------------------------------------------------------------


def test_fake_monochrome1_is_inverse_of_original(shared_data):
    root = shared_data("dicom")
    original = read_dicom(root / RSNA).pixels
    fake = read_dicom(root / FAKE_MONO1).pixels
    np.testing.assert_allclose(fake, 1.0 - original, atol=1e-6)


@pytest.mark.parametrize("name", [RSNA, RSNA_2])
def test_real_chest_radiograph_spine_brighter_than_lungs(shared_data, name):
    # Real MONOCHROME2 PA/AP CXRs: the central column (spine, mediastinum) must be brighter than
    # the two lung columns. The fake MONOCHROME1 copy of the first file must come out reversed,
    # because its header says so.
    def strips(p):
        h, w = p.shape
        band = p[h // 4 : 3 * h // 4]
        cols = (0.2, 0.35), (0.45, 0.55), (0.65, 0.8)
        return [band[:, int(a * w) : int(b * w)].mean() for a, b in cols]

    left, spine, right = strips(read_dicom(shared_data("dicom") / name).pixels)
    assert spine > left + 0.05 and spine > right + 0.05
    if name == RSNA:
        left, spine, right = strips(read_dicom(shared_data("dicom") / FAKE_MONO1).pixels)
        assert spine < left - 0.05 and spine < right - 0.05


@pytest.mark.parametrize("name", CR_MONO1)
def test_cr_monochrome1_most_exposed_pixels_come_out_darkest(shared_data, name, tmp_path):
    # These are 16x16 thumbnails of C-spine views: no anatomy is resolvable, so we do not claim
    # "the border is air". What is checkable: in MONOCHROME1 a high stored value means high
    # exposure (air), so the output must fall monotonically as the stored value rises, the most
    # exposed pixel must be the darkest, and the result must be 1 - the MONOCHROME2 reading.
    path = shared_data("dicom") / name
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64).ravel()
    out = read_dicom(path).pixels.astype(np.float64).ravel()
    order = np.argsort(stored, kind="stable")
    assert np.all(np.diff(out[order]) <= 1e-6)
    assert out[np.argmax(stored)] == out.min() and out[np.argmin(stored)] == out.max()

    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.save_as(tmp_path / name)
    np.testing.assert_allclose(
        read_dicom(path).pixels, 1.0 - read_dicom(tmp_path / name).pixels, atol=1e-6
    )


def test_cr_window_matches_pydicom(shared_data):
    # Files carry rescale 0.684/200 and window 1600/2800; our [0, 1] output must equal pydicom's
    # modality + VOI result rescaled from its output range (the BitsStored range, rescaled).
    path = shared_data("dicom") / "CR1_6154.dcm"
    ds = pydicom.dcmread(path)
    ours = read_dicom(path).pixels  # MONOCHROME1: inverted after the window; pydicom does not
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    y_min, y_max = intercept, (2**ds.BitsStored - 1) * slope + intercept
    ref = apply_voi_lut(pydicom.pixels.apply_modality_lut(ds.pixel_array, ds), ds)
    np.testing.assert_allclose(1.0 - ours, (ref - y_min) / (y_max - y_min), atol=1e-6)


def test_apply_voi_false_uses_min_max(shared_data):
    path = shared_data("dicom") / "CR1_6154.dcm"
    pixels = read_dicom(path, apply_voi=False).pixels
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    assert read_dicom(path).pixels.max() < 0.6  # the wide window leaves it mid-grey


def test_meta_fields_of_real_files(shared_data):
    root = shared_data("dicom")
    meta = read_dicom_meta(root / RSNA)
    assert isinstance(meta, DicomMeta)
    assert meta.view_position == "PA"
    assert meta.pixel_spacing == (0.168, 0.168)
    assert meta.patient_id and meta.sop_instance_uid.startswith("1.2.276")
    assert meta.window_center is None and meta.window_width is None

    cr = read_dicom_meta(root / "CR1_6154.dcm")
    assert cr.pixel_spacing == (0.1, 0.1)  # from ImagerPixelSpacing, the only spacing there
    assert (cr.window_center, cr.window_width) == (1600.0, 2800.0)
    assert cr.view_position == "LL"


# --- synthetic files -------------------------------------------------------------------------


def _dataset(arr: np.ndarray, **attrs) -> Dataset:
    """Uncompressed explicit-VR-little-endian image dataset holding ``arr`` as stored values."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientID = "P1"
    ds.Modality = "OT"
    ds.Rows, ds.Columns = arr.shape[:2]
    ds.SamplesPerPixel = 3 if arr.ndim == 3 else 1
    ds.PhotometricInterpretation = "RGB" if arr.ndim == 3 else "MONOCHROME2"
    if arr.ndim == 3:
        ds.PlanarConfiguration = 0
    bits = arr.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = int(np.issubdtype(arr.dtype, np.signedinteger))
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = arr.tobytes()
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def _raises(path: Path, *words: str, **kwargs) -> DicomReadError:
    with pytest.raises(DicomReadError) as info:
        read_dicom(path, **kwargs)
    err = info.value
    assert path.name in str(err) and str(err) == f"{err.path}: {err.reason}"
    for word in words:
        assert word in err.reason, err.reason
    return err


def test_missing_file(tmp_path):
    _raises(tmp_path / "absent.dcm", "file not found")
    with pytest.raises(DicomReadError, match="absent.dcm: file not found"):
        read_dicom_meta(tmp_path / "absent.dcm")


def test_text_file_is_not_dicom(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("patient notes\n" * 20)
    _raises(path, "not a DICOM file")
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    _raises(empty, "not a DICOM file")


def test_no_pixel_data(tmp_path):
    ds = _dataset(np.zeros((4, 4), np.uint8))
    del ds.PixelData
    err = _raises(_save(ds, tmp_path / "header_only.dcm"), "no pixel data")
    assert "Secondary Capture" in err.reason  # names what the object is
    assert read_dicom_meta(tmp_path / "header_only.dcm").rows == 4  # header alone is fine


def test_truncated_native_pixel_data(tmp_path):
    path = _save(_dataset(np.arange(64, dtype=np.uint16).reshape(8, 8)), tmp_path / "cut.dcm")
    path.write_bytes(path.read_bytes()[:-40])
    _raises(path, "truncated pixel data")


def test_truncated_encapsulated_pixel_data(tmp_path):
    ds = _dataset(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 1000)
    ds.compress(RLELossless)
    path = _save(ds, tmp_path / "cut_rle.dcm")
    read_dicom(path)  # intact file decodes
    path.write_bytes(path.read_bytes()[:-100])
    _raises(path, "truncated")


def test_unknown_transfer_syntax(tmp_path):
    ds = _dataset(np.zeros((4, 4), np.uint8))
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6"
    ds.save_as(tmp_path / "odd_ts.dcm", implicit_vr=False, little_endian=True)
    _raises(tmp_path / "odd_ts.dcm", "unknown transfer syntax", "1.2.3.4.5.6")


def test_known_but_undecodable_transfer_syntax(tmp_path):
    ds = _dataset(np.zeros((4, 4), np.uint8))
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00" * 16])
    _save(ds, tmp_path / "video.dcm")
    _raises(tmp_path / "video.dcm", "MPEG2", "not supported")


def test_missing_decoder_plugin_names_package(tmp_path, monkeypatch):
    ds = _dataset(np.arange(16, dtype=np.uint8).reshape(4, 4))
    ds.compress(RLELossless)
    path = _save(ds, tmp_path / "rle.dcm")
    # Simulate an environment without any RLE plugin (pydicom's own included).
    decoder = get_decoder(RLELossless)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg-rle",)})
    _raises(path, "RLE Lossless", "pip install pylibjpeg pylibjpeg-rle")


def test_file_without_preamble_still_reads(tmp_path):
    ds = _dataset(np.arange(16, dtype=np.uint8).reshape(4, 4))
    bare = Dataset()
    bare.update(ds)  # no file meta, no preamble, no 'DICM'
    pydicom.dcmwrite(tmp_path / "bare.dcm", bare, implicit_vr=True, little_endian=True)
    image = read_dicom(tmp_path / "bare.dcm")
    np.testing.assert_allclose(image.pixels.ravel(), np.arange(16) / 15, atol=1e-6)
    assert image.meta.transfer_syntax_name == "Implicit VR Little Endian"


def test_bits_above_bits_stored_are_ignored(tmp_path):
    # 12 bits stored in 16: junk in the top 4 bits (e.g. overlays) must not reach the output.
    arr = np.array([[0xF000, 0x0001], [0x0002, 0xF003]], np.uint16)
    ds = _dataset(arr, BitsStored=12, HighBit=11, WindowCenter=2047.5, WindowWidth=4096)
    image = read_dicom(_save(ds, tmp_path / "bits.dcm"))
    assert image.stored_range == (0.0, 3.0)
    np.testing.assert_allclose(image.pixels, (np.array([[0, 1], [2, 3]]) + 0.5) / 4095, atol=1e-6)


def test_signed_ct_rescale_and_window(tmp_path):
    hu = np.array([[-1000, 40], [-100, 240]], np.int16)
    stored = (hu + 1024).astype(np.int16)
    ds = _dataset(stored, RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=401)
    pixels = read_dicom(_save(ds, tmp_path / "ct.dcm")).pixels
    # LINEAR: (x - (c - 0.5)) / (w - 1) + 0.5, clipped
    np.testing.assert_allclose(pixels, [[0.0, 0.50125], [0.15125, 1.0]], atol=1e-6)


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_window_functions_match_pydicom(tmp_path, function):
    arr = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)
    ds = _dataset(arr, BitsStored=12, HighBit=11, WindowCenter=1500, WindowWidth=1000)
    ds.VOILUTFunction = function
    ours = read_dicom(_save(ds, tmp_path / "w.dcm")).pixels
    ref = apply_voi_lut(arr.astype(np.float64), ds) / 4095.0  # pydicom maps to 0..4095
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_voi_lut_sequence_preferred_over_window(tmp_path):
    arr = np.array([[0, 1], [2, 3]], np.uint16)
    lut = Dataset()
    lut.LUTDescriptor = [4, 0, 16]
    lut.add_new(0x00283006, "US", [100, 200, 300, 500])  # LUT Data
    ds = _dataset(arr, WindowCenter=0, WindowWidth=2)
    ds.VOILUTSequence = [lut]
    pixels = read_dicom(_save(ds, tmp_path / "lut.dcm")).pixels
    np.testing.assert_allclose(pixels, [[0.0, 0.25], [0.5, 1.0]], atol=1e-6)
    # apply_voi=False skips both: min/max of the stored values
    np.testing.assert_allclose(
        read_dicom(tmp_path / "lut.dcm", apply_voi=False).pixels, arr / 3, atol=1e-6
    )


def test_invalid_window_names_the_way_out(tmp_path):
    ds = _dataset(np.zeros((2, 2), np.uint8), WindowCenter=10, WindowWidth=0)
    err = _raises(_save(ds, tmp_path / "w0.dcm"), "window width", "apply_voi=False")
    assert err.path.endswith("w0.dcm")
    assert read_dicom(tmp_path / "w0.dcm", apply_voi=False).pixels.shape == (2, 2)


@pytest.mark.parametrize("photometric, expected", [("MONOCHROME2", 0.0), ("MONOCHROME1", 1.0)])
def test_constant_image_does_not_divide_by_zero(tmp_path, photometric, expected):
    ds = _dataset(np.full((3, 3), 7, np.uint8), PhotometricInterpretation=photometric)
    pixels = read_dicom(_save(ds, tmp_path / "flat.dcm")).pixels
    assert np.isfinite(pixels).all()
    np.testing.assert_array_equal(pixels, np.full((3, 3), expected, np.float32))


def test_rgb_becomes_luma(tmp_path):
    rgb = np.zeros((1, 4, 3), np.uint8)
    rgb[0, 1] = (255, 0, 0)
    rgb[0, 2] = (0, 255, 0)
    rgb[0, 3] = (255, 255, 255)
    pixels = read_dicom(_save(_dataset(rgb), tmp_path / "rgb.dcm")).pixels
    assert pixels.shape == (1, 4)
    np.testing.assert_allclose(pixels[0], [0.0, 0.299, 0.587, 1.0], atol=1e-6)


def test_palette_color_rejected(tmp_path):
    ds = _dataset(np.zeros((2, 2), np.uint8), PhotometricInterpretation="PALETTE COLOR")
    _raises(_save(ds, tmp_path / "pal.dcm"), "PALETTE COLOR")


def test_frame_all_on_single_frame_and_bad_frame_type(tmp_path):
    path = _save(_dataset(np.arange(6, dtype=np.uint8).reshape(2, 3)), tmp_path / "one.dcm")
    assert read_dicom(path, frame="all").pixels.shape == (1, 2, 3)
    _raises(path, "frame 1 out of range", "1 frame", frame=1)
    with pytest.raises(TypeError):
        read_dicom(path, frame="first")


def test_error_is_value_error_and_pickles():
    err = DicomReadError("/x/a.dcm", "no pixel data")
    assert isinstance(err, ValueError)
    assert str(err) == "/x/a.dcm: no pixel data"
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.reason, str(again)) == (err.path, err.reason, str(err))


def test_to_uint8():
    out = to_uint8(np.array([[-0.5, 0.0, 0.5], [1.0, 2.0, np.nan]], np.float32))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 0, 128], [255, 255, 0]])
