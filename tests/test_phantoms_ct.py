import numpy as np
import pytest
from scipy import ndimage

from kerassev.data.instances import instances_from_label_map
from kerassev.data.phantoms.ct import CT_KINDS, ct_phantom, ct_phantom_set


def test_deterministic_and_in_range():
    a, b = ct_phantom("covid", 3, 128), ct_phantom("covid", 3, 128)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label_map, b.label_map)
    assert a.image.dtype == np.float32 and a.image.min() >= 0 and a.image.max() <= 1
    assert not np.array_equal(a.image, ct_phantom("covid", 4, 128).image)
    with pytest.raises(ValueError, match="kind"):
        ct_phantom("flu", 0)


def test_kinds_have_their_lesion_patterns():
    for seed in range(4):
        covid, cp, normal = (ct_phantom(k, seed, 128) for k in CT_KINDS)
        assert not normal.label_map.any()
        # COVID-like: ground glass in both lungs (image halves), inside the lungs only.
        half = covid.label_map.shape[1] // 2
        assert (covid.label_map[:, :half] == 1).any() and (covid.label_map[:, half:] == 1).any()
        assert not (covid.label_map > 0)[~covid.lung_mask].any()
        # CP-like: consolidation dominates and sits in one lung.
        cons = cp.label_map == 2
        assert cons.sum() > (cp.label_map == 1).sum() > 0
        assert cons[:, :half].any() != cons[:, half:].any()
        assert ndimage.label(cons)[1] >= 1
        # Lesions are brighter than clean lung.
        clean = covid.lung_mask & (covid.label_map == 0)
        assert covid.image[covid.label_map == 1].mean() > covid.image[clean].mean() + 0.1


def test_phantoms_give_lesion_instances():
    phantoms = ct_phantom_set(2, seed=1, size=128)
    assert [p.kind for p in phantoms[:3]] == list(CT_KINDS)
    covid = instances_from_label_map(phantoms[0].label_map, min_size=5)
    assert len(covid) >= 2  # at least one lesion a lung
