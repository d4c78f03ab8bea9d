"""Manifests and check_dataset, on the real data and on small corrupted copies."""

import shutil

import pandas as pd
import pytest

from kerassev.data.manifest import (
    ManifestError,
    available_manifests,
    check_dataset,
    load_manifest,
)

SCORES = "annotations/covid-severity-scores.csv"
EXPECTED = {
    "covid_chestxray", "midrc_mrale", "covid_radiography", "covidx_ct", "ct_lesions", "lus_pocus",
    "cxr_lesion_masks", "dicom_samples", "lus_inhouse.template", "adni.template",
}  # fmt: skip


def cohen_copy(src, dst, n=4):
    """Small copy of covid_chestxray: all metadata, the first n scores and their images."""
    (dst / "images").mkdir(parents=True)
    (dst / "annotations").mkdir()
    shutil.copy(src / "metadata.csv", dst / "metadata.csv")
    lines = (src / SCORES).read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#")] + ["filename,geographic_mean,opacity_mean"]
    rows = [ln for ln in lines if not ln.startswith("#")][1 : n + 1]
    (dst / SCORES).write_text("\n".join(header + rows) + "\n")
    names = [r.split(",")[0] for r in rows]
    for name in names:
        shutil.copy(src / "images" / name, dst / "images" / name)
    return names, rows


def test_all_manifests_load_with_required_fields():
    assert set(available_manifests()) == EXPECTED
    for name in EXPECTED:
        m = load_manifest(name)
        assert m.title and m.licence and m.citation and m.source["upstream"]
        assert m.template == name.endswith(".template")
    assert load_manifest("covid_chestxray").folder == "covid_chestxray"
    assert load_manifest("dicom_samples").folder == "dicom"


def test_malformed_manifest_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntitle: t\nlicence: l\ncitation: c\nsource: {upstream: u}\n"
        "tables:\n  - {name: a, path: a.csv, columns: {y: {type: float, range: [3]}}}\n"
    )
    with pytest.raises(ManifestError, match=r"bad.yaml: key 'tables\[0\].columns.y.range'"):
        load_manifest(bad)
    bad.write_text("name: x\ntitle: [unclosed\n")
    with pytest.raises(ManifestError, match="bad.yaml: invalid YAML"):
        load_manifest(bad)
    bad.write_text("name: x\ntitle: t\nlicence: l\nsource: {upstream: u}\n")
    with pytest.raises(ManifestError, match="key 'citation'"):
        load_manifest(bad)
    with pytest.raises(ManifestError, match="no such manifest"):
        load_manifest("no_such_data_set")


def test_real_covid_chestxray_has_94_scored_and_no_errors(shared_data):
    report = check_dataset("covid_chestxray", shared_data("covid_chestxray"))
    assert report.ok, report.format()
    assert report.counts["scores rows"] == 94
    assert report.counts["scores files present"] == 94
    assert report.counts["files opened"] == 558
    assert report.counts["checksums verified"] == 175
    # the 8 frontal rows without an image are notices, and they are named
    missing = [f for f, p in report.warnings if "is missing" in p]
    assert len(missing) == 8 and "images/case_71_figura1.png" in missing
    assert "94" in report.format() and report.format().endswith("OK")


def test_corrupted_copy_names_deleted_image_and_bad_label(shared_data, tmp_path):
    names, rows = cohen_copy(shared_data("covid_chestxray"), tmp_path)
    (tmp_path / "images" / names[0]).unlink()
    text = (tmp_path / SCORES).read_text().replace(rows[2], f"{names[2]},9.5,2.0")
    (tmp_path / SCORES).write_text(text.replace(rows[3], f"{names[3]},abc,1.0"))
    report = check_dataset("covid_chestxray", tmp_path)
    assert not report.ok
    assert sorted(report.errors) == [
        (SCORES, f"row 2 ({names[2]}): 'geographic_mean' = 9.5 outside [0, 8]"),
        (SCORES, f"row 3 ({names[3]}): 'geographic_mean' is not a number: 'abc'"),
        (f"images/{names[0]}", f"file listed in {SCORES} (row 0) is missing"),
    ]
    assert "FAILED: 3 error(s)" in report.format()


@pytest.mark.parametrize(
    "name",
    ["midrc_mrale", "covid_radiography", "covidx_ct", "ct_lesions", "lus_pocus",
     "cxr_lesion_masks", "dicom_samples"],
)  # fmt: skip
def test_real_data_sets_check_clean(shared_data, name):
    m = load_manifest(name)
    report = check_dataset(m, shared_data(m.folder))
    assert report.ok, report.format()


def test_midrc_formula_and_duplicate_ids_are_errors(shared_data, tmp_path):
    src = shared_data("midrc_mrale")
    m = load_manifest("midrc_mrale")
    labels = pd.read_csv(src / m.tables[0]["path"])
    labels.loc[5, "mRALE Score"] = 23
    labels.loc[7, "StudyInstanceUID"] = labels.loc[8, "StudyInstanceUID"]
    labels.to_csv(tmp_path / m.tables[0]["path"], index=False)
    report = check_dataset(m, tmp_path)
    problems = [p for _, p in report.errors]
    assert any(p.startswith("row 5 ") and "mRALE !=" in p for p in problems)
    assert sum("duplicated 'StudyInstanceUID'" in p for p in problems) == 2


def test_dicom_checksum_mismatch_and_unreadable_file(shared_data, tmp_path):
    src = shared_data("dicom")
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "CR1_6154.dcm").write_bytes(b"not a dicom file at all")
    report = check_dataset("dicom_samples", tmp_path)
    bad = [p for f, p in report.errors if f == "CR1_6154.dcm"]
    assert any(p.startswith("sha256") for p in bad)
    assert any(p.startswith("unreadable") for p in bad)
    assert len(report.errors) == 2


def test_template_checks_a_user_layout(tmp_path):
    (tmp_path / "videos" / "P1").mkdir(parents=True)
    (tmp_path / "videos" / "P1" / "a.mp4").write_bytes(b"\0" * 10)
    pd.DataFrame(
        {"patient_id": ["P1", ""], "video": ["P1/a.mp4", "P1/b.mp4"], "scan_index": [0, 1],
         "sf_ratio": [300, 9000]}
    ).to_csv(tmp_path / "scans.csv", index=False)  # fmt: skip
    report = check_dataset("lus_inhouse.template", tmp_path)
    text = report.format()
    assert "empty patient id" in text and "P1/b.mp4" in text and "9000" in text
    assert len(report.errors) == 3
