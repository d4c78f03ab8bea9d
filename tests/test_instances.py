import numpy as np
import pytest

from kerassev.data.instances import class_names, instances_from_label_map


def _label_map():
    lm = np.zeros((60, 60), np.uint8)
    lm[5:25, 5:25] = 1  # GGO blob ...
    lm[10:20, 25:35] = 2  # ... touching a consolidation blob: one lesion when merged
    lm[40:55, 40:46] = 1  # 15 x 6: under 10x10 -> dropped at min_size 10
    lm[40:52, 5:17] = 2  # 12 x 12 consolidation
    lm[30, 30] = 1  # a single pixel
    return lm


def test_one_class_lesion_variant_merges_and_drops_small():
    inst = instances_from_label_map(_label_map(), variant="lesion", min_size=10)
    assert len(inst) == 2 and inst.classes.tolist() == [1, 1]
    assert inst.masks[0].sum() == 400 + 100  # merged GGO + consolidation, largest first
    np.testing.assert_array_equal(inst.boxes[0], [5, 5, 25, 35])
    np.testing.assert_array_equal(inst.boxes[1], [40, 5, 52, 17])
    assert not inst.union[45, 42] and not inst.union[30, 30]  # dropped lesions are background


def test_two_class_variant_and_min_size_zero():
    inst = instances_from_label_map(_label_map(), variant="ggo_consolidation", min_size=0)
    assert sorted(inst.classes.tolist()) == [1, 1, 1, 2, 2]
    assert class_names("ggo_consolidation") == ("ggo", "consolidation")
    with pytest.raises(ValueError, match="variant"):
        instances_from_label_map(_label_map(), variant="three")


def test_empty_label_map():
    inst = instances_from_label_map(np.zeros((8, 9), np.uint8))
    assert len(inst) == 0 and inst.masks.shape == (0, 8, 9) and not inst.union.any()
