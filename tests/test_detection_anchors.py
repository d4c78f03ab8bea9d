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
