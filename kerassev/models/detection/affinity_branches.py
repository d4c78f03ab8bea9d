"""The two RoI branches paper 05 adds to Mask R-CNN (§3, Fig. 1-2, after SSM [TS20c]).

- :class:`ClassificationBranch`: shaped like the detection branch (:class:`BoxHead` +
  :class:`BoxPredictor`), never trained by the optimiser: :class:`DetectionWeightCopy` copies
  the detection branch's weights into it whenever the detection + segmentation loss improves, so
  it scores and boxes every RoI as the best detector so far did, for RoI batch selection;
- :class:`MaskFeatures`: shaped like the mask branch up to its 28x28 features (four 3x3 convs,
  2x2 transposed conv + ReLU, no logits), giving the ``B x 28 x 28 x C`` lesion-mask features
  (C = 256 in the paper) the affinity layer reads; trained by the image loss.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from kerassev.models.detection.heads import BoxHead, BoxPredictor, MaskHead, _flat, _restore


class ClassificationBranch(keras.layers.Layer):
    """``(class logits, deltas)`` of RoI features, as the detection branch; not trainable."""

    def __init__(self, num_classes: int, representation_size: int = 1024, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.representation_size = num_classes, representation_size
        self.head = BoxHead(representation_size, name="cls_head")
        self.predictor = BoxPredictor(num_classes, name="cls_predictor")
        self.trainable = False  # updated only by DetectionWeightCopy

    def call(self, rois):
        return self.predictor(self.head(rois))

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "representation_size": self.representation_size,
        }


class MaskFeatures(keras.layers.Layer):
    """14x14 RoI features ``(..., 14, 14, C_in)`` -> lesion-mask features ``(..., 28, 28, C)``."""

    def __init__(self, channels: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.head = MaskHead(channels, name="features_head")
        self.deconv = layers.Conv2DTranspose(
            channels, 2, strides=2, activation="relu", kernel_initializer="he_normal", name="up"
        )

    def call(self, rois):
        x, lead = _flat(self.head(rois))
        return _restore(self.deconv(x), lead)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def copy_branch_weights(sources, targets) -> None:
    """Assign every variable of the ``sources`` layers to the matching one of ``targets``."""
    src = [v for layer in sources for v in layer.weights]
    dst = [v for layer in targets for v in layer.weights]
    if len(src) != len(dst):
        raise ValueError(f"cannot copy {len(src)} variables into {len(dst)}: branches differ")
    for s, d in zip(src, dst, strict=True):
        if tuple(s.shape) != tuple(d.shape):
            raise ValueError(f"cannot copy {s.path} {s.shape} into {d.path} {d.shape}")
        d.assign(s)


class DetectionWeightCopy(keras.callbacks.Callback):
    """Copy ``model.<source>`` weights into ``model.<target>`` when ``monitor`` improves (§3).

    Checked at each epoch end (``frequency="epoch"``) or after each batch (``"batch"``; Keras
    reports the epoch's running mean there). ``copies`` counts the copies made. The best value is
    not checkpointed: after a resume the first check copies again, which is harmless.
    """

    def __init__(
        self,
        monitor: str = "segmentation_loss",
        sources=("box_head", "box_predictor"),
        target: str = "classification_branch",
        frequency: str = "epoch",
    ):
        super().__init__()
        if frequency not in ("epoch", "batch"):
            raise ValueError(f"frequency must be 'epoch' or 'batch', not {frequency!r}")
        self.monitor, self.sources, self.target = monitor, tuple(sources), target
        self.frequency = frequency
        self.best = math.inf
        self.copies = 0

    def _check(self, logs):
        if not logs or self.monitor not in logs:
            raise KeyError(f"DetectionWeightCopy: {self.monitor!r} is not in the logs {logs}")
        value = float(logs[self.monitor])
        if value < self.best:
            self.best = value
            target = getattr(self.model, self.target)
            copy_branch_weights([getattr(self.model, s) for s in self.sources], [target])
            self.copies += 1

    def on_train_batch_end(self, batch, logs=None):
        if self.frequency == "batch":
            self._check(logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.frequency == "epoch":
            self._check(logs)
