import numpy as np

from kerassev.models.detection.matcher import IGNORE, NEGATIVE, POSITIVE, Matcher, box_iou, sample


def _np_iou(a, b):
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            ih = max(0, min(p[2], q[2]) - max(p[0], q[0]))
            iw = max(0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = ih * iw
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            out[i, j] = inter / union
    return out


def test_box_iou_matches_numpy():
    rng = np.random.default_rng(1)
    yx = rng.uniform(0, 50, (2, 30, 2))
    boxes = np.concatenate([yx, yx + rng.uniform(1, 40, (2, 30, 2))], -1).astype(np.float32)
    got = box_iou(boxes[0], boxes[1]).numpy()
    np.testing.assert_allclose(got, _np_iou(boxes[0], boxes[1]), atol=1e-6)


def test_matcher_thresholds_low_quality_and_padding():
    gt = np.array([[[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 0, 0]]], np.float32)
    valid = np.array([[True, True, False]])
    boxes = np.array(
        [
            [
                [0, 0, 10, 10],  # IoU 1 with gt 0 -> positive
                [0, 0, 10, 14],  # IoU 0.71 -> positive
                [0, 0, 10, 20],  # IoU 0.5 -> ignore
                [100, 100, 110, 110],  # IoU 0 -> negative
                [50, 50, 60, 75],  # IoU 0.4: gt 1's best box -> positive (low quality)
            ]
        ],
        np.float32,
    )
    matched, labels = Matcher(0.7, 0.3).match(boxes, gt, valid)
    assert labels.numpy().tolist() == [[POSITIVE, POSITIVE, IGNORE, NEGATIVE, POSITIVE]]
    assert matched.numpy()[0, [0, 1, 4]].tolist() == [0, 0, 1]
    _, strict = Matcher(0.7, 0.3, allow_low_quality_matches=False).match(boxes, gt, valid)
    assert strict.numpy()[0, 4] == IGNORE
    _, masked = Matcher(0.7, 0.3).match(boxes, gt, valid, box_valid=[[True] * 4 + [False]])
    assert masked.numpy()[0, 4] == IGNORE


def test_matcher_without_ground_truth_makes_everything_negative():
    boxes = np.array([[[0, 0, 10, 10], [5, 5, 9, 9]]], np.float32)
    _, labels = Matcher().match(boxes, np.zeros((1, 2, 4), np.float32), np.zeros((1, 2), bool))
    assert labels.numpy().tolist() == [[NEGATIVE, NEGATIVE]]


def test_sampler_balances_and_pads():
    labels = np.full((2, 100), NEGATIVE, np.int32)
    labels[0, :40] = POSITIVE  # plenty of positives: capped at 25% of 32
    labels[1, :3] = POSITIVE  # few positives, then 9 negatives only
    labels[1, 12:] = IGNORE
    idx, ok = sample(labels, 32, 0.25, seed=3)
    idx, ok = idx.numpy(), ok.numpy()
    picked0 = labels[0, idx[0][ok[0]]]
    assert ok[0].all() and (picked0 == POSITIVE).sum() == 8 and (picked0 == NEGATIVE).sum() == 24
    assert len(set(idx[0].tolist())) == 32
    assert ok[1].sum() == 12 and ok[1][:12].all()  # valid entries first
    picked1 = labels[1, idx[1][:12]]
    assert picked1[:3].tolist() == [POSITIVE] * 3 and (picked1[3:] == NEGATIVE).all()
