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


def frozen_features(backbone: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Pooled features of ``x`` (already preprocessed, at the backbone's input size)."""
    size = backbone.input_shape[1:3]
    if None not in size and tuple(x.shape[1:3]) != tuple(size):
        x = np.asarray(keras.ops.image.resize(x, size))
    return backbone.predict(x, batch_size=batch_size, verbose=0)


def linear_probe(train_x, train_y, test_x, *, seed: int = 0) -> np.ndarray:
    """Test-set class probabilities of an L2 logistic regression on standardised features."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(train_x, train_y)
    probs = np.zeros((len(test_x), int(np.max(train_y)) + 1))
    probs[:, clf.classes_] = clf.predict_proba(test_x)
    return probs
