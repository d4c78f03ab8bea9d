"""Synthetic CXR phantoms: determinism, label consistency, label -> pixel mapping, file formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image
from scipy.stats import spearmanr

from kerassev.data import phantoms as P
from kerassev.data.phantoms import (
    EXTENT_FRACTION,
    MIDRC_COLUMNS,
    SUBSCORE_COLUMNS,
    make_phantom_cohort,
    render_phantom,
    sample_subscores,
    write_phantom_dataset,
)

SEVERE = {"extent_right": 3, "density_right": 2, "extent_left": 2, "density_left": 3}


def _check_labels(df: pd.DataFrame) -> None:
    for side in ("right", "left"):
        e, d = df[f"extent_{side}"], df[f"density_{side}"]
        assert e.between(0, 4).all() and d.between(0, 3).all()
        assert ((e == 0) == (d == 0)).all(), "extent 0 <=> density 0"
    er, dr, el, dl = (df[c] for c in SUBSCORE_COLUMNS)
    assert (df.mrale == er * dr + el * dl).all() and df.mrale.between(0, 24).all()
    assert (df.geographic_mean == er + el).all() and (df.opacity_mean == dr + dl).all()


# --- rendering ---------------------------------------------------------------------------------
def test_render_shapes_types_and_masks():
    ph = render_phantom(SEVERE, size=96, seed=3)
    assert ph.image.shape == (96, 96) and ph.image.dtype == np.float32
    assert ph.image.min() >= 0.0 and ph.image.max() <= 1.0
    for m in (ph.opacity_mask, ph.lung_mask, ph.right_lung_mask):
        assert m.dtype == bool and m.shape == (96, 96)
    assert not (ph.opacity_mask & ~ph.lung_mask).any(), "opacity stays inside the lungs"
    assert 0.15 < ph.lung_mask.mean() < 0.5
    # Radiological convention: the patient's right lung is on the image left.
    cols = np.nonzero(ph.right_lung_mask)[1]
    left_cols = np.nonzero(ph.lung_mask & ~ph.right_lung_mask)[1]
    assert cols.mean() < 48 < left_cols.mean()
    assert ph.labels == {**SEVERE, "mrale": 12, "geographic_mean": 5.0, "opacity_mean": 5.0}


def test_render_is_deterministic_by_seed():
    a = render_phantom(SEVERE, size=64, seed=11, anatomy_seed=4)
    b = render_phantom(SEVERE, size=64, seed=11, anatomy_seed=4)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.opacity_mask, b.opacity_mask)
    c = render_phantom(SEVERE, size=64, seed=12, anatomy_seed=4)
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.opacity_mask, c.opacity_mask)
    # Same patient (anatomy_seed): lungs nearly coincide; another patient's do not.
    iou = (a.lung_mask & c.lung_mask).sum() / (a.lung_mask | c.lung_mask).sum()
    other = render_phantom(SEVERE, size=64, seed=12, anatomy_seed=5).lung_mask
    iou_other = (a.lung_mask & other).sum() / (a.lung_mask | other).sum()
    assert iou > 0.8 and iou > iou_other


@pytest.mark.parametrize(
    "bad",
    [
        {"extent_right": 0, "density_right": 2, "extent_left": 1, "density_left": 1},
        {"extent_right": 2, "density_right": 0, "extent_left": 1, "density_left": 1},
        {"extent_right": 5, "density_right": 1, "extent_left": 1, "density_left": 1},
        {"extent_right": 1, "density_right": 4, "extent_left": 1, "density_left": 1},
        {"extent_right": 1, "density_right": 1},
    ],
)
def test_render_rejects_bad_subscores(bad):
    with pytest.raises(ValueError):
        render_phantom(bad, size=64)


def test_opacity_area_tracks_extent_bins():
    means = []
    for extent in range(5):
        density = 2 if extent else 0
        sub = dict(extent_right=extent, density_right=density, extent_left=extent,
                   density_left=density)  # fmt: skip
        fracs = []
        for seed in range(6):
            ph = render_phantom(sub, size=96, seed=seed)
            right, left = ph.right_lung_mask, ph.lung_mask & ~ph.right_lung_mask
            for lung in (right, left):
                frac = (ph.opacity_mask & lung).sum() / lung.sum()
                fracs.append(frac)
                if extent == 0:
                    assert frac == 0
                else:
                    lo, hi = EXTENT_FRACTION[extent]
                    assert lo - 0.01 <= frac <= hi + 0.01  # inside the MIDRC bin, with margin
            assert ph.info["opacity_fraction_right"] == pytest.approx(fracs[-2])
        means.append(np.mean(fracs))
    assert np.all(np.diff(means) > 0.1)


def test_opacity_brightness_increases_with_density():
    contrasts = []
    for density in (1, 2, 3):
        sub = dict(extent_right=2, density_right=density, extent_left=2, density_left=density)
        per_seed = []
        for seed in range(4):
            ph = render_phantom(sub, size=96, seed=seed, anatomy_seed=1)
            clear = ph.lung_mask & ~ndi_dilate(ph.opacity_mask)
            per_seed.append(ph.image[ph.opacity_mask].mean() - ph.image[clear].mean())
        contrasts.append(per_seed)
    c = np.array(contrasts)  # (density, seed): same seed = same exposure and lesion layout
    assert (c > 0).all()
    assert (np.diff(c, axis=0) > 0).all(), c


def ndi_dilate(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=3)


def test_global_brightness_does_not_predict_mrale_but_lungs_do():
    cohort = make_phantom_cohort(250, timepoints=(2, 2), size=64, seed=5)
    assert len(cohort.table) == 500
    mrale = cohort.table["mrale"].to_numpy()
    assert mrale.std() > 4  # a real spread of scores
    mean_intensity = cohort.images.mean(axis=(1, 2))
    rho = spearmanr(mean_intensity, mrale).statistic
    assert abs(rho) < 0.3, rho
    # The score is in the lungs: their brightness relative to the whole image tracks it.
    lung = np.array([im[m].mean() for im, m in zip(cohort.images, cohort.lung_masks, strict=True)])
    assert spearmanr(lung - mean_intensity, mrale).statistic > 0.5


# --- sub-score sampling ------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["midrc", "uniform"])
def test_sample_subscores_consistent_and_deterministic(source):
    a = sample_subscores(3000, seed=1, source=source)
    _check_labels(a)
    pd.testing.assert_frame_equal(a, sample_subscores(3000, seed=1, source=source))
    assert not a.equals(sample_subscores(3000, seed=2, source=source))
    assert list(a.columns[:4]) == list(SUBSCORE_COLUMNS)
    if source == "uniform":
        assert a.attrs["source"] == "uniform"
        assert set(a.extent_right) == set(range(5)) and set(a.density_left) == set(range(4))


def test_shipped_table_matches_midrc_statistics():
    df = sample_subscores(20000, seed=0)
    assert df.attrs["source"] == "midrc-table"
    _check_labels(df)
    table = P.subscore_table()
    assert table["studies"].sum() == 2079 and not table[list(SUBSCORE_COLUMNS)].duplicated().any()
    # File: mean mRALE 8.48, 413/2079 zeros, 225/2079 at 24, extent r/l correlation 0.87.
    assert df.mrale.mean() == pytest.approx(8.48, abs=0.3)
    assert (df.mrale == 0).mean() == pytest.approx(413 / 2079, abs=0.015)
    assert (df.mrale == 24).mean() == pytest.approx(225 / 2079, abs=0.015)
    assert np.corrcoef(df.extent_right, df.extent_left)[0, 1] > 0.8


def test_phantom_labels_do_not_depend_on_shared_data(monkeypatch, tmp_path):
    from kerassev import config

    first = sample_subscores(50, seed=3)
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))  # no ../shared/data at all
    pd.testing.assert_frame_equal(first, sample_subscores(50, seed=3))


def test_shipped_table_is_derived_from_the_real_midrc_file(shared_data):
    root = shared_data("midrc_mrale")
    derived = P.derive_subscore_table(root / P.MIDRC_LABEL_FILE)
    pd.testing.assert_frame_equal(derived, P.subscore_table(), check_dtype=False)
    real = pd.read_csv(root / P.MIDRC_LABEL_FILE)
    assert list(real.columns) == list(MIDRC_COLUMNS)
    df = sample_subscores(20000, seed=0)
    assert df.mrale.mean() == pytest.approx(real["mRALE Score"].mean(), abs=0.3)
    assert set(df.mrale) <= set(real["mRALE Score"])


# --- cohorts -----------------------------------------------------------------------------------
def test_cohort_has_several_timepoints_per_patient():
    c = make_phantom_cohort(6, timepoints=(2, 4), size=64, seed=2)
    t = c.table
    n = len(t)
    assert c.images.shape == (n, 64, 64) and c.images.dtype == np.float32
    assert c.opacity_masks.shape == c.lung_masks.shape == (n, 64, 64)
    assert c.lung_masks.dtype == bool
    _check_labels(t)
    counts = t.groupby("patient_id").size()
    assert len(counts) == 6 and counts.between(2, 4).all()
    assert t.study_id.is_unique
    for _, g in t.groupby("patient_id"):
        assert list(g.timepoint) == list(range(len(g)))
        assert g.offset.is_monotonic_increasing
    # Masks match the table row by row.
    for i in range(n):
        assert c.opacity_masks[i].any() == (t.mrale[i] > 0)
    # Deterministic.
    c2 = make_phantom_cohort(6, timepoints=(2, 4), size=64, seed=2)
    np.testing.assert_array_equal(c.images, c2.images)
    pd.testing.assert_frame_equal(t, c2.table)


# --- writing data sets -------------------------------------------------------------------------
def _read_cohen(root):
    path = root / "annotations" / "covid-severity-scores.csv"
    lines = path.read_text().splitlines()
    assert len([x for x in lines if x.startswith("##")]) == 5
    assert all(x.endswith(",,") for x in lines[:5])
    assert lines[5] == "filename,geographic_mean,opacity_mean"
    return pd.read_csv(path, comment="#")


def _check_common(root, table):
    labels = pd.read_csv(root / "labels.csv", keep_default_na=False)
    assert list(labels.columns) == list(MIDRC_COLUMNS)
    assert list(labels.StudyInstanceUID) == list(table.study_id)
    assert (labels["mRALE Score"] == table.mrale).all()
    assert set(labels.extent_right) <= {"None", "<=25%", "25-50%", "51-75%", ">75%"}
    assert set(labels.density_left) <= {"None", "Hazy", "Moderate", "Dense"}
    assert ((labels.extent_right == "None") == (labels.extent_right_numerical == 0)).all()
    scores = _read_cohen(root)
    assert (scores.geographic_mean.to_numpy() == table.geographic_mean.to_numpy()).all()
    assert (scores.opacity_mean.to_numpy() == table.opacity_mean.to_numpy()).all()
    meta = pd.read_csv(root / "metadata.csv")
    for col in ("patientid", "offset", "view", "modality", "finding", "survival", "filename"):
        assert col in meta.columns
    assert (meta.view == "PA").all() and (meta.modality == "X-ray").all()
    assert list(meta.filename) == list(scores.filename) == list(table.filename)
    assert list(meta.patientid) == list(table.patient_id)
    for p in table.path:
        assert p.startswith(str(root.resolve())) and (root / p).is_file()


def test_write_png_dataset(tmp_path):
    root = tmp_path / "ph"
    table = write_phantom_dataset(root, 3, size=64, seed=1)
    _check_common(root, table)
    assert {"path", "patient_id", "study_id", "view", *P.LABEL_COLUMNS} <= set(table.columns)
    img = Image.open(table.path[0])
    assert img.mode == "L" and img.size == (64, 64)
    ref = make_phantom_cohort(3, size=64, seed=1).images[0]
    np.testing.assert_allclose(np.asarray(img) / 255.0, ref, atol=0.5 / 255 + 1e-6)


def test_write_dicom_dataset(tmp_path):
    root = tmp_path / "ph"
    table = write_phantom_dataset(
        root, 4, fmt="dicom", size=64, seed=2, photometric="mixed", bits_stored=16
    )
    _check_common(root, table)
    assert set(table.photometric) == {"MONOCHROME1", "MONOCHROME2"}
    ref = make_phantom_cohort(4, size=64, seed=2).images
    for i, row in table.iterrows():
        ds = pydicom.dcmread(row.path)
        path = root / row.study_id / f"{ds.SOPInstanceUID}.dcm"
        assert path.resolve() == Path(row.path)
        assert ds.PatientID == row.patient_id and ds.StudyInstanceUID == row.study_id
        assert ds.PhotometricInterpretation == row.photometric and ds.BitsStored == 16
        values = ds.pixel_array / 65535.0
        if row.photometric == "MONOCHROME1":
            values = 1.0 - values
        np.testing.assert_allclose(values, ref[i], atol=1e-4)


def test_dicom_dataset_reads_back_through_read_dicom(tmp_path):
    from kerassev.io.dicom import read_dicom

    table = write_phantom_dataset(tmp_path / "d", 2, fmt="dicom", size=64, seed=3,
                                  photometric="MONOCHROME1", bits_stored=12)  # fmt: skip
    ref = make_phantom_cohort(2, size=64, seed=3).images
    for i, p in enumerate(table.path):
        np.testing.assert_allclose(read_dicom(p).pixels, ref[i], atol=1.0 / 4095)


def test_write_refuses_to_overwrite(tmp_path):
    root = tmp_path / "ph"
    root.mkdir()
    write_phantom_dataset(root, 1, size=64)  # an empty folder is fine
    (root / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match=str(root)):
        write_phantom_dataset(root, 1, size=64)
    assert (root / "keep.txt").read_text() == "user data"


def test_real_loaders_read_phantom_datasets(tmp_path):
    from kerassev.data.loaders import covid_chestxray as cohen
    from kerassev.data.loaders import midrc_mrale as midrc

    dcm = write_phantom_dataset(tmp_path / "dcm", 3, fmt="dicom", size=64, seed=4,
                                photometric="mixed")  # fmt: skip
    got = midrc.load_midrc_mrale(tmp_path / "dcm").set_index("study_id")
    want = dcm.set_index("study_id")
    assert sorted(got.index) == sorted(want.index)
    for col in ("patient_id", "path", *SUBSCORE_COLUMNS, "mrale"):
        assert (got[col] == want.loc[got.index, col]).all(), col
    png = write_phantom_dataset(tmp_path / "png", 3, size=64, seed=4)
    got = cohen.load_covid_chestxray(tmp_path / "png", scored_only=True).set_index("filename")
    want = png.set_index("filename")
    assert sorted(got.index) == sorted(want.index)
    for col in ("patient_id", "geographic_mean", "opacity_mean", "offset"):
        assert (got[col] == want.loc[got.index, col]).all(), col
