"""Metrics, confidence intervals, paired tests and paper-shaped tables (SPEC 01 and 03)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from kerassev.stats.intervals import Interval, bootstrap_interval, t_interval
from kerassev.stats.metrics import METRIC_NAMES, qwk, regression_metrics
from kerassev.stats.significance import paired_tests, paired_tests_on_predictions
from kerassev.stats.tables import summary_table, to_markdown, write_table


# ----------------------------------------------------------------------------- metrics
def test_regression_metrics_known_values():
    m = regression_metrics([0, 1, 2, 3], [0, 1, 2, 4], score_range=(0, 24))
    assert m["n"] == 4
    assert m["mae"] == pytest.approx(0.25)
    assert m["mse"] == pytest.approx(0.25)
    assert m["rmse"] == pytest.approx(0.5)
    assert m["spearman"] == pytest.approx(1.0)
    assert m["pearson"] == pytest.approx(np.corrcoef([0, 1, 2, 3], [0, 1, 2, 4])[0, 1])
    assert m["r2"] == pytest.approx(1 - 1 / 5)
    assert m["note"] == ""
    assert set(METRIC_NAMES) <= set(m)


def test_qwk_rounds_and_clips_to_score_range():
    t = np.array([0, 3, 8, 12, 20, 24.0])
    p = np.array([-2.4, 3.4, 7.6, 30.0, 19.5, 23.0])
    expected = cohen_kappa_score(
        [0, 3, 8, 12, 20, 24], [0, 3, 8, 24, 20, 23], weights="quadratic", labels=np.arange(25)
    )
    assert regression_metrics(t, p, score_range=(0, 24))["qwk"] == pytest.approx(expected)


def test_nan_and_length_errors_name_the_problem():
    with pytest.raises(
        ValueError, match=r"y_pred.* 2 NaN/inf value\(s\) of 4, at positions \[1, 3\]"
    ):
        regression_metrics([1, 2, 3, 4], [1, np.nan, 3, np.inf])
    with pytest.raises(ValueError, match="mismatched lengths.*3.*2"):
        regression_metrics([1, 2, 3], [1, 2])


def test_constant_predictions_give_nan_correlations_with_a_note():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no scipy/sklearn warnings leak out
        m = regression_metrics([1, 2, 3, 4], [2.5, 2.5, 2.5, 2.5])
    assert np.isnan(m["spearman"]) and np.isnan(m["pearson"])
    assert "constant y_pred" in m["note"]
    assert m["mae"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- intervals
def test_t_interval_matches_formula():
    iv = t_interval([1, 2, 3, 4, 5])
    half = stats.t.ppf(0.975, 4) * np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5)
    assert (iv.mean, iv.low, iv.high) == pytest.approx((3, 3 - half, 3 + half))
    assert iv.method == "t over folds" and iv.n == 5
    assert str(iv).startswith("3.00 (")


def test_t_interval_reports_nan_and_single_values():
    iv = t_interval([0.5, np.nan, 0.7])
    assert np.isnan(iv.mean) and "1 of 3" in iv.note
    one = t_interval([0.5])
    assert one.mean == 0.5 and np.isnan(one.low)
    with pytest.raises(ValueError, match="confidence"):
        t_interval([1, 2], confidence=95)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=30))
def test_t_interval_brackets_the_mean(values):
    iv = t_interval(values)
    assert iv.low <= iv.mean + 1e-9 and iv.mean <= iv.high + 1e-9


score_arrays = st.integers(3, 25).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 6), min_size=n, max_size=n),
        st.lists(st.integers(0, 6), min_size=n, max_size=n),
        st.lists(st.integers(0, 4), min_size=n, max_size=n),
    )
)


@settings(max_examples=25, deadline=None)
@given(score_arrays, st.sampled_from(METRIC_NAMES), st.booleans())
def test_vectorised_bootstrap_equals_looped_metric(arrays, metric, clustered):
    """The vectorised resampling gives exactly what the metric gives on each explicit resample."""
    t, p, g = (np.asarray(a, dtype=float) for a in arrays)
    groups = g if clustered else None

    def looped(a, b):
        """Reference on one explicit resample: scipy/sklearn for this metric only (fast)."""
        if metric in ("spearman", "pearson", "r2") and np.ptp(a) == 0:
            return np.nan
        if metric in ("spearman", "pearson") and np.ptp(b) == 0:
            return np.nan
        if metric == "qwk":
            return qwk(a, b, score_range=(0, 6))
        return {
            "mae": lambda: np.mean(np.abs(b - a)),
            "mse": lambda: np.mean((b - a) ** 2),
            "rmse": lambda: np.sqrt(np.mean((b - a) ** 2)),
            "r2": lambda: 1 - np.sum((b - a) ** 2) / np.sum((a - a.mean()) ** 2),
            "spearman": lambda: stats.spearmanr(a, b).statistic,
            "pearson": lambda: stats.pearsonr(a, b).statistic,
        }[metric]()

    fast = bootstrap_interval(t, p, metric, groups=groups, n_boot=40, seed=1, score_range=(0, 6))
    slow = bootstrap_interval(t, p, looped, groups=groups, n_boot=40, seed=1, score_range=(0, 6))
    np.testing.assert_allclose(
        [fast.low, fast.high], [slow.low, slow.high], atol=1e-9, equal_nan=True
    )
    assert fast.note.split(" gave")[0] == slow.note.split(" gave")[0]


def test_bootstrap_methods_and_cluster_width():
    rng = np.random.default_rng(0)
    n_pat, per = 400, 5
    t = rng.integers(0, 25, n_pat * per).astype(float)
    patient_err = np.repeat(rng.normal(0, 4, n_pat), per)  # errors shared within a patient
    p = t + patient_err
    groups = np.repeat(np.arange(n_pat), per)
    iid = bootstrap_interval(t, p, "mae", n_boot=2000)
    clus = bootstrap_interval(t, p, "mae", groups=groups, n_boot=2000)
    assert iid.method == "bootstrap (percentile) over pooled OOF predictions"
    assert clus.method == "patient-cluster bootstrap"
    assert iid.estimate == pytest.approx(np.mean(np.abs(p - t)))
    assert iid.low < iid.estimate < iid.high
    assert (clus.high - clus.low) > 1.5 * (iid.high - iid.low)
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_interval(t, p, "auc")
    with pytest.raises(ValueError, match="groups has 3"):
        bootstrap_interval(t, p, "mae", groups=[1, 2, 3])


def test_bootstrap_reports_nan_resamples():
    t = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.0, 1.0, 1.0, 2.0])  # resamples without the 4th row have constant predictions
    iv = bootstrap_interval(t, p, "spearman", n_boot=300)
    assert "resamples gave NaN spearman" in iv.note
    assert isinstance(iv, Interval)


# ----------------------------------------------------------------------------- significance
def _per_fold():
    return pd.DataFrame(
        {
            "comparator": ["a"] * 5 + ["b"] * 5 + ["c"] * 5,
            "fold": list(range(5)) * 3,
            "mae": [5.0, 5.1, 4.9, 5.2, 5.0, 5.7, 5.8, 5.6, 5.9, 5.5, 5.4, 5.6, 5.3, 5.5, 5.4],
        }
    )


def test_paired_tests_every_pair_matches_scipy():
    res = paired_tests(_per_fold(), metric="mae")
    assert list(zip(res.comparator_a, res.comparator_b, strict=True)) == [
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
    ]
    pf = _per_fold()
    a = pf[pf.comparator == "a"].mae.to_numpy()
    b = pf[pf.comparator == "b"].mae.to_numpy()
    row = res.iloc[0]
    assert row.mean_diff == pytest.approx(np.mean(a - b))
    assert row.t_p == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert row.wilcoxon_p == pytest.approx(0.0625)  # all 5 differences negative: the floor
    assert "smallest possible two-sided p is 0.0625" in row.note
    assert row.n_pairs == 5


def test_paired_tests_report_nans_and_unpaired_folds():
    pf = _per_fold()
    pf.loc[(pf.comparator == "b") & (pf.fold == 2), "mae"] = np.nan
    pf = pf[~((pf.comparator == "c") & (pf.fold == 4))]
    res = paired_tests(pf, metric="mae").set_index(["comparator_a", "comparator_b"])
    assert np.isnan(res.loc[("a", "b"), "t_p"]) and "NaN" in res.loc[("a", "b"), "note"]
    assert res.loc[("a", "c"), "n_pairs"] == 4
    assert "not paired" in res.loc[("a", "c"), "note"]
    with pytest.raises(ValueError, match="lacks column"):
        paired_tests(pf, metric="mse")


def test_paired_tests_on_predictions():
    rng = np.random.default_rng(1)
    n = 60
    y = rng.uniform(0, 24, n)
    rows = []
    for comp, noise in (("good", 1.0), ("bad", 3.0)):
        rows.append(
            pd.DataFrame(
                {
                    "row_id": [f"r{i}" for i in range(n)],
                    "patient_id": [f"p{i // 3}" for i in range(n)],
                    "fold": (np.arange(n) // 3) % 5,
                    "comparator": comp,
                    "y_true": y,
                    "y_pred": y + rng.normal(0, noise, n),
                }
            )
        )
    oof = pd.concat(rows, ignore_index=True)
    res = paired_tests_on_predictions(oof)
    good = np.abs(rows[0].y_pred - y)
    bad = np.abs(rows[1].y_pred - y)
    assert res.loc[0, "n_pairs"] == n
    assert res.loc[0, "t_p"] == pytest.approx(stats.ttest_rel(good, bad).pvalue)
    assert res.loc[0, "wilcoxon_p"] == pytest.approx(stats.wilcoxon(good, bad).pvalue)
    assert "correlated" in res.loc[0, "note"]
    by_patient = paired_tests_on_predictions(oof, "sq_error", level="patient")
    assert by_patient.loc[0, "n_pairs"] == n // 3
    with pytest.raises(ValueError, match="abs_error"):
        paired_tests_on_predictions(oof, "mape")


# ----------------------------------------------------------------------------- tables
def _oof_and_per_fold():
    rng = np.random.default_rng(2)
    frames = []
    for comp, noise in (("ssl (a)", 2.0), ("scratch (c)", 4.0)):
        for fold in range(5):
            y = rng.integers(0, 25, 20).astype(float)
            frames.append(
                pd.DataFrame(
                    {
                        "row_id": [f"{fold}-{i}" for i in range(20)],
                        "patient_id": [f"{fold}-{i // 2}" for i in range(20)],
                        "fold": fold,
                        "comparator": comp,
                        "y_true": y,
                        "y_pred": y + rng.normal(0, noise, 20),
                    }
                )
            )
    oof = pd.concat(frames, ignore_index=True)
    per_fold = pd.DataFrame(
        [
            {"comparator": c, "fold": f, **regression_metrics(s.y_true, s.y_pred)}
            for (c, f), s in oof.groupby(["comparator", "fold"], sort=False)
        ]
    )
    return oof, per_fold


def test_summary_table_shape_and_paper_columns():
    oof, per_fold = _oof_and_per_fold()
    paper = {"ssl (a)": {"MAE": "5.05 (5.03-5.08)", "mse": 66.67, "Spearman rho": 0.77}}
    table = summary_table(per_fold, oof, paper=paper, n_boot=200)
    assert list(table.comparator) == ["ssl (a)", "scratch (c)"]
    cols = list(table.columns)
    assert "MAE mean (95% t-CI over folds)" in cols
    assert "MAE pooled (95% patient-bootstrap CI)" in cols
    assert cols[-3:] == ["paper: MAE", "paper: MSE", "paper: Spearman rho"]
    assert table.loc[0, "paper: MAE"] == "5.05 (5.03-5.08)"
    assert table.loc[0, "paper: MSE"] == "66.67"
    assert table.loc[1, "paper: MAE"] == ""  # the paper has no such row
    ours = per_fold[per_fold.comparator == "ssl (a)"].mae.mean()
    assert table.loc[0, "MAE mean (95% t-CI over folds)"].startswith(f"{ours:.2f} (")
    # a comparator only the paper has gets a row with our columns blank
    extra = summary_table(per_fold, oof, paper={"(b)": {"mae": 5.71}}, n_boot=50)
    assert extra.iloc[-1]["comparator"] == "(b)" and extra.iloc[-1]["paper: MAE"] == "5.71"
    assert extra.iloc[-1]["MAE mean (95% t-CI over folds)"] == ""


def test_markdown_and_write_table(tmp_path):
    df = pd.DataFrame({"comparator": ["a|b", "c"], "MAE": ["5.05 (5.0 to 5.1)", np.nan]})
    md = to_markdown(df)
    lines = md.strip().splitlines()
    assert len(lines) == 4
    assert lines[1].replace("|", "").replace("-", "").strip() == ""
    assert "a\\|b" in lines[2]
    assert all(line.count(" | ") == lines[0].count(" | ") for line in lines)
    paths = write_table(df, tmp_path / "tables", "table1")
    assert paths["csv"].read_text().startswith("comparator,MAE")
    assert paths["md"].read_text() == md
    with pytest.raises(FileExistsError, match="table1.csv"):
        write_table(df, tmp_path / "tables", "table1")
    write_table(df.head(1), tmp_path / "tables", "table1", overwrite=True)
    assert "c" not in paths["csv"].read_text().splitlines()[-1].split(",")[0]


def test_verdicts_against_control_need_a_better_mean_and_a_small_p():
    from kerassev.stats.significance import paired_tests_on_predictions, verdicts_against_control

    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    rows = []
    for name, noise in (("ssl_good", 0.2), ("ssl_bad", 1.5), ("scratch", 1.0)):
        pred = y + rng.normal(scale=noise, size=200)
        rows += [{"comparator": name, "fold": i % 5, "row_id": i, "patient_id": i,
                  "y_true": y[i], "y_pred": pred[i]} for i in range(200)]  # fmt: skip
    tests = paired_tests_on_predictions(pd.DataFrame(rows), "abs_error")
    good, bad = verdicts_against_control(tests, "scratch", ["ssl_good", "ssl_bad"])
    assert good.startswith("ssl_good beats scratch") and "mean difference -" in good
    assert bad.startswith("ssl_bad does NOT beat scratch") and "mean difference +" in bad


def test_holm_adjust_matches_hand_computed_step_down():
    from kerassev.stats.significance import holm_adjust

    # m = 4: sorted 0.01, 0.02, 0.03, 0.04 -> x4, x3, x2, x1 = 0.04, 0.06, 0.06, 0.04 -> monotone
    got = holm_adjust([0.03, 0.01, np.nan, 0.04, 0.02])
    want = [0.06, 0.04, np.nan, 0.06, 0.06]
    np.testing.assert_allclose(got, want)
    assert holm_adjust([0.5, 0.9])[1] == 1.0  # capped
    assert np.isnan(holm_adjust([np.nan])).all()
