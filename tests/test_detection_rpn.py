import numpy as np
import tensorflow as tf
from detection_nms_reference import nms

from kerassev.models.detection.rpn import ProposalConfig, RPNHead, propose


def _random_boxes(rng, n, size):
    yx = rng.uniform(0, size - 20, (n, 2))
    hw = rng.uniform(8, 60, (n, 2))
    return np.clip(np.concatenate([yx, yx + hw], 1), 0, size).astype(np.float32)


def test_head_shapes_per_level():
    head = RPNHead(num_anchors=3, channels=16)
    feats = [tf.zeros((2, s, s, 16)) for s in (32, 16, 8)]
    logits, deltas = head(feats)
    assert [t.shape for t in logits] == [(2, 32 * 32 * 3), (2, 16 * 16 * 3), (2, 8 * 8 * 3)]
    assert [t.shape for t in deltas] == [(2, 32 * 32 * 3, 4), (2, 16 * 16 * 3, 4), (2, 192, 4)]


def test_proposals_equal_numpy_nms_per_level_then_top_k():
    rng = np.random.default_rng(0)
    size = 128
    anchors = [_random_boxes(rng, 300, size), _random_boxes(rng, 120, size)]
    logits = [rng.standard_normal((2, len(a))).astype(np.float32) for a in anchors]
    deltas = [np.zeros((2, len(a), 4), np.float32) for a in anchors]  # boxes = anchors
    cfg = ProposalConfig(pre_nms_top_n=150, post_nms_top_n=40, nms_threshold=0.5)
    boxes, scores, valid = (t.numpy() for t in propose(logits, deltas, anchors, (size, size), cfg))
    assert boxes.shape == (2, 40, 4) and valid.all()
    for b in range(2):
        cand_boxes, cand_scores = [], []
        for a, lg in zip(anchors, logits, strict=True):
            top = np.argsort(-lg[b], kind="stable")[:150]
            kept = top[nms(a[top], lg[b][top], 0.5)][:40]
            cand_boxes.append(a[kept])
            cand_scores.append(lg[b][kept])
        cb, cs = np.concatenate(cand_boxes), np.concatenate(cand_scores)
        best = np.argsort(-cs, kind="stable")[:40]
        np.testing.assert_allclose(scores[b], cs[best], rtol=1e-6)
        np.testing.assert_allclose(boxes[b], cb[best], atol=1e-4)


def test_padding_when_nms_leaves_too_few():
    # Ten copies of one box: NMS keeps one; the rest is padding marked invalid.
    anchors = [np.tile(np.array([[10, 10, 50, 50]], np.float32), (10, 1))]
    logits = [np.linspace(1, 0, 10, dtype=np.float32)[None]]
    deltas = [np.zeros((1, 10, 4), np.float32)]
    cfg = ProposalConfig(pre_nms_top_n=10, post_nms_top_n=5, nms_threshold=0.7)
    boxes, scores, valid = (t.numpy() for t in propose(logits, deltas, anchors, (64, 64), cfg))
    assert valid.tolist() == [[True, False, False, False, False]]
    np.testing.assert_allclose(boxes[0, 0], [10, 10, 50, 50])
