"""Linear-probe evidence that self-supervision learned something (beyond the paper; as
solo-learn's linear evaluation): logistic regression on frozen, pooled backbone features of the
training split, scored on the test split, for each method and for a random-init backbone of the
same architecture."""

from __future__ import annotations

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kerassev.models.batch_norm import precise_batch_norm


def frozen_features(
    backbone: keras.Model, x: np.ndarray, *, bn_images: np.ndarray | None, batch_size: int = 64
) -> np.ndarray:
    """Pooled features of ``x`` (already preprocessed, at the backbone's input size).

    ``bn_images`` (the probe's training images): every BN layer's statistics are re-estimated
    on them first (precise BN, :func:`~kerassev.models.batch_norm.precise_batch_norm`; issue 18
    fault 1), in place, for SSL encoders and the random-init control alike. None keeps the
    moving statistics (distributed weights, e.g. ImageNet's, which were trained with theirs).
    """
    size = backbone.input_shape[1:3]

    def fit(a):
        if None not in size and tuple(a.shape[1:3]) != tuple(size):
            return np.asarray(keras.ops.image.resize(a, size))
        return a

    if bn_images is not None:
        precise_batch_norm(backbone, fit(bn_images), batch_size=batch_size)
    return backbone.predict(fit(x), batch_size=batch_size, verbose=0)


def linear_probe(train_x, train_y, test_x, *, seed: int = 0) -> np.ndarray:
    """Test-set class probabilities of an L2 logistic regression on standardised features."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(train_x, train_y)
    probs = np.zeros((len(test_x), int(np.max(train_y)) + 1))
    probs[:, clf.classes_] = clf.predict_proba(test_x)
    return probs
