"""Evaluation of a trained affinity model: classification (paper 05 Table 5), segmentation AP
(Table 4, the detector recipe's COCO evaluation) and X2 of chosen images (Fig. 3).

Classification rows are the paper's (eqs. 12-14): sensitivity of COVID and CP, the true-negative
rate of Normal, F1 weighted by class share, with Wilson / bootstrap 95 % intervals. The control is
the majority-class predictor of the training labels (sklearn ``DummyClassifier``); a row
"beats control" only when the lower end of its interval is above the control's value.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.dummy import DummyClassifier
from sklearn.metrics import confusion_matrix

from kerassev.recipes.ct_lesions.data import letterbox
from kerassev.recipes.ct_lesions.evaluate import evaluate as segmentation_evaluate
from kerassev.recipes.ct_lesions.evaluate import predictor
from kerassev.stats.multiclass import per_class_table

from .config import (
    CLASS_NAMES,
    NEGATIVE_CLASS,
    PAPER_CLASSIFICATION,
    PAPER_SEGM_AP,
    CtAffinityConfig,
)

PAPER_A = 256  # the headline column of the classification table


_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _traced_call(model):
    """One ``tf.function`` per model, so every evaluation of it reuses one trace."""
    if model not in _CALLS:
        ref = weakref.ref(model)  # a strong reference would keep every swept model alive
        _CALLS[model] = tf.function(lambda x: ref()(x))
    return _CALLS[model]


def predict(model, slices, image_size: int):
    """``(detections per slice, class probabilities (N, 3))`` from one traced call per slice."""
    call = _traced_call(model)
    probs = []

    def recording(x):
        out = call(x)
        probs.append(out["class_probs"].numpy()[0])
        return out

    predict_one = predictor(recording, image_size)
    preds = [predict_one(s.image) for s in slices]
    return preds, np.asarray(probs, np.float32).reshape(len(slices), len(CLASS_NAMES))


def class_probs(model, images, image_size: int) -> np.ndarray:
    """Class probabilities ``(N, 3)`` of ``images`` (an iterable of ``(H, W)``), one at a time."""
    call = _traced_call(model)
    out = [call(tf.constant(letterbox(im, image_size)[None, ..., None]))["class_probs"].numpy()[0]
           for im in images]  # fmt: skip
    return np.asarray(out, np.float32).reshape(-1, len(CLASS_NAMES))


def majority_control(train_labels, n: int, k: int = len(CLASS_NAMES)) -> np.ndarray:
    """One-hot predictions ``(n, k)`` of the majority-class predictor of the training labels
    (a tie, as in a balanced set, goes to the lowest class index)."""
    x = np.zeros((len(train_labels), 1))
    dummy = DummyClassifier(strategy="most_frequent").fit(x, np.asarray(train_labels))
    return np.eye(k)[dummy.predict(np.zeros((n, 1))).astype(int)]


def classification_table(labels, probs, train_labels, *, seed: int = 0) -> pd.DataFrame:
    """Per-class sensitivity / TNR and weighted F1 with CIs, the control and the paper."""
    ours = per_class_table(labels, probs, CLASS_NAMES, negative=NEGATIVE_CLASS, seed=seed)
    control = per_class_table(
        labels, majority_control(train_labels, len(labels)), CLASS_NAMES,
        negative=NEGATIVE_CLASS, seed=seed,
    )  # fmt: skip
    table = ours.rename(columns={"lo": "95% CI lo", "hi": "95% CI hi"})
    table["majority-class control"] = control["estimate"].to_numpy()
    table["beats control"] = np.where(
        table["95% CI lo"] > table["majority-class control"], "yes", "no"
    )
    paper = PAPER_CLASSIFICATION[PAPER_A]
    table[f"paper: A={PAPER_A}"] = [paper.get(m) for m in table["metric"]]
    for col in ("estimate", "95% CI lo", "95% CI hi", "majority-class control"):
        table[col] = table[col].astype(float).round(4)
    return table


def confusion_table(labels, probs, names=CLASS_NAMES) -> pd.DataFrame:
    cm = confusion_matrix(labels, np.asarray(probs).argmax(1), labels=range(len(names)))
    table = pd.DataFrame(cm, columns=[f"pred {n}" for n in names])
    table.insert(0, "true class", list(names))
    return table


def ap_rows(slices, preds, config: CtAffinityConfig, data_label: str):
    """The detector recipe's AP table (segm pooled / per slice, bbox) with a ``data`` column."""
    table, per_slice, _ = segmentation_evaluate(slices, preds, config, ("lesion",))
    table = table.rename(columns={"paper: AP@[.5:.95]": "paper: AP@[.5:.95] (A=64)"})
    table.insert(0, "data", data_label)
    return table, per_slice


def x2_of(model, images: np.ndarray) -> np.ndarray:
    """X2 = W1^T X1 ``(K, A, C)`` of ``images (K, S, S, 1)`` (eager; for a few images)."""
    feats = model.features(tf.constant(images), training=False)
    _, x2, _ = model.image_logits(feats, training=False)
    return x2.numpy()


def heatmap_indices(labels: np.ndarray, per_class: int) -> list[int]:
    """The first ``per_class`` test images of each class, in class order."""
    return [
        int(i) for c in range(len(CLASS_NAMES)) for i in np.flatnonzero(labels == c)[:per_class]
    ]


def sweep_row(affinities, epochs, table: pd.DataFrame, segm_ap, segm_data: str, params: int):
    """One A-sweep row: our four classification figures, pooled segm AP, the paper's."""
    t = table.set_index("metric")
    row = {"A": affinities, "epochs": epochs, "parameters": params}
    for metric in ("Sens (COVID)", "Sens (CP)", "TNR (Normal)", "F1 (weighted)"):
        row[metric] = float(t.loc[metric, "estimate"])
    row["control F1"] = float(t.loc["F1 (weighted)", "majority-class control"])
    row["F1 beats control"] = t.loc["F1 (weighted)", "beats control"]
    row["segm AP"] = segm_ap
    row["segm AP data"] = segm_data
    paper = PAPER_CLASSIFICATION.get(affinities, {})
    row["paper: F1"] = paper.get("F1 (weighted)")
    row["paper: Sens (COVID)"] = paper.get("Sens (COVID)")
    row["paper: segm mAP"] = PAPER_SEGM_AP.get(affinities)
    return row


def binary_table(labels, probs, train_labels, *, seed: int = 0) -> pd.DataFrame:
    """Generalisation step: COVID (1) vs Negative (0) from the COVID and Normal logits."""
    two = np.asarray(probs)[:, [2, 0]]  # columns: Negative (Normal logit), COVID
    table = per_class_table(labels, two, ("Negative", "COVID"), negative=0, seed=seed)
    table = table.rename(columns={"lo": "95% CI lo", "hi": "95% CI hi"})
    control = per_class_table(
        labels, majority_control(train_labels, len(labels), 2), ("Negative", "COVID"),
        negative=0, seed=seed,
    )  # fmt: skip
    table["majority-class control"] = control["estimate"].to_numpy()
    table["beats control"] = np.where(
        table["95% CI lo"] > table["majority-class control"], "yes", "no"
    )
    for col in ("estimate", "95% CI lo", "95% CI hi", "majority-class control"):
        table[col] = table[col].astype(float).round(4)
    return table
