"""``kerassev data check|list``: reports, exit codes, no tracebacks."""

import shutil

import pytest

from kerassev.cli import main

SCORES = "annotations/covid-severity-scores.csv"


def test_list_names_every_manifest(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("covid_chestxray", "midrc_mrale", "dicom_samples", "adni.template"):
        assert name in out


def test_check_real_covid_chestxray_ok(shared_data, capsys):
    assert main(["data", "check", "covid_chestxray", str(shared_data("covid_chestxray"))]) == 0
    out = capsys.readouterr().out
    assert "scores rows: 94" in out and "scores files present: 94" in out
    assert "8 warnings" not in out and out.rstrip().endswith("OK")


def test_check_corrupted_copy_exits_1_naming_both(shared_data, tmp_path, capsys):
    src = shared_data("covid_chestxray")
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    shutil.copy(src / "metadata.csv", tmp_path)
    lines = (src / SCORES).read_text().splitlines()
    header, rows = lines[:6], lines[6:9]
    names = [r.split(",")[0] for r in rows]
    for name in names[1:]:  # names[0] is the deleted scored image
        shutil.copy(src / "images" / name, tmp_path / "images" / name)
    rows[2] = f"{names[2]},9.5,2.0"
    (tmp_path / SCORES).write_text("\n".join(header + rows) + "\n")
    assert main(["data", "check", "covid_chestxray", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"images/{names[0]}: file listed in {SCORES} (row 0) is missing" in out
    assert f"{SCORES}: row 2 ({names[2]}): 'geographic_mean' = 9.5 outside [0, 8]" in out
    assert "FAILED: 2 error(s)" in out


def test_check_by_yaml_path(shared_data, capsys):
    from kerassev.data.manifest import manifest_dir

    path = manifest_dir() / "dicom_samples.yaml"
    assert main(["data", "check", str(path), str(shared_data("dicom"))]) == 0
    assert "checksums verified: 15" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["data", "check", "no_such_set", "."], "no such manifest"),
        (["data", "check", "covid_chestxray", "/no/such/dir"], "does not exist"),
    ],
)
def test_unusable_input_is_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_malformed_manifest_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    assert main(["data", "check", str(bad), str(tmp_path)]) == 2
    assert "bad.yaml: key 'title'" in capsys.readouterr().err
