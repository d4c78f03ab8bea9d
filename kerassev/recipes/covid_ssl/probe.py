"""Linear-probe evidence that self-supervision learned something (beyond the paper; as
solo-learn's linear evaluation): logistic regression on frozen, pooled backbone features of the
training split, scored on the test split, for each method and for a random-init backbone of the
same architecture. The L2 strength is chosen by cross-validation on the training split only
(issue 18 fault 6; grouped by patient where patients repeat), and each encoder is compared with
the control by a paired bootstrap over the same test images (:func:`probe_vs_control`)."""

from __future__ import annotations

import keras
import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from kerassev.models.batch_norm import precise_batch_norm
from kerassev.stats.classification import paired_auc_test


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


#: Inverse L2 strengths the probe's cross-validation chooses from (1e-4 .. 10).
PROBE_CS = tuple(10.0 ** np.arange(-4, 2))


# One BLAS/OpenMP thread: on two busy cores a second one only spin-waits (as paper 03's probe,
# kerassev.evaluation.linear_probe): a smoke-sized probe (400 x 64 features) took 12-14 s wall
# under load with the default threads, 0.3-0.8 s with one (issue 23).
@threadpool_limits.wrap(limits=1)
def linear_probe(
    train_x, train_y, test_x, *, groups=None, folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Test-set class probabilities of an L2 logistic regression on standardised features, and
    the ``C`` it used: chosen among :data:`PROBE_CS` by ``folds``-fold cross-validation (log
    loss) on the training rows only, folds grouped by ``groups`` (patient ids) when given."""
    y = np.asarray(train_y)
    if groups is not None and len(set(groups)) < len(groups):  # patients repeat: keep them whole
        cv = list(GroupKFold(folds).split(train_x, y, groups))
    else:
        per_class = np.bincount(y)[np.unique(y)].min()
        cv = StratifiedKFold(min(folds, max(2, per_class)), shuffle=True, random_state=seed)
    search = LogisticRegressionCV(
        Cs=list(PROBE_CS),
        l1_ratios=(0.0,),  # plain L2 (sklearn >= 1.8 wants it explicit)
        cv=cv,
        scoring="neg_log_loss",
        max_iter=2000,
        random_state=seed,
        use_legacy_attributes=False,
    )
    clf = make_pipeline(StandardScaler(), search)
    clf.fit(train_x, y)
    probs = np.zeros((len(test_x), int(np.max(y)) + 1))
    probs[:, clf.classes_] = clf.predict_proba(test_x)
    return probs, float(np.ravel(search.C_)[0])


def probe_vs_control(labels, probs, control_probs, *, positive: int, n_resamples: int, seed: int):
    """Paired bootstrap over the same test images of ``AUC(probe) - AUC(control)``: the
    difference, its 95 % interval and two-sided p (``stats.classification.paired_auc_test``)."""
    return paired_auc_test(
        labels, probs, control_probs, positive=positive, n_resamples=n_resamples, seed=seed
    )
