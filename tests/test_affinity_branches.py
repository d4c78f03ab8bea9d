"""Paper 05's classification branch (copied, never trained) and mask-features branch."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerassev.models.detection.affinity_branches import (
    ClassificationBranch,
    DetectionWeightCopy,
    MaskFeatures,
)
from kerassev.models.detection.heads import BoxHead, BoxPredictor


class TwoBranches(keras.Model):
    """A detection branch and a classification branch on the same 7x7 RoI features."""

    def __init__(self):
        super().__init__()
        self.box_head = BoxHead(16)
        self.box_predictor = BoxPredictor(1)
        self.classification_branch = ClassificationBranch(1, 16)
        rois = tf.zeros((1, 2, 7, 7, 4))
        self.box_predictor(self.box_head(rois))
        self.classification_branch(rois)

    def call(self, rois):
        det_logits, det_deltas = self.box_predictor(self.box_head(rois))
        cls_logits, cls_deltas = self.classification_branch(rois)
        return det_logits + tf.reduce_sum(det_deltas, -1), cls_logits + tf.reduce_sum(
            cls_deltas, -1
        )


def _values(layer):
    return [w.numpy().copy() for w in layer.weights]


def test_copy_on_improvement_only():
    model = TwoBranches()
    source = _values(model.box_head) + _values(model.box_predictor)
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(source, _values(model.classification_branch), strict=True)
    )
    callback = DetectionWeightCopy(monitor="loss")
    callback.set_model(model)
    callback.on_epoch_end(0, {"loss": 2.0})
    for a, b in zip(source, _values(model.classification_branch), strict=True):
        np.testing.assert_array_equal(a, b)
    model.box_head.fc6.kernel.assign_add(tf.ones_like(model.box_head.fc6.kernel))
    callback.on_epoch_end(1, {"loss": 3.0})  # worse: no copy
    assert callback.copies == 1
    np.testing.assert_array_equal(model.classification_branch.head.fc6.kernel, source[0])
    callback.on_epoch_end(2, {"loss": 1.0})  # better: copied again
    assert callback.copies == 2
    np.testing.assert_array_equal(
        model.classification_branch.head.fc6.kernel, model.box_head.fc6.kernel
    )
    with pytest.raises(KeyError, match="segmentation_loss"):
        DetectionWeightCopy().on_epoch_end(0, {"loss": 1.0})


def test_classification_branch_is_not_moved_by_an_optimiser_step():
    model = TwoBranches()
    before = _values(model.classification_branch)
    det_before = _values(model.box_head)
    optimizer = keras.optimizers.Adam(0.1)
    rois = tf.random.normal((1, 2, 7, 7, 4))
    with tf.GradientTape() as tape:
        det, cls = model(rois)
        loss = tf.reduce_sum(det**2) + tf.reduce_sum(cls**2)  # the branch is in the loss
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply(grads, model.trainable_variables)
    for a, b in zip(before, _values(model.classification_branch), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(det_before[0], model.box_head.fc6.kernel.numpy())


def test_mask_features_shape():
    features = MaskFeatures(channels=12)
    out = features(tf.zeros((2, 8, 14, 14, 4)))
    assert tuple(out.shape) == (2, 8, 28, 28, 12)
