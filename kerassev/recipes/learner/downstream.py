"""The downstream 3-way pair classifier and its metrics (paper 02 §3.3).

Frozen embeddings of two scans -> ``[u_t, u_t+1, u_t+1 - u_t]`` -> MLP -> 3 classes, trained
with cross-entropy. Accuracy and macro F1 come with a percentile bootstrap CI (patient-cluster
when the pairs' patients are given), :func:`kerassev.stats.intervals.bootstrap_interval`.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from kerassev.stats.intervals import Interval, bootstrap_interval

N_CLASSES = 3


def build_pair_classifier(
    n_features: int, *, hidden: int = 64, n_classes: int = N_CLASSES, name: str = "pair_mlp"
) -> keras.Model:
    """Normalisation (adapted on the training pairs) -> Dense(hidden, relu) -> softmax."""
    inputs = keras.Input((n_features,), name="pair_features")
    x = layers.Normalization(name="standardise")(inputs)
    x = layers.Dense(hidden, activation="relu", name="hidden")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    return keras.Model(
        inputs, layers.Dense(n_classes, activation="softmax", name="probs")(x), name=name
    )


def train_pair_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int = 64,
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
) -> keras.Model:
    """Fit the MLP on training pairs (Adam, cross-entropy).

    The batch grows so that an epoch has at most 25 steps: the POCUS proxy has thousands of
    cross-video pairs, the longitudinal task tens to hundreds. The pairs are fed by one endless
    tf.data iterator, each pass reshuffled (as ``pretrain.clip_feed``): NumPy arrays would build
    a new iterator every epoch, most of the cost of 30 epochs of two steps (issue 23).
    """
    keras.utils.set_random_seed(seed)
    n = len(x)
    batch_size = max(batch_size, -(-n // 25))
    model = build_pair_classifier(x.shape[1], hidden=hidden)
    model.get_layer("standardise").adapt(x)
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy")
    feed = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.float32), np.asarray(y)))
    feed = feed.shuffle(n, seed=seed, reshuffle_each_iteration=True).batch(batch_size).repeat()
    # shuffle=False: the feed shuffles itself (fit's default would only warn)
    model.fit(feed, epochs=epochs, steps_per_epoch=-(-n // batch_size), verbose=0, shuffle=False)
    return model


# NumPy, not sklearn.metrics: the bootstrap calls these n_boot times per interval, and sklearn's
# input validation made that a tenth of the smoke run (0.01 s a call; issue 23).
def accuracy(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def macro_f1(y_true, y_pred) -> float:
    """Macro F1 over the classes present in ``y_true`` or ``y_pred`` (sklearn's
    ``f1_score(average="macro")``): per class ``2 TP / (support + predicted)``."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    classes, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    t, p = codes[: len(y_true)], codes[len(y_true) :]
    k = len(classes)
    tp = np.bincount(t[t == p], minlength=k)
    denom = np.bincount(t, minlength=k) + np.bincount(p, minlength=k)
    return float(np.mean(2 * tp / denom))


@dataclass(frozen=True)
class PairScores:
    accuracy: Interval
    macro_f1: Interval
    n_pairs: int

    def row(self) -> dict:
        return {
            "accuracy % (95% CI)": _percent(self.accuracy),
            "macro F1 (95% CI)": self.macro_f1.format(3),
            "pairs": self.n_pairs,
            "accuracy": self.accuracy.estimate,
            "macro_f1": self.macro_f1.estimate,
            "ci_method": self.accuracy.method,
        }


def _percent(iv: Interval) -> str:
    return f"{100 * iv.estimate:.1f} ({100 * iv.low:.1f} to {100 * iv.high:.1f})"


def score_pairs(y_true, y_pred, *, groups=None, n_boot: int = 1000, seed: int = 0) -> PairScores:
    """Accuracy and macro F1 with bootstrap CIs (by patient when ``groups`` is given)."""
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    kw = {"groups": groups, "n_boot": n_boot, "seed": seed}
    return PairScores(
        bootstrap_interval(y_true, y_pred, accuracy, **kw),
        bootstrap_interval(y_true, y_pred, macro_f1, **kw),
        len(y_true),
    )
