import numpy as np
import tensorflow as tf
from detection_nms_reference import nms

from kerassev.models.detection.postprocess import DetectionConfig, detect, paste_masks


def test_detect_equals_per_class_numpy_nms():
    rng = np.random.default_rng(2)
    r, k = 60, 2
    yx = rng.uniform(0, 80, (r, 2))
    proposals = np.concatenate([yx, yx + rng.uniform(10, 40, (r, 2))], 1).astype(np.float32)
    logits = rng.standard_normal((1, r, k + 1)).astype(np.float32) * 2
    deltas = np.zeros((1, r, k + 1, 4), np.float32)
    valid = np.ones((1, r), bool)
    valid[0, -5:] = False  # padding proposals never become detections
    cfg = DetectionConfig(score_threshold=0.2, nms_threshold=0.5, detections_per_image=25)
    boxes, scores, labels, num = detect(logits, deltas, proposals[None], valid, (128, 128), cfg)
    probs = tf.nn.softmax(logits, -1).numpy()[0]
    cand = []
    for c in range(1, k + 1):
        s = np.where(valid[0], probs[:, c], 0.0)
        ok = np.nonzero(s > 0.2)[0]
        cand += [(s[i], c, i) for i in ok[nms(proposals[ok], s[ok], 0.5)]]
    cand.sort(key=lambda t: -t[0])
    cand = cand[:25]
    n = int(num[0])
    assert n == len(cand)
    np.testing.assert_allclose(scores[0, :n], [t[0] for t in cand], rtol=1e-5)
    assert labels.numpy()[0, :n].tolist() == [t[1] for t in cand]
    np.testing.assert_allclose(boxes[0, :n], proposals[[t[2] for t in cand]], atol=1e-4)


def test_paste_masks_fills_the_box():
    boxes = tf.constant([[[8.0, 16.0, 40.0, 48.0]]])
    full = paste_masks(tf.ones((1, 1, 28, 28)), boxes, (64, 64)).numpy()[0, 0] >= 0.5
    expected = np.zeros((64, 64), bool)
    expected[8:40, 16:48] = True
    assert (full == expected).all()
    # A left-half mask pastes into the left half of the box.
    half = np.zeros((1, 1, 28, 28), np.float32)
    half[..., :14] = 1
    got = paste_masks(tf.constant(half), boxes, (64, 64)).numpy()[0, 0] >= 0.5
    expected[:, 32:] = False
    assert (got == expected).all()
