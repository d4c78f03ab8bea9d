import math

import numpy as np
import tensorflow as tf

from kerassev.models.detection.roi_align import (
    MultiLevelRoIAlign,
    fpn_level,
    gather_crop_and_resize,
)


def _bilinear(f, y, x):
    """torchvision's roi_align bilinear_interpolate (CPU kernel), for one point of ``f (H, W, C)``."""
    h, w = f.shape[:2]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(f.shape[2])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    return hy * hx * f[y0, x0] + hy * lx * f[y0, x1] + ly * hx * f[y1, x0] + ly * lx * f[y1, x1]


def _roi_align_np(f, box, scale, p, s):
    """Plain RoIAlign (aligned=True) of one ``[y1, x1, y2, x2]`` box: loops over bins and samples."""
    y1, x1, y2, x2 = (v * scale - 0.5 for v in box)
    bh, bw = (y2 - y1) / p, (x2 - x1) / p
    out = np.zeros((p, p, f.shape[2]))
    for i in range(p):
        for j in range(p):
            acc = 0.0
            for a in range(s):
                for b in range(s):
                    y = y1 + i * bh + (a + 0.5) * bh / s
                    x = x1 + j * bw + (b + 0.5) * bw / s
                    acc = acc + _bilinear(f, y, x)
            out[i, j] = acc / (s * s)
    return out


def test_level_rule():
    # sqrt(wh) = 224 -> P4; 112 -> P3; 448 -> P5; tiny -> P2; huge -> P5 (clipped)
    boxes = tf.constant(
        [
            [0, 0, 224, 224],
            [0, 0, 112, 112],
            [0, 0, 448, 448],
            [0, 0, 8, 8],
            [0, 0, 2000, 2000],
            [0, 0, 111, 111],
        ],
        tf.float32,
    )
    assert fpn_level(boxes).numpy().tolist() == [4, 3, 5, 2, 5, 2]
    k = math.floor(4 + math.log2(math.sqrt(50 * 300) / 224))
    assert fpn_level(tf.constant([[0, 0, 50, 300]], tf.float32)).numpy()[0] == k


def test_matches_numpy_reference_on_every_level():
    rng = np.random.default_rng(0)
    size, channels = 512, 3
    strides = (4, 8, 16, 32)
    feats = [
        rng.standard_normal((1, size // s, size // s, channels)).astype(np.float32) for s in strides
    ]
    # Boxes inside the image of every size (all four levels), some touching the border.
    boxes = np.array(
        [
            [
                [10, 12, 30, 40],
                [0, 0, 100, 90],
                [5.5, 100.2, 250, 511.9],
                [40, 40, 256, 256],
                [100, 3, 101.5, 9],
                [0, 0, 512, 512],
                [60.3, 70.7, 180.1, 150.9],
            ]
        ],
        np.float32,
    )
    levels = fpn_level(tf.constant(boxes)).numpy()[0]
    assert set(levels.tolist()) == {2, 3, 4, 5}
    for p, xla_friendly in ((7, False), (14, False), (7, True), (14, True)):
        layer = MultiLevelRoIAlign(p, 2, xla_friendly=xla_friendly)
        got = layer(feats, tf.constant(boxes)).numpy()[0]
        for r, box in enumerate(boxes[0]):
            lvl = levels[r] - 2
            ref = _roi_align_np(feats[lvl][0], box, 1.0 / strides[lvl], p, 2)
            err = np.max(np.abs(got[r] - ref))
            assert err <= 1e-5, (p, xla_friendly, r, err)


def test_gather_crop_and_resize_equals_tf_with_extrapolation():
    rng = np.random.default_rng(3)
    image = tf.constant(rng.standard_normal((2, 9, 11, 3)), tf.float32)
    boxes = tf.constant([[-0.2, 0.1, 0.7, 1.3], [0.0, 0.0, 1.0, 1.0], [0.3, 0.9, 0.1, 0.2]])
    index = tf.constant([1, 0, 1])
    want = tf.image.crop_and_resize(image, boxes, index, (5, 6))
    np.testing.assert_allclose(gather_crop_and_resize(image, boxes, index, (5, 6)), want, atol=1e-5)


def test_gradient_reaches_the_features():
    feats = [tf.Variable(tf.random.normal((1, 64 // s, 64 // s, 2))) for s in (4, 8, 16, 32)]
    with tf.GradientTape() as tape:
        out = MultiLevelRoIAlign(7, 2)(feats, tf.constant([[[4.0, 4.0, 40.0, 30.0]]]))
        loss = tf.reduce_sum(out)
    grads = tape.gradient(loss, feats)
    assert float(tf.reduce_sum(tf.abs(grads[0]))) > 0  # a small box pools from P2
