import pytest

from kerassev.models.detection.fpn import build_fpn_backbone


def test_resnet50_fpn_levels_and_strides():
    model = build_fpn_backbone(128, backbone="resnet50", weights=None, channels=64)
    shapes = [tuple(t.shape[1:]) for t in model.outputs]
    assert shapes == [(32, 32, 64), (16, 16, 64), (8, 8, 64), (4, 4, 64), (2, 2, 64)]


def test_tiny_backbone_same_strides_and_errors():
    model = build_fpn_backbone(64, backbone="tiny", channels=8, tiny_width=4)
    assert [t.shape[1] for t in model.outputs] == [16, 8, 4, 2, 1]
    with pytest.raises(ValueError, match="multiple of 64"):
        build_fpn_backbone(100, backbone="tiny")
    with pytest.raises(ValueError, match="unknown"):
        build_fpn_backbone(64, backbone="vgg")
