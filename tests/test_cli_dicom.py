"""Tests for ``kerassev dicom info``: report contents, PNG preview, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kerassev.cli import main
from kerassev.io.dicom import read_dicom, to_uint8

RSNA = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


def test_info_real_file_writes_png(shared_data, tmp_path, capsys):
    path = shared_data("dicom") / RSNA
    png = tmp_path / "previews" / "rsna.png"  # parent folder does not exist yet
    assert main(["dicom", "info", str(path), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert str(path) in out
    assert "JPEG Baseline (Process 1) (1.2.840.10008.1.2.4.50)" in out
    assert "1024 x 1024, 1 frame(s)" in out
    assert "MONOCHROME2" in out and "PA" in out
    assert "0.168 x 0.168 mm" in out
    assert "(1024, 1024) float32" in out
    assert "stored range      0 .. 255" in out
    assert "output range      0.0000 .. 1.0000" in out
    with Image.open(png) as img:
        assert img.format == "PNG" and img.mode == "L" and img.size == (1024, 1024)
        preview = np.asarray(img)
    np.testing.assert_array_equal(preview, to_uint8(read_dicom(path).pixels))


def test_info_frame_and_window(shared_data, capsys):
    root = shared_data("dicom")
    assert main(["dicom", "info", str(root / "emri_small_RLE.dcm"), "--frame", "9"]) == 0
    out = capsys.readouterr().out
    assert "frame             9 of 10" in out and "(64, 64) float32" in out
    assert main(["dicom", "info", str(root / "CR1_6154.dcm")]) == 0
    assert "centre 1600 / width 2800" in capsys.readouterr().out
    assert main(["dicom", "info", str(root / "CR1_6154.dcm"), "--no-voi"]) == 0
    out = capsys.readouterr().out
    assert "not applied" in out and "output range      0.0000 .. 1.0000" in out


def test_info_frame_out_of_range_is_one_line(shared_data, capsys):
    path = shared_data("dicom") / "emri_small.dcm"
    assert main(["dicom", "info", str(path), "--frame", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "emri_small.dcm" in err and "10 frame(s)" in err


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("notes.txt", b"not an image\n", "not a DICOM file"),
        ("missing.dcm", None, "file not found"),
    ],
)
def test_info_bad_input_exits_2_with_one_line(tmp_path, capsys, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    png = tmp_path / "out.png"
    assert main(["dicom", "info", str(path), "--png", str(png)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"kerassev dicom: error: {path}: {reason}")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert not png.exists()


def test_dicom_group_requires_subcommand():
    with pytest.raises(SystemExit) as exit_info:
        main(["dicom"])
    assert exit_info.value.code == 2
