"""Content-keyed decoded-DICOM cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from kerassev import config
from kerassev.data.cache import DECODER_VERSION, DecodedCache, read_png16, to_png16
from kerassev.io.dicom import read_dicom


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2") -> Path:
    """Minimal uncompressed 12-bit-stored DICOM with pydicom."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.PatientID = "p0"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _pixels(h=40, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 4096, (h, w)).astype(np.uint16)


@pytest.fixture
def cache(tmp_path):
    return DecodedCache(tmp_path / "cache")


def test_png16_round_trip(tmp_path):
    x = np.random.default_rng(0).random((7, 5)).astype(np.float32)
    p = tmp_path / "x.png"
    p.write_bytes(to_png16(x))
    np.testing.assert_allclose(read_png16(p), x, atol=1 / 65535)


def test_load_matches_read_dicom_and_hits_second_time(tmp_path, cache):
    src = write_dicom(tmp_path / "a.dcm", _pixels())
    first = cache.load(src)
    assert first.dtype == np.float32 and first.shape == (40, 30)
    assert first.min() >= 0.0 and first.max() <= 1.0
    np.testing.assert_allclose(first, read_dicom(src).pixels, atol=1 / 65535)
    assert (cache.hits, cache.misses) == (0, 1)
    np.testing.assert_array_equal(cache.load(src), first)
    assert (cache.hits, cache.misses) == (1, 1)


def test_renamed_identical_file_hits(tmp_path, cache):
    src = write_dicom(tmp_path / "a.dcm", _pixels())
    cache.load(src)
    copy = shutil.copy(src, tmp_path / "renamed.dcm")
    assert cache.cached_png_path(copy) == cache.cached_png_path(src)
    assert cache.misses == 1


def test_changed_file_is_decoded_again(tmp_path, cache):
    src = write_dicom(tmp_path / "a.dcm", _pixels(seed=0))
    before = cache.load(src)
    write_dicom(src, _pixels(seed=1))  # same path, new bytes
    after = cache.load(src)
    assert cache.misses == 2
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, read_dicom(src).pixels, atol=1 / 65535)


def test_key_includes_decoder_version(tmp_path):
    src = write_dicom(tmp_path / "a.dcm", _pixels())
    a = DecodedCache(tmp_path / "c").key(src)
    b = DecodedCache(tmp_path / "c", version=DECODER_VERSION + "-next").key(src)
    assert a != b


def test_warm_skips_and_reports_corrupt_files(tmp_path, cache):
    good = [write_dicom(tmp_path / f"g{i}.dcm", _pixels(seed=i)) for i in range(3)]
    bad = tmp_path / "corrupt.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 10)
    report = cache.warm([*good, bad], workers=2)
    assert sorted(report.decoded) == sorted(map(str, good))
    assert list(report.failed) == [str(bad)] and "corrupt.dcm" in report.summary()
    assert report.failed[str(bad)]  # a reason is given
    again = cache.warm(good)
    assert sorted(again.hits) == sorted(map(str, good)) and again.ok


def test_no_temp_files_left_and_default_root(tmp_path, cache):
    src = write_dicom(tmp_path / "a.dcm", _pixels())
    cache.warm([src] * 4, workers=4)
    files = [p.name for p in cache.root.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].endswith(".png") and not files[0].startswith(".tmp")
    assert DecodedCache().root == config.cache_root() / "decoded"


def test_real_monochrome1_file(shared_data, cache):
    root = shared_data("dicom")
    mono1 = cache.load(root / "Fake_MONOHR1.dcm")
    mono2 = cache.load(root / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")
    assert mono1.shape == (1024, 1024)
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=2 / 65535)
    assert pydicom.dcmread(root / "Fake_MONOHR1.dcm").PhotometricInterpretation == "MONOCHROME1"
