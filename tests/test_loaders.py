"""Data-set loaders on the real copies in ../shared/data and on phantoms."""

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from kerassev.data.loaders import (
    LOADERS,
    assemble_mask,
    load_covid_chestxray,
    load_covid_radiography,
    load_covidx_ct,
    load_ct_lesions,
    load_cxr_lesion_masks,
    load_cxr_mask_boxes,
    load_lus_pocus,
    load_midrc_labels,
    load_midrc_mrale,
)
from kerassev.data.loaders.midrc_mrale import LABELS_CSV
from kerassev.data.manifest import available_manifests
from kerassev.data.phantoms import write_phantom_dataset
from kerassev.data.table import TableError


def test_registry_matches_manifests():
    assert set(LOADERS) <= set(available_manifests())
    assert LOADERS["covid_chestxray"] is load_covid_chestxray


def test_covid_chestxray_frontal_and_scored(shared_data):
    root = shared_data("covid_chestxray")
    with pytest.warns(
        UserWarning, match=r"without an image file, skipped \(8\): .*case_71_figura1"
    ):
        table = load_covid_chestxray(root)
    assert len(table) == 558 and table["filename"].is_unique
    assert set(table["view"]) == {"PA", "AP", "AP Supine"}
    assert table["path"].map(lambda p: p.startswith(str(root))).all()
    scored = table[table["geographic_mean"].notna()]
    assert len(scored) == 94 and set(scored["view"]) == {"PA"}
    assert (
        scored["geographic_mean"].between(0, 8).all() and scored["opacity_mean"].between(0, 6).all()
    )
    with pytest.warns(UserWarning):
        only = load_covid_chestxray(root, scored_only=True)
    assert len(only) == 94 and only["opacity_mean"].notna().all()


def test_covid_chestxray_duplicates_merge_patient_groups(shared_data):
    with pytest.warns(UserWarning):
        table = load_covid_chestxray(shared_data("covid_chestxray"))
    dup = table.set_index("filename").loc[["000001-24.jpg", "000006-17.jpg", "000001-27.jpg"]]
    assert dup["patient_id"].tolist() == ["285+339", "285+339", "287+340"]
    # every image belongs to exactly one group, so no grouped split can put it on both sides
    assert not table["patient_id"].isin(["285", "339", "287", "340"]).any()
    assert table.groupby("filename")["patient_id"].nunique().max() == 1


