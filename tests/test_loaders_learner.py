"""Paper 02 data layouts: in-house LUS (videos + scans.csv) and ADNI (NIfTI + visits.csv),
tested on phantoms written in those layouts."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from kerassev.config import DataNotFoundError
from kerassev.data.loaders import LOADERS, load_adni, load_lus_inhouse
from kerassev.data.manifest import check_dataset
from kerassev.data.phantoms import make_lus_cohort, write_lus_inhouse_layout
from kerassev.data.table import TableError
from kerassev.io.nifti import NiftiReadError, read_nifti_clip
from kerassev.io.video import ClipReader


def test_lus_inhouse_layout_round_trip(tmp_path):
    cohort = make_lus_cohort(3, visits=(2, 3), n_frames=4, size=32, seed=0)
    write_lus_inhouse_layout(tmp_path, cohort)
    assert check_dataset("lus_inhouse.template", tmp_path).ok
    table = LOADERS["lus_inhouse.template"](tmp_path)
    assert len(table) == len(cohort.table)
    assert (
        table.groupby("patient_id")["visit"].apply(lambda v: list(v) == list(range(len(v)))).all()
    )
    np.testing.assert_allclose(
        table.sort_values(["patient_id", "visit"])["sf_ratio"].to_numpy(),
        cohort.table.sort_values(["patient_id", "visit"])["sf_ratio"].to_numpy(),
    )
    clips = ClipReader(4, size=32, cache_root=tmp_path / "cache").read(table["path"][0])
    assert clips.shape == (1, 4, 32, 32)
    first = cohort.table.index[
        (cohort.table["patient_id"] == table["patient_id"][0]) & (cohort.table["visit"] == 0)
    ][0]
    # lossy MPEG-4 at 32 px keeps the picture: correlation with the phantom clip
    corr = np.corrcoef(clips[0].ravel(), cohort.clips[first].ravel())[0, 1]
    assert corr > 0.8


def test_lus_inhouse_errors_name_the_problem(tmp_path):
    cohort = make_lus_cohort(2, visits=(2, 2), n_frames=2, size=16, seed=0)
    table = write_lus_inhouse_layout(tmp_path, cohort)
    table.iloc[:1].to_csv(tmp_path / "scans.csv", index=False)
    with pytest.raises(TableError, match="fewer than 2 scans"):
        load_lus_inhouse(tmp_path)
    table.assign(visit_date="March").to_csv(tmp_path / "scans.csv", index=False)
    with pytest.raises(TableError, match="YYYY-MM-DD"):
        load_lus_inhouse(tmp_path)
    table.assign(video="nope.mp4").to_csv(tmp_path / "scans.csv", index=False)
    with pytest.raises(DataNotFoundError, match="nope.mp4"):
        load_lus_inhouse(tmp_path)


def _write_adni(root, n_subjects=2, visits=(0, 6, 12)):
    rows = []
    rng = np.random.default_rng(0)
    for s in range(n_subjects):
        for m in visits:
            mmse = 29 - s * 3 - m / 6
            zz, yy, xx = np.mgrid[-1:1:12j, -1:1:20j, -1:1:20j]
            brain = (xx**2 + yy**2 + zz**2 < 0.8).astype(np.float32)
            ventricle = (xx**2 + yy**2 < (30 - mmse) / 60).astype(np.float32)
            volume = (brain - 0.7 * ventricle * brain + 0.05 * rng.random(brain.shape)).transpose(
                1, 2, 0
            )
            scan = f"{s:03d}_S_{s:04d}/m{m:02d}.nii.gz"
            (root / "mri" / scan).parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(volume, np.eye(4)), root / "mri" / scan)
            rows.append((f"{s:03d}_S_{s:04d}", m, scan, mmse))
    pd.DataFrame(rows, columns=["subject_id", "visit_month", "scan", "mmse"]).to_csv(
        root / "visits.csv", index=False
    )


def test_adni_layout_round_trip(tmp_path):
    _write_adni(tmp_path)
    assert check_dataset("adni.template", tmp_path).ok
    table = load_adni(tmp_path)
    assert len(table) == 6 and table["patient_id"].nunique() == 2
    assert (table.groupby("patient_id")["visit_month"].diff().dropna() > 0).all()
    clip = read_nifti_clip(table["path"][0], 4, size=16)
    assert clip.shape == (1, 4, 16, 16) and clip.min() >= 0 and clip.max() <= 1
    from kerassev.recipes.learner import LearnerConfig
    from kerassev.recipes.learner.data import inhouse_data

    data = inhouse_data(LearnerConfig.smoke(n_frames=4, frame_size=16), tmp_path, "adni")
    assert data.clips.shape == (6, 4, 16, 16) and data.hs_name == "MMSE"
    assert data.label_mode == "threshold"  # MMSE has no bins in the paper
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a volume")
    with pytest.raises(NiftiReadError, match="bad.nii.gz"):
        read_nifti_clip(bad)


def test_recipe_skips_and_reports_a_corrupt_video(tmp_path):
    from kerassev.recipes.learner import LearnerConfig
    from kerassev.recipes.learner.data import inhouse_data

    cohort = make_lus_cohort(3, visits=(2, 2), n_frames=2, size=16, seed=0)
    table = write_lus_inhouse_layout(tmp_path, cohort)
    bad = tmp_path / "videos" / table["video"][0]
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    config = LearnerConfig.smoke(n_frames=2, frame_size=16)
    data = inhouse_data(config, tmp_path)
    assert len(data.table) == len(table) - 1 == len(data.clips)
    assert list(data.skipped) == [str(bad)]
