import numpy as np
import tensorflow as tf

from kerassev.models.detection.losses import (
    mask_loss,
    mask_targets,
    rcnn_loss,
    rpn_loss,
    smooth_l1,
)


def _bce(y, z):
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def test_smooth_l1_beta():
    x = tf.constant([0.05, -0.5, 2.0])
    b = 1 / 9
    np.testing.assert_allclose(
        smooth_l1(x).numpy(), [0.5 * 0.05**2 / b, 0.5 - b / 2, 2 - b / 2], rtol=1e-6
    )


def test_rpn_loss_ignores_padding_and_normalises_by_samples():
    logits = np.array([[2.0, -1.0, 0.5, 9.0]], np.float32)
    labels = np.array([[1, 0, 1, 1]], np.int32)
    valid = np.array([[True, True, True, False]])
    deltas = np.zeros((1, 4, 4), np.float32)
    targets = np.full((1, 4, 4), 0.05, np.float32)
    obj, box = rpn_loss(logits, deltas, labels, targets, valid)
    ref_obj = (_bce(1, 2.0) + _bce(0, -1.0) + _bce(1, 0.5)) / 3
    np.testing.assert_allclose(float(obj), ref_obj, rtol=1e-5)
    per = 4 * 0.5 * 0.05**2 * 9
    np.testing.assert_allclose(float(box), 2 * per / 3, rtol=1e-5)  # two valid positives


def test_rcnn_loss_uses_the_true_class_deltas():
    logits = np.zeros((1, 2, 3), np.float32)
    deltas = np.zeros((1, 2, 3, 4), np.float32)
    deltas[0, 0, 2] = 1.0  # class 2's deltas of RoI 0 (positive, class 2)
    deltas[0, 0, 1] = 99.0  # another class: ignored
    labels = np.array([[2, 0]], np.int32)
    cls, box = rcnn_loss(logits, deltas, labels, np.zeros((1, 2, 4), np.float32), [[True, True]])
    np.testing.assert_allclose(float(cls), np.log(3), rtol=1e-5)
    np.testing.assert_allclose(float(box), 4 * (1 - 1 / 18) / 2, rtol=1e-5)


def test_mask_loss_only_positive_rois_and_own_class():
    logits = np.zeros((1, 2, 4, 4, 3), np.float32)
    logits[0, 0, ..., 1] = 3.0
    logits[0, 0, ..., 2] = -50.0  # other class: no effect
    logits[0, 1] = 100.0  # negative RoI: no effect
    targets = np.ones((1, 2, 4, 4), np.float32)
    loss = mask_loss(logits, np.array([[1, 0]]), targets, [[True, True]])
    np.testing.assert_allclose(float(loss), _bce(1, 3.0), rtol=1e-5)


def test_mask_targets_crop_the_matched_instance():
    masks = np.zeros((1, 2, 64, 64), np.uint8)
    masks[0, 1, 16:48, 16:32] = 1  # instance 1: left half of the box below
    t = mask_targets(masks, tf.constant([[1]]), tf.constant([[[16.0, 16.0, 48.0, 48.0]]]), 28)
    t = t.numpy()[0, 0]
    assert t[:, :14].all() and not t[:, 14:].any()
