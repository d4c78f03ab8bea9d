"""Online k-NN monitor: is self-supervision learning, epoch by epoch, before any fine-tuning?

As solo-learn's and lightly's online k-NN (weighted k-NN of Wu et al. 2018, InstDisc §3.4:
cosine similarity, k = 20, votes weighted ``exp(s / 0.07)``): at the end of every SSL epoch the
backbone's pooled features of a small *labelled split of the training images* (never the test
split) are classified leave-one-out by their ``k`` nearest neighbours among the others. The
accuracy goes into the epoch logs as ``knn_acc`` (History, CSVLogger, TensorBoard: the callback
must come before the loggers). Features are read with precise BN statistics of the monitor
images (the moving ones lag the weights in short runs, issue 18 fault 1), and the moving
statistics are put back afterwards, so the monitor does not change training.
"""

from __future__ import annotations

import keras
import numpy as np

from kerassev.models.batch_norm import precise_batch_norm

__all__ = ["KNNMonitor", "knn_accuracy"]


def knn_accuracy(features, labels, *, k: int = 20, temperature: float = 0.07) -> float:
    """Leave-one-out weighted k-NN accuracy (cosine) of ``features`` (N, d) with ``labels`` (N,)."""
    f = np.asarray(features, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    y = np.asarray(labels).astype(np.int64)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)  # leave one out
    k = min(k, len(f) - 1)
    nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    weights = np.exp(np.take_along_axis(sim, nn, axis=1) / temperature)
    votes = np.zeros((len(f), int(y.max()) + 1))
    np.add.at(votes, (np.repeat(np.arange(len(f)), k), y[nn].ravel()), weights.ravel())
    return float(np.mean(votes.argmax(1) == y))


class KNNMonitor(keras.callbacks.Callback):
    """Logs ``knn_acc`` of ``backbone`` on labelled training images ``x`` (network inputs at the
    backbone's size) every ``every`` epochs (NaN in between)."""

    def __init__(self, backbone, x, y, *, k: int = 20, batch_size: int = 64, every: int = 1):
        super().__init__()
        if len(x) != len(y) or len(x) < 2:
            raise ValueError(f"KNNMonitor: need >= 2 labelled images, got {len(x)} / {len(y)}")
        self.backbone, self.x, self.y = backbone, np.asarray(x), np.asarray(y)
        self.k, self.batch_size, self.every = k, batch_size, every

    def features(self) -> np.ndarray:
        bn = [
            layer
            for layer in self.backbone._flatten_layers()
            if isinstance(layer, keras.layers.BatchNormalization)
        ]
        saved = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in bn]
        try:
            precise_batch_norm(self.backbone, self.x, batch_size=self.batch_size)
            return self.backbone.predict(self.x, batch_size=self.batch_size, verbose=0)
        finally:
            for layer, (mean, var) in zip(bn, saved, strict=True):
                layer.moving_mean.assign(mean)
                layer.moving_variance.assign(var)

    def accuracy(self) -> float:
        """The backbone's k-NN accuracy now (also usable outside training: a control)."""
        return knn_accuracy(self.features(), self.y, k=self.k)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["knn_acc"] = self.accuracy() if (epoch + 1) % self.every == 0 else np.nan
