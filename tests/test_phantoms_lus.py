"""Longitudinal LUS phantoms: deterministic, several visits, findings that follow severity."""

from __future__ import annotations

import numpy as np

from kerassev.data.phantoms import make_lus_cohort, render_lus_clip, sample_trajectories


def test_trajectories_have_visits_small_steps_and_wide_spread():
    table = sample_trajectories(60, visits=(2, 5), seed=3)
    per_patient = table.groupby("patient_id").size()
    assert per_patient.between(2, 5).all() and per_patient.nunique() > 1
    steps = table.groupby("patient_id")["sf_ratio"].diff().abs().dropna()
    baselines = table[table["visit"] == 0]["sf_ratio"]
    assert steps.median() < 0.5 * baselines.std()  # fine within-patient, coarse between
    dates = table.groupby("patient_id")["visit_date"].apply(lambda d: d.is_monotonic_increasing)
    assert dates.all()
    assert table.equals(sample_trajectories(60, visits=(2, 5), seed=3))


def test_clips_are_deterministic_and_in_range():
    a = render_lus_clip(0.5, n_frames=4, size=32, seed=7)
    assert a.shape == (4, 32, 32) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, render_lus_clip(0.5, n_frames=4, size=32, seed=7))
    assert not np.array_equal(a[0], a[1])  # speckle and lung sliding move between frames


def test_findings_follow_severity():
    """Deep rows get B-lines (brighter columns) in sick lungs; healthy lungs keep A-lines."""

    def column_contrast(sev):
        clips = [render_lus_clip(sev, n_frames=2, size=64, seed=s) for s in range(20)]
        deep = np.stack([c[:, 28:44].mean(axis=(0, 1)) for c in clips])  # (20, 64) columns
        return deep.std(axis=1).mean()

    assert column_contrast(0.45) > 1.5 * column_contrast(0.0)


def test_cohort_rows_match_clips():
    cohort = make_lus_cohort(5, visits=(2, 3), n_frames=2, size=16, seed=1)
    assert len(cohort.clips) == len(cohort.table) >= 10
    assert cohort.table["severity"].between(0, 1).all()