def test_covid_chestxray_bad_label_raises_naming_the_file(shared_data, tmp_path):
    src = shared_data("covid_chestxray")
    shutil.copy(src / "metadata.csv", tmp_path / "metadata.csv")
    (tmp_path / "annotations").mkdir()
    scores = pd.read_csv(src / "annotations/covid-severity-scores.csv", comment="#").head(3)
    (tmp_path / "images").mkdir()
    for name in scores["filename"]:
        shutil.copy(src / "images" / name, tmp_path / "images" / name)
    scores.loc[1, "geographic_mean"] = 9.5
    scores.to_csv(tmp_path / "annotations/covid-severity-scores.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TableError, match=rf"geographic_mean.*{scores.loc[1, 'filename']}"):
            load_covid_chestxray(tmp_path)


def test_midrc_labels_real(shared_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the formula holds for every real row: no notice
        labels = load_midrc_labels(shared_data("midrc_mrale") / LABELS_CSV)
    assert len(labels) == 2079 and labels["study_id"].is_unique
    assert labels["mrale"].between(0, 24).all() and labels["mrale"].median() == 6
    assert (labels["mrale"] == 0).sum() == 413 and (labels["mrale"] == 24).sum() == 225


def test_midrc_labels_report_formula_violations(shared_data, tmp_path):
    raw = pd.read_csv(shared_data("midrc_mrale") / LABELS_CSV)
    raw.loc[3, "mRALE Score"] = (raw.loc[3, "mRALE Score"] + 1) % 25
    raw.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.warns(UserWarning, match=rf"mRALE != .*\(1\): {raw.loc[3, 'StudyInstanceUID']}"):
        load_midrc_labels(tmp_path / "labels.csv")
    raw["extent_left_numerical"] = raw["extent_left_numerical"].astype(object)
    raw.loc[4, "extent_left_numerical"] = "x"
    raw.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(TableError, match="extent_left"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_midrc_labels(tmp_path / "labels.csv")


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    base = tmp_path_factory.mktemp("phantoms")
    png = write_phantom_dataset(base / "png", 4, fmt="png", size=64, seed=3)
    dcm = write_phantom_dataset(base / "dicom", 4, fmt="dicom", size=64, seed=3)
    return base, png, dcm


def test_midrc_loader_on_dicom_phantoms(phantoms, tmp_path):
    base, _, truth = phantoms
    table = load_midrc_mrale(base / "dicom")
    assert len(table) == len(truth)
    merged = table.merge(truth, on="study_id", suffixes=("", "_true"))
    for col in ("patient_id", "mrale", "extent_right", "density_left"):
        assert (merged[col] == merged[f"{col}_true"]).all(), col
    # drop one label row and one image: both reported with counts
    root = tmp_path / "copy"
    shutil.copytree(base / "dicom", root)
    labels = pd.read_csv(root / "labels.csv")
    labels.iloc[1:].to_csv(root / "labels.csv", index=False)
    victim = next(p for p in root.rglob("*.dcm") if labels.iloc[1]["StudyInstanceUID"] in str(p))
    victim.unlink()
    with pytest.warns(UserWarning) as record:
        table = load_midrc_mrale(root)
    text = " | ".join(str(w.message) for w in record)
    assert "whose study has no label, skipped (1)" in text
    assert "labelled studies without an image (1)" in text
    assert len(table) == len(truth) - 2


def test_covid_chestxray_loader_on_png_phantoms(phantoms):
    base, truth, _ = phantoms
    table = load_covid_chestxray(base / "png")
    assert len(table) == len(truth)
    merged = table.merge(truth, on="path", suffixes=("", "_true"))
    np.testing.assert_allclose(merged["geographic_mean"], merged["geographic_mean_true"])
    assert (merged["patient_id"] == merged["patient_id_true"]).all()


def test_covid_radiography(shared_data):
    t = load_covid_radiography(shared_data("covid_radiography"))
    assert t["label"].value_counts().to_dict() == {"COVID": 250, "Normal": 250}
    assert (t["label_index"] == (t["label"] == "Normal").astype(int)).all()
    assert (t["patient_id"] == t["filename"].str.removesuffix(".png")).all()


def test_covidx_ct_splits(shared_data):
    t = load_covidx_ct(shared_data("covidx_ct"))
    assert len(t) == 104009
    assert t["split"].value_counts().to_dict() == {"train": 61782, "test": 21191, "val": 21036}
    assert t.groupby("split")["patient_id"].nunique().to_dict() == {
        "train": 864,
        "val": 332,
        "test": 293,
    }
    assert t.groupby("patient_id")["split"].nunique().max() == 1
    assert (t["xmin"] < t["xmax"]).all() and set(t["label"]) == {"Normal", "Pneumonia", "COVID-19"}


def test_ct_lesions_pairs(shared_data):
    t = load_ct_lesions(shared_data("ct_lesions"))
    assert t["split"].value_counts().to_dict() == {"train": 50, "test": 48}
    assert set(t["slice_id"]).isdisjoint({22, 48}) and t["slice_id"].is_unique
    from PIL import Image

    with Image.open(t["mask_path"][0]) as m, Image.open(t["path"][0]) as im:
        assert m.size == im.size and set(np.unique(np.asarray(m))) <= {0, 1, 2}


def test_lus_pocus_classes_and_severity(shared_data):
    t = load_lus_pocus(shared_data("lus_pocus"))
    assert len(t) == 163 and t["kind"].value_counts().to_dict() == {"video": 131, "image": 32}
    assert t["label"].value_counts().to_dict() == {
        "regular": 69, "pneumonia": 51, "covid": 37, "viral": 5, "uncertain": 1,
    }  # fmt: skip
    sev = t[t["severity"].notna()]
    assert len(sev) == 82 and set(sev["kind"]) == {"video"}
    assert sev["severity"].value_counts().sort_index().tolist() == [48, 16, 12, 6]
    assert len(load_lus_pocus(shared_data("lus_pocus"), kind="image")) == 32


def test_cxr_lesion_masks(shared_data):
    root = shared_data("cxr_lesion_masks")
    t = load_cxr_lesion_masks(root)
    assert len(t) == 100 and t["has_ggo"].sum() == 93 and t["has_consolidation"].sum() == 32
    assert t["n_masks"].sum() == 324
    boxes = load_cxr_mask_boxes(root)
    row = t[t["has_ggo"]].iloc[0]
    from PIL import Image

    with Image.open(row["path"]) as im:
        shape = im.size[::-1]
    lungs = assemble_mask(boxes, row["filename"], ("left_lung", "right_lung"), shape)
    ggo = assemble_mask(boxes, row["filename"], ("ggo",), shape)
    assert 0.05 < lungs.mean() < 0.9 and ggo.any()


def test_missing_root_is_data_not_found(tmp_path):
    from kerassev.config import DataNotFoundError

    with pytest.raises(DataNotFoundError):
        load_covid_radiography(tmp_path / "absent")


def test_load_or_skip_says_why_an_absent_data_set_is_skipped(tmp_path, monkeypatch, capsys):
    from kerassev import config
    from kerassev.data.loaders import load_or_skip

    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    monkeypatch.delenv(config.CI_ENV, raising=False)
    assert load_or_skip("covid_radiography") is None
    out = capsys.readouterr().out
    assert "SKIPPED covid_radiography" in out and str(tmp_path) in out


def test_load_or_skip_fails_under_ci_naming_the_data(tmp_path, monkeypatch):
    from kerassev import config
    from kerassev.data.loaders import load_or_skip

    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    monkeypatch.setenv(config.CI_ENV, "true")
    with pytest.raises(config.DataNotFoundError, match="CI=true.*covid_radiography"):
        load_or_skip("covid_radiography")


def test_load_or_skip_loads_a_present_data_set(shared_data, capsys):
    from kerassev.data.loaders import load_or_skip

    shared_data("covid_radiography")
    table = load_or_skip("covid_radiography")
    assert len(table) == 500
    assert "covid_radiography: 500 rows" in capsys.readouterr().out
