"""The whole Mask R-CNN: single-image overfit (issue 9's end-to-end check), tracing, save/load.

The overfit test trains the tiny 128-px config for 120 steps (Adam 2e-3): about 30 s on two
cores, most of it tracing the train step once.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from detection_harness import tiny_config, two_lesion_batch, union_iou

from kerassev.models.detection.mask_rcnn import LOSS_NAMES, MaskRCNN

STEPS = 120


class _CountingMaskRCNN(MaskRCNN):
    traces = 0

    def train_step(self, data):
        type(self).traces += 1  # Python runs only while tracing
        return super().train_step(data)


@pytest.mark.slow
def test_overfits_two_lesions_to_mask_iou_above_0_8():
    keras.utils.set_random_seed(0)
    model = _CountingMaskRCNN(tiny_config())
    batch = two_lesion_batch()
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    data = tf.data.Dataset.from_tensors(batch).repeat(STEPS)
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    assert set(LOSS_NAMES) <= set(history.history)
    # Fixed shapes: one trace serves every step.
    assert _CountingMaskRCNN.traces == 1
    out = model(batch["images"])
    confident = out["scores"][0].numpy() >= 0.5
    assert confident.sum() == 2, out["scores"][0].numpy()
    assert set(out["labels"][0].numpy()[confident].tolist()) == {1}
    pred = out["masks"][0].numpy()[confident].any(0)
    iou = union_iou(pred, batch["masks"][0].any(0))
    assert iou > 0.8, iou
    for i in range(2):  # each lesion has its own detection
        ious = [union_iou(out["masks"][0, j].numpy(), batch["masks"][0, i]) for j in range(2)]
        assert max(ious) > 0.7, (i, ious)


def test_inference_outputs_and_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(1)
    model = MaskRCNN(tiny_config(score_threshold=0.0))
    images = two_lesion_batch()["images"]
    out = model(images)
    d = model.config.detections_per_image
    assert out["boxes"].shape == (1, d, 4) and out["masks"].shape == (1, d, 128, 128)
    assert out["masks"].dtype == tf.uint8 and out["roi_masks"].shape == (1, d, 28, 28)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.config == model.config
    # A saved model never asks for backbone weights again (its file holds them).
    model.config = dataclasses.replace(model.config, backbone_weights="imagenet")
    assert model.get_config()["config"]["backbone_weights"] is None
    again = loaded(images)
    np.testing.assert_allclose(again["scores"].numpy(), out["scores"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(again["masks"].numpy(), out["masks"].numpy())


def test_bad_image_size_is_refused():
    with pytest.raises(ValueError, match="multiple of 64"):
        MaskRCNN(tiny_config(image_size=100))
