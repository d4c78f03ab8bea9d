import numpy as np
import pytest

from kerassev.data.instances import boxes_of
from kerassev.evaluation.coco import (
    coco_ap,
    coco_detections,
    coco_ground_truth,
    per_image_ap,
    union_overlap,
)


def _two_instances():
    masks = np.zeros((2, 64, 64), bool)
    masks[0, 5:25, 5:30] = True
    masks[1, 40:60, 30:50] = True
    return masks


def _gt(negative=False):
    masks = _two_instances()
    images = [(1, "a.png", masks, np.array([1, 1]), boxes_of(masks))]
    if negative:
        images.append((2, "b.png", np.zeros((0, 64, 64), bool), np.zeros(0), np.zeros((0, 4))))
    return coco_ground_truth(images, ["lesion"])


def test_perfect_detections_score_one_and_none_score_zero():
    masks = _two_instances()
    dets = coco_detections(1, masks, boxes_of(masks), [0.9, 0.8], [1, 1])
    for kind in ("segm", "bbox"):
        assert coco_ap(_gt(), dets, kind) == {"AP": 1.0, "AP50": 1.0, "AP75": 1.0}
        assert coco_ap(_gt(), [], kind)["AP"] == 0.0


def test_half_recall_and_iou_thresholds():
    masks = _two_instances()
    one = coco_detections(1, masks[:1], boxes_of(masks[:1]), [0.9], [1])
    ap = coco_ap(_gt(), one)
    assert ap["AP50"] == pytest.approx(51 / 101, abs=1e-6)  # precision 1 up to recall 0.5
    # A mask covering 60% of the instance counts at IoU 0.5 but not at 0.75.
    partial = masks.copy()
    partial[0, 5:25, 20:30] = False
    partial[1, 40:52, 30:50] = True
    partial[1, 52:60] = False
    dets = coco_detections(1, partial, boxes_of(partial), [0.9, 0.8], [1, 1])
    ap = coco_ap(_gt(), dets)
    assert ap["AP50"] == 1.0 and ap["AP75"] == 0.0


def test_negative_image_rule():
    masks = _two_instances()
    good = coco_detections(1, masks, boxes_of(masks), [0.9, 0.8], [1, 1])
    fp = coco_detections(2, masks[:1], boxes_of(masks[:1]), [0.7], [1])
    mean, per = per_image_ap(_gt(negative=True), good)
    assert per[2]["AP"] == 1.0 and mean["AP"] == 1.0
    mean, per = per_image_ap(_gt(negative=True), good + fp)
    assert per[2]["AP"] == 0.0 and mean["AP"] == 0.5
    mean, per = per_image_ap(_gt(negative=True), good + fp, negative_rule=False)
    assert 2 not in per and mean["AP"] == 1.0


def test_union_overlap():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :5] = True
    b[:, :4] = True
    dice, iou = union_overlap(b, a)
    assert dice == pytest.approx(80 / 90) and iou == pytest.approx(0.8)
    assert union_overlap(np.zeros((3, 3)), np.zeros((3, 3))) == (1.0, 1.0)
