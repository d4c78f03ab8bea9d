import numpy as np
import pytest

from kerassev.models.detection.anchors import AnchorGenerator


def test_counts_per_level_for_a_256_image():
    gen = AnchorGenerator()
    levels = gen.level_anchors((256, 256))
    # (256 / stride)^2 cells x 3 ratios on P2..P6
    assert [len(a) for a in levels] == [64 * 64 * 3, 32 * 32 * 3, 16 * 16 * 3, 8 * 8 * 3, 4 * 4 * 3]
    assert gen.anchors((256, 256)).shape == (sum(len(a) for a in levels), 4)


def test_base_anchors_match_torchvision_rounding():
    # torchvision AnchorGenerator(((32,),), ((0.5, 1.0, 2.0),)).cell_anchors[0], as [y1, x1, y2, x2]
    expected = np.array([[-11, -23, 11, 23], [-16, -16, 16, 16], [-23, -11, 23, 11]], float)
    np.testing.assert_array_equal(AnchorGenerator().base_anchors(0), expected)


def test_positions_shift_by_stride_in_row_major_order():
    gen = AnchorGenerator(sizes=((32,), (64,)), aspect_ratios=(1.0,), strides=(4, 8))
    p2 = gen.level_anchors((16, 16))[0].reshape(4, 4, 1, 4)
    np.testing.assert_array_equal(p2[0, 0, 0], [-16, -16, 16, 16])
    np.testing.assert_array_equal(p2[0, 1, 0], [-16, -12, 16, 20])  # next column: x + 4
    np.testing.assert_array_equal(p2[2, 3, 0], [-8, -4, 24, 28])  # row 2, col 3
    centres = (p2[..., :2] + p2[..., 2:]) / 2
    rows = np.repeat(np.arange(4)[:, None] * 4, 4, axis=1)
    np.testing.assert_array_equal(centres[..., 0, 0], rows)  # y centre = row * stride
    # Aspect ratio is h / w: ratio 2 gives a tall box.
    tall = AnchorGenerator(aspect_ratios=(2.0,)).base_anchors(0)[0]
    assert tall[2] - tall[0] > tall[3] - tall[1]


def test_rejects_mismatched_levels():
    with pytest.raises(ValueError, match="levels"):
        AnchorGenerator(sizes=((32,),), strides=(4, 8))


def test_anchor_recall_counts_boxes_some_anchor_covers():
    from kerassev.models.detection.anchors import anchor_recall

    anchors = np.array([[0, 0, 10, 10], [0, 0, 40, 40]], float)
    boxes = np.array([[0, 0, 10, 10], [0, 0, 30, 30], [100, 100, 104, 104]], float)
    # exact match 1.0; 30x30 vs 40x40 -> IoU 0.5625; the far box overlaps nothing
    assert anchor_recall(boxes, anchors) == pytest.approx(2 / 3)
    assert anchor_recall(boxes, anchors, iou=0.6) == pytest.approx(1 / 3)
    assert np.isnan(anchor_recall(np.zeros((0, 4)), anchors))


def test_torchvision_anchors_miss_small_lesions_and_lesion_sized_ones_do_not():
    # Issue 19 fault 1: 12-px lesions at 256 px; torchvision's smallest anchor is 32 px.
    from kerassev.models.detection.anchors import anchor_recall, sizes_from_boxes

    rng = np.random.default_rng(0)
    y, x = rng.uniform(20, 230, (2, 200))
    side = rng.uniform(5, 25, 200)
    boxes = np.stack([y, x, y + side, x + side], axis=1)
    big = AnchorGenerator().anchors((256, 256))
    assert anchor_recall(boxes, big) < 0.5
    sizes = sizes_from_boxes(boxes)
    assert sizes[0] < 8 and sizes[-1] < 30
    fitted = AnchorGenerator(sizes=(sizes,) * 5, aspect_ratios=(0.5, 1.0, 2.0)).anchors((256, 256))
    assert anchor_recall(boxes, fitted) >= 0.95
