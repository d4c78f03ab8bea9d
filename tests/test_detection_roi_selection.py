"""RoI batch selection (paper 05 §3) on a hand-made case."""

import numpy as np

from kerassev.models.detection.roi_selection import (
    RoISelectionConfig,
    classification_rois,
    select_roi_batch,
)

BOXES = np.array(
    [
        [0, 0, 10, 10],  # 0: best kept
        [1, 1, 11, 11],  # 1: IoU 0.68 with 0 -> suppressed
        [20, 20, 30, 30],  # 2: low score, still kept
        [40, 40, 40.001, 50],  # 3: best score but thinner than min_size -> dropped
        [50, 50, 60, 60],  # 4: padding (invalid) -> dropped
        [0, 7, 10, 17],  # 5: IoU 0.18 with 0 -> kept (under 0.25)
    ],
    np.float32,
)
SCORES = np.array([0.9, 0.8, 0.1, 0.95, 0.5, 0.3], np.float32)
VALID = np.array([True, True, True, True, False, True])


def test_keeps_low_scores_drops_overlap_size_and_pads_by_repeating():
    boxes = np.stack([BOXES, BOXES])
    scores = np.stack([SCORES, SCORES])
    valid = np.stack([VALID, np.zeros_like(VALID)])  # image 1: nothing valid
    out_boxes, out_scores, idx, num = select_roi_batch(boxes, scores, valid)
    assert idx.shape == (2, 8) and out_boxes.shape == (2, 8, 4)
    np.testing.assert_array_equal(num, [3, 0])
    np.testing.assert_array_equal(idx[0], [0, 5, 2, 0, 5, 2, 0, 5])  # ranked, then repeated
    np.testing.assert_allclose(out_scores[0], SCORES[[0, 5, 2, 0, 5, 2, 0, 5]])
    np.testing.assert_allclose(out_boxes[0], BOXES[[0, 5, 2, 0, 5, 2, 0, 5]])
    np.testing.assert_array_equal(idx[1], np.zeros(8))  # nothing survived: RoI 0 repeated


def test_nms_threshold_and_batch_size_are_configurable():
    config = RoISelectionConfig(batch_size=2, nms_threshold=0.9)
    _, _, idx, num = select_roi_batch(BOXES[None], SCORES[None], VALID[None], config)
    np.testing.assert_array_equal(idx[0], [0, 1])  # at 0.9 RoI 1 overlaps too little to drop
    assert int(num[0]) == 2


def test_classification_rois_decode_and_score_by_foreground():
    proposals = BOXES[None, [0, 2, 5]]
    logits = np.array([[[0.0, 2.0], [0.0, -1.0], [0.0, 0.5]]], np.float32)  # bg, lesion
    deltas = np.zeros((1, 3, 2, 4), np.float32)
    boxes, scores, idx, num = classification_rois(
        logits, deltas, proposals, np.ones((1, 3), bool), (64, 64), RoISelectionConfig(4)
    )
    np.testing.assert_array_equal(idx[0], [0, 2, 1, 0])
    np.testing.assert_allclose(boxes[0, :3], proposals[0, [0, 2, 1]], atol=1e-4)
    np.testing.assert_allclose(scores[0, 0], 1 / (1 + np.exp(-2.0)), rtol=1e-5)
