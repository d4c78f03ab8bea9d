"""Issue 19 fault 5: masks are pasted as probabilities at the slice's resolution and thresholded
there, not binarised at model resolution and then upsampled (every path: the recipe's
evaluation, ct_affinity's and `kerassev segment` go through ``evaluate.predictor``)."""

import numpy as np
import tensorflow as tf

from kerassev.models.detection.postprocess import paste_masks
from kerassev.recipes.ct_lesions.data import unletterbox
from kerassev.recipes.ct_lesions.evaluate import predictor, slice_masks

SIZE, SLICE = 64, (128, 128)  # model input 64 px, the slice 2x larger


def _thin_lesion():
    """A 28x28 probability mask: a one-row line at 0.6 on 0.3. In a 14-px box (model pixels)
    each pixel averages two mask rows -> 0.45, below 0.5; in the 28-px slice box it is 0.6."""
    probs = np.full((28, 28), 0.3, np.float32)
    probs[13] = 0.6
    return probs


def _fake_call(probs, box):
    """What MaskRCNN.call returns for one detection (its "masks" binarised at model size)."""
    roi = tf.constant(probs[None, None])
    boxes = tf.constant([[box]], tf.float32)
    full = paste_masks(roi, boxes, (SIZE, SIZE))
    out = {
        "boxes": boxes,
        "scores": tf.constant([[0.9]]),
        "labels": tf.constant([[1]]),
        "num_detections": tf.constant([1]),
        "roi_masks": roi,
        "masks": tf.cast(full >= 0.5, tf.uint8),
    }
    return lambda images: out


def test_thin_lesion_survives_at_slice_resolution():
    probs, box = _thin_lesion(), [20.0, 20.0, 34.0, 34.0]  # 14 px at 64 -> 28 px at 128
    call = _fake_call(probs, box)
    old = unletterbox(call(None)["masks"][0].numpy(), SLICE)  # binarise at 64, then upsample
    assert old.sum() == 0  # the line was lost at model resolution
    pred = predictor(call, SIZE)(np.zeros(SLICE, np.float32))
    np.testing.assert_allclose(pred.boxes, [[40, 40, 68, 68]])
    got = pred.masks[0]
    assert got.sum() == 28 and got[53, 40:68].all()  # mask row 13 is slice row 40 + 13
    # exactly the soft paste at slice resolution, thresholded there
    direct = paste_masks(probs[None, None], pred.boxes[None], SLICE).numpy()[0, 0] >= 0.5
    np.testing.assert_array_equal(got, direct)


def test_edges_follow_the_slice_grid_and_the_threshold():
    # A left-to-right probability ramp: the 0.5 contour sits between model pixels, so the
    # binarise-then-upsample edge is off the soft one at the slice's resolution.
    ramp = np.tile(np.linspace(0.0, 1.0, 28, dtype=np.float32), (28, 1))
    box = [10.0, 10.0, 31.0, 31.0]  # 21 model px: a mask pixel is not a whole model pixel
    call = _fake_call(ramp, box)
    old = unletterbox(call(None)["masks"][0].numpy(), SLICE)
    pred = predictor(call, SIZE)(np.zeros(SLICE, np.float32))
    assert (old != pred.masks[0]).any()
    soft = paste_masks(ramp[None, None], pred.boxes[None], SLICE).numpy()[0, 0]
    np.testing.assert_array_equal(pred.masks[0], soft >= 0.5)
    # the mask threshold is applied at the slice's resolution too
    strict = predictor(call, SIZE, mask_threshold=0.8)(np.zeros(SLICE, np.float32))
    np.testing.assert_array_equal(strict.masks[0], soft >= 0.8)
    assert strict.masks[0].sum() < pred.masks[0].sum()


def test_slice_masks_chunks_and_empty():
    rng = np.random.default_rng(0)
    probs = rng.uniform(size=(5, 28, 28)).astype(np.float32)
    boxes = np.array([[i * 10, i * 5, i * 10 + 30, i * 5 + 50] for i in range(5)], np.float32)
    one = slice_masks(probs, boxes, (90, 120), chunk=16)
    np.testing.assert_array_equal(slice_masks(probs, boxes, (90, 120), chunk=2), one)
    assert one.shape == (5, 90, 120) and one.dtype == bool
    assert slice_masks(np.zeros((0, 28, 28)), np.zeros((0, 4)), (90, 120)).shape == (0, 90, 120)
