"""Paper 02 recipe: pair labels, the pair classifier, leakage checks and a tiny end-to-end run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kerassev.data.splits import LeakageError
from kerassev.recipes.learner import LearnerConfig, reproduce_learner
from kerassev.recipes.learner.data import phantom_data
from kerassev.recipes.learner.downstream import macro_f1, score_pairs, train_pair_classifier
from kerassev.recipes.learner.evaluate import (
    check_no_leakage,
    linear_probe,
    longitudinal_split,
    pair_task,
)
from kerassev.recipes.learner.pairs import (
    change_labels,
    cross_pairs,
    pair_features,
    sequential_pairs,
    sf_bin,
)


def test_sf_bins_follow_spec():
    assert sf_bin([500, 431, 430, 300, 275, 200, 180, 100]).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_change_labels_by_bin_and_threshold():
    # 300 -> 450: bin 1 -> 0 improved; 300 -> 280 same bin; 300 -> 200 deteriorated
    assert change_labels([300, 300, 300], [450, 280, 200]).tolist() == [0, 1, 2]
    thr = change_labels([20, 20, 20], [23, 21, 17], mode="threshold", threshold=1.5)
    assert thr.tolist() == [0, 1, 2]
    # severity scores: lower is better, so 2 -> 1 is an improvement
    sev = change_labels([2, 2, 2], [1, 2, 3], mode="threshold", higher_is_better=False)
    assert sev.tolist() == [0, 1, 2]


def test_pairs_and_features():
    table = pd.DataFrame({"patient_id": ["a", "a", "a", "b", "b"], "visit": [2, 0, 1, 0, 1]})
    seq = sequential_pairs(table)
    assert seq[["a", "b"]].values.tolist() == [[1, 2], [2, 0], [3, 4]]
    assert len(cross_pairs(table)) == 5 * 4
    emb = np.arange(10, dtype=np.float32).reshape(5, 2)
    feats = pair_features(emb, seq)
    np.testing.assert_array_equal(feats[0], [2, 3, 4, 5, 2, 2])  # [u_t, u_t+1, u_t+1 - u_t]


def test_scores_and_classifier_learn_a_separable_task():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = (np.eye(3)[y] * 3 + rng.normal(0, 0.5, (300, 3))).astype(np.float32)
    clf = train_pair_classifier(x[:200], y[:200], epochs=30)
    pred = clf.predict(x[200:], verbose=0).argmax(axis=1)
    scores = score_pairs(y[200:], pred, n_boot=100)
    assert scores.accuracy.estimate > 0.9 and scores.macro_f1.low > 0.8
    assert macro_f1([0, 1, 2], [0, 1, 1]) == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_test_patients_never_train():
    config = LearnerConfig.smoke(phantom_patients=12, n_frames=2, frame_size=16)
    data = phantom_data(config)
    split = longitudinal_split(data, config)
    check_no_leakage(data, np.concatenate([split["train"], split["val"]]), split["test"])
    with pytest.raises(LeakageError):
        check_no_leakage(data, split["train"], np.concatenate([split["test"], split["train"][:1]]))


def test_pair_task_refuses_a_fit_on_encoder_training_patients():
    config = LearnerConfig.smoke(phantom_patients=12, n_frames=2, frame_size=16, pair_epochs=1)
    data = phantom_data(config)
    split = longitudinal_split(data, config)
    emb = np.random.default_rng(0).random((len(data.table), 4)).astype(np.float32)
    leaky_fit = np.concatenate([split["val"], split["train"][:1]])
    with pytest.raises(LeakageError, match="encoder-training patient"):
        pair_task(emb, data, leaky_fit, split["test"], config, encoder_idx=split["train"])
    with pytest.raises(LeakageError, match="encoder-training patient"):
        linear_probe(emb, data, leaky_fit, split["test"], config, encoder_idx=split["train"])


class _Spy:
    """Records the patients every pre-training and every downstream fit of a run used."""

    def __init__(self, monkeypatch):
        import kerassev.recipes.learner.reproduce as rep

        self.encoder, self.fits = [], []
        for name, which in (("pretrain_row", 2), ("pair_task", 2), ("linear_probe", 2)):
            orig = getattr(rep, name)

            def wrapped(*args, _orig=orig, _name=name, _which=which, **kwargs):
                pid = args[1].table["patient_id"].to_numpy()
                got = set(pid[np.asarray(args[_which])].tolist())
                (self.encoder if _name == "pretrain_row" else self.fits).append((_name, got))
                return _orig(*args, **kwargs)

            monkeypatch.setattr(rep, name, wrapped)

    def assert_out_of_sample(self):
        assert self.encoder and self.fits
        trained = set().union(*(p for _, p in self.encoder))
        for name, fit in self.fits:
            assert not fit & trained, f"{name} fitted on encoder-training patients {fit & trained}"


def test_no_downstream_fit_sees_an_encoder_training_patient(monkeypatch, tmp_path):
    from kerassev.recipes.learner import reproduce as rep
    from kerassev.runs import RunFolder

    spy = _Spy(monkeypatch)
    config = LearnerConfig.smoke(
        phantom_patients=16, phantom_visits=(2, 3), n_frames=2, frame_size=16, width=4,
        epochs=1, pair_epochs=2, n_boot=10, phantom_rows=("tsm_mse",), pocus_rows=("tsm_cl",),
    )  # fmt: skip
    data = phantom_data(config)
    run = RunFolder.create(tmp_path, "learner-test", config=config, seed=0)
    rep._longitudinal(data, config, run, 0, [], {}, {})
    spy.assert_out_of_sample()
    # the POCUS proxy and probe: the same check on a POCUS-shaped table (labels, some unscored)
    pid = data.table["patient_id"].astype("category").cat.codes.to_numpy()
    hs = data.table["visit"].astype(float).where(pid % 5 != 0)
    data.table = data.table.assign(hs=hs, label_index=pid % 4)
    spy.encoder.clear(), spy.fits.clear()
    rep._pocus(data, config, run, 0, [], {})
    spy.assert_out_of_sample()
    assert {name for name, _ in spy.fits} == {"pair_task", "linear_probe"}


@pytest.mark.slow
def test_tiny_run_writes_table_rows_and_fig1(tmp_path):
    config = LearnerConfig.smoke(
        phantom_patients=12,
        phantom_visits=(2, 3),
        n_frames=2,
        frame_size=16,
        width=4,
        epochs=1,
        pair_epochs=5,
        n_boot=20,
        phantom_rows=("tsm_mse", "tsm_cl"),
        pocus=False,
    )
    result = reproduce_learner(config, tmp_path)
    comparators = result.table["comparator"].tolist()
    assert comparators[:2] == ["MSE (TSM)", "MSE+CL (TSM)"]
    assert "majority class (control)" in comparators
    assert result.table["accuracy"].between(0, 1).all()
    assert result.table.loc[0, "paper: accuracy %"] == "55.48"
    assert "POCUS proxy" in result.skipped
    run = result.run.path
    assert (run / "figures" / "fig1_cosine_distance.png").is_file()
    assert (run / "tables" / "learner_table.md").read_text().count("MSE+CL (TSM)") == 1
    assert result.run.info["completed"]


def test_finished_pretraining_stage_is_loaded_not_retrained(tmp_path):
    from kerassev.recipes.learner.pretrain import embed, pretrain_row
    from kerassev.runs import RunFolder

    config = LearnerConfig.smoke(
        phantom_patients=6, phantom_visits=(2, 2), n_frames=2, frame_size=16, width=4, epochs=1
    )
    data = phantom_data(config)
    run = RunFolder.create(tmp_path, "learner-test", config=config, seed=0)
    idx = np.arange(len(data.table))
    first = embed(pretrain_row("tsm_cl", data, idx, config, run, stage_prefix="t"), data)
    assert run.stage_done("t/tsm_cl")
    again = embed(pretrain_row("tsm_cl", data, idx, config, run, stage_prefix="t"), data)
    np.testing.assert_allclose(first, again, atol=1e-5)
