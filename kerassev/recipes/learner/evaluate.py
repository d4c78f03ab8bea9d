"""Patient-grouped splits and the downstream evaluations of paper 02.

* longitudinal (the paper's task): consecutive scans of each test patient, 3-way change label;
* POCUS proxy: every ordered pair of different scored test videos, "B is less / equally / more
  severe than A" (cross-video, cross-patient; no longitudinal POCUS data exists);
* POCUS 4-class linear probe (covid / pneumonia / regular / viral) on the same embeddings.

Three disjoint patient sets (``assert_no_leakage``): the encoder pre-trains on the *train*
patients, the downstream classifier (pair MLP, probe) is fitted on the *fit* patients' embeddings
(the validation patients: the encoder never trained on them), and both are scored on the *test*
patients. A classifier fitted on the encoder's own training clips learns a feature distribution
(memorised scores) that test clips never show (issue 20 fault 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from kerassev.data.splits import assert_no_leakage, train_val_test_split

from .config import LearnerConfig
from .data import ClipData
from .downstream import PairScores, score_pairs, train_pair_classifier
from .pairs import change_labels, cross_pairs, pair_features, sequential_pairs


def longitudinal_split(data: ClipData, config: LearnerConfig) -> dict[str, np.ndarray]:
    """Clip indices of train (encoder) / val (pair MLP) / test patients (Table 1 proportions)."""
    train, val, test = train_val_test_split(
        data.table,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    return {"train": train, "val": val, "test": test}


def pocus_split(data: ClipData, config: LearnerConfig) -> dict[str, np.ndarray]:
    """Patient-grouped train (encoder) / fit (downstream) / test over all videos; ``*_scored``:
    the videos with a Lung Severity Score (pre-training and the proxy use only those)."""
    train, fit, test = train_val_test_split(
        data.table,
        val_fraction=config.pocus_fit_fraction,
        test_fraction=config.pocus_test_fraction,
        seed=config.seed,
    )
    scored = data.table["hs"].notna().to_numpy()
    out = {"train": train, "fit": fit, "test": test}
    return {**out, **{f"{k}_scored": v[scored[v]] for k, v in out.items()}}


def _pairs(data: ClipData, idx: np.ndarray, kind: str) -> pd.DataFrame:
    sub = data.table.loc[idx]
    pairs = sequential_pairs(sub) if kind == "sequential" else cross_pairs(sub)
    hs = data.table["hs"].to_numpy(float)
    pairs["label"] = change_labels(
        hs[pairs["a"]],
        hs[pairs["b"]],
        mode=data.label_mode,
        threshold=data.label_threshold,
        higher_is_better=data.higher_is_better,
    )
    return pairs


def check_no_leakage(data: ClipData, train_idx, test_idx, *, what: str = "patient") -> None:
    pid = data.table["patient_id"].to_numpy()
    assert_no_leakage(pid[np.asarray(train_idx)], pid[np.asarray(test_idx)], what=what)


def check_out_of_sample(data: ClipData, encoder_idx, fit_idx, test_idx) -> None:
    """Raise ``LeakageError`` unless encoder-training, downstream-fit and test patients are
    disjoint (``encoder_idx=None``: an untrained encoder, nothing to leak)."""
    check_no_leakage(data, fit_idx, test_idx, what="patient (downstream fit vs test)")
    if encoder_idx is not None:
        enc = np.asarray(encoder_idx)
        check_no_leakage(data, enc, fit_idx, what="encoder-training patient in a downstream fit")
        check_no_leakage(data, enc, test_idx, what="patient (encoder training vs test)")


def pair_task(
    emb: np.ndarray,
    data: ClipData,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    config: LearnerConfig,
    *,
    encoder_idx: np.ndarray | None,
    kind: str = "sequential",
) -> tuple[PairScores, pd.DataFrame]:
    """Train the 3-way MLP on ``train_idx`` patients' pairs (none of them in ``encoder_idx``,
    the clips the encoder trained on), score it on test patients' pairs."""
    check_out_of_sample(data, encoder_idx, train_idx, test_idx)
    train, test = _pairs(data, train_idx, kind), _pairs(data, test_idx, kind)
    if train.empty or test.empty:
        raise ValueError(f"no {kind} pairs to train on or test ({len(train)}, {len(test)})")
    clf = train_pair_classifier(
        pair_features(emb, train),
        train["label"].to_numpy(),
        hidden=config.pair_hidden,
        epochs=config.pair_epochs,
        lr=config.pair_lr,
        seed=config.seed,
    )
    probs = clf.predict(pair_features(emb, test), verbose=0)
    test = test.assign(pred=probs.argmax(axis=1))
    # cross-video pairs mix two patients: an i.i.d. bootstrap; sequential pairs: by patient
    groups = test["patient_id"].to_numpy() if kind == "sequential" else None
    scores = score_pairs(
        test["label"], test["pred"], groups=groups, n_boot=config.n_boot, seed=config.seed
    )
    return scores, test


def majority_task(
    data: ClipData, train_idx, test_idx, config: LearnerConfig, *, kind: str = "sequential"
) -> tuple[PairScores, pd.DataFrame]:
    """Control: always predict the training pairs' most frequent class."""
    train, test = _pairs(data, train_idx, kind), _pairs(data, test_idx, kind)
    majority = int(np.bincount(train["label"], minlength=3).argmax())
    test = test.assign(pred=majority)
    groups = test["patient_id"].to_numpy() if kind == "sequential" else None
    scores = score_pairs(
        test["label"], test["pred"], groups=groups, n_boot=config.n_boot, seed=config.seed
    )
    return scores, test


@threadpool_limits.wrap(limits=1)  # a second BLAS thread only spin-waits here (issue 23)
def linear_probe(
    emb: np.ndarray,
    data: ClipData,
    train_idx,
    test_idx,
    config: LearnerConfig,
    *,
    encoder_idx: np.ndarray | None,
) -> tuple[PairScores, PairScores]:
    """4-class logistic regression on frozen embeddings of patients the encoder did not train
    on: (probe scores, majority-class scores)."""
    check_out_of_sample(data, encoder_idx, train_idx, test_idx)
    y = data.table["label_index"].to_numpy()
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    probe.fit(emb[train_idx], y[train_idx])
    pred = probe.predict(emb[test_idx])
    groups = data.table["patient_id"].to_numpy()[test_idx]
    kw = {"groups": groups, "n_boot": config.n_boot, "seed": config.seed}
    majority = np.full(len(test_idx), np.bincount(y[train_idx]).argmax())
    return score_pairs(y[test_idx], pred, **kw), score_pairs(y[test_idx], majority, **kw)
