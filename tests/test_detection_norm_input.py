"""Issue 19 faults 2-3: the norm choice and the backbone's input scale per weight source."""

import dataclasses

import numpy as np
import pytest
from keras import layers

from kerassev.models.detection.fpn import build_fpn_backbone
from kerassev.models.detection.mask_rcnn import CAFFE_BGR_MEANS, MaskRCNN, MaskRCNNConfig, resolve


def _norm_layers(model):
    flat = list(model._flatten_layers(include_self=False))
    bn = [x for x in flat if isinstance(x, layers.BatchNormalization)]
    gn = [x for x in flat if isinstance(x, layers.GroupNormalization)]
    return bn, gn


def test_group_norm_replaces_every_backbone_batch_norm_and_normalises_the_fpn():
    bn, gn = _norm_layers(build_fpn_backbone(64, norm="group", channels=32))
    assert not bn and len(gn) == 53 + 8  # ResNet-50's 53 BN layers + 4 laterals + 4 outputs
    bn, _ = _norm_layers(build_fpn_backbone(64, norm="frozen_bn", channels=32))
    assert bn and not any(x.trainable for x in bn)
    bn, _ = _norm_layers(build_fpn_backbone(64, norm="bn", channels=32))
    assert all(x.trainable for x in bn)
    with pytest.raises(ValueError, match="frozen_bn"):
        build_fpn_backbone(64, norm="group", weights="imagenet")


def test_auto_settings_follow_the_weight_source():
    scratch = resolve(MaskRCNNConfig())
    assert (scratch.norm, scratch.input_scale) == ("group", "zscore")
    pretrained = resolve(MaskRCNNConfig(backbone_weights="w.h5"))
    assert (pretrained.norm, pretrained.input_scale) == ("frozen_bn", "caffe")
    with pytest.raises(ValueError, match="input_scale"):
        resolve(MaskRCNNConfig(input_scale="rgb"))


def test_backbone_inputs_per_weight_source():
    base = MaskRCNNConfig(image_size=64, backbone="tiny", tiny_width=4, fpn_channels=8,
                          representation_size=8, mask_channels=8, mean=0.4, std=0.2)  # fmt: skip
    images = np.full((1, 64, 64, 1), 0.5, np.float32)
    z = MaskRCNN(base).backbone_inputs(images).numpy()
    np.testing.assert_allclose(z, 0.5, atol=1e-5)  # (0.5 - 0.4) / 0.2 on all three channels
    caffe = MaskRCNN(dataclasses.replace(base, input_scale="caffe"))
    x = caffe.backbone_inputs(images).numpy()[0, 0, 0]
    # Keras ResNet-50 weights: BGR 0-255 minus the ImageNet means, not a z-score ~50x smaller
    np.testing.assert_allclose(x, 127.5 - np.array(CAFFE_BGR_MEANS), atol=1e-3)
    assert caffe.get_config()["config"]["input_scale"] == "caffe"  # kept when reloaded


@pytest.mark.slow
def test_a_group_norm_detector_learns_the_two_lesion_slice():
    """GroupNorm in FPN and mask head (the from-scratch default) still trains at batch 1."""
    import keras
    import tensorflow as tf
    from detection_harness import tiny_config, two_lesion_batch

    keras.utils.set_random_seed(0)
    model = MaskRCNN(tiny_config(image_size=64, norm="group"))
    assert model.config.norm == "group" and model.mask_head.group_norm
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    data = tf.data.Dataset.from_tensor_slices(two_lesion_batch(64)).batch(1).repeat()
    history = model.fit(data, epochs=4, steps_per_epoch=5, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0] - 0.3, losses
