import tensorflow as tf

from kerassev.models.detection.heads import BoxHead, BoxPredictor, MaskHead, MaskPredictor


def test_box_branch_shapes_keep_leading_dims():
    rois = tf.zeros((2, 5, 7, 7, 16))
    rep = BoxHead(64)(rois)
    assert rep.shape == (2, 5, 64)
    logits, deltas = BoxPredictor(num_classes=2)(rep)
    assert logits.shape == (2, 5, 3) and deltas.shape == (2, 5, 3, 4)


def test_mask_branch_gives_28x28_per_class():
    rois = tf.random.normal((2, 3, 14, 14, 16))
    feats = MaskHead(channels=16)(rois)
    assert feats.shape == (2, 3, 14, 14, 16)
    assert MaskPredictor(num_classes=2, channels=16)(feats).shape == (2, 3, 28, 28, 3)


def test_heads_reusable_as_separate_layers_with_config():
    head = MaskHead(channels=8, num_convs=2, name="copy")
    clone = MaskHead.from_config(head.get_config())
    assert clone.num_convs == 2 and clone.channels == 8
