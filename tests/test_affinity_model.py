"""Paper 05's affinity model trains end to end for a few steps on 64-px CT phantoms."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from detection_harness import tiny_config

from kerassev.data.instances import instances_from_label_map
from kerassev.data.phantoms.ct import CT_KINDS, ct_phantom_set
from kerassev.models.detection.affinity_branches import DetectionWeightCopy
from kerassev.models.detection.affinity_model import AffinityConfig, AffinityMaskRCNN

SIZE, MAX_INSTANCES = 64, 4


def phantom_batches(n_per_kind=1):
    images, boxes, classes, masks, labels = [], [], [], [], []
    for p in ct_phantom_set(n_per_kind, seed=3, size=SIZE):
        inst = instances_from_label_map(p.label_map, min_size=3)
        k = min(len(inst), MAX_INSTANCES)
        b = np.zeros((MAX_INSTANCES, 4), np.float32)
        c = np.zeros(MAX_INSTANCES, np.int32)
        m = np.zeros((MAX_INSTANCES, SIZE, SIZE), np.uint8)
        b[:k], c[:k], m[:k] = inst.boxes[:k], inst.classes[:k], inst.masks[:k]
        images.append(p.image[:, :, None])
        boxes.append(b), classes.append(c), masks.append(m)
        labels.append(CT_KINDS.index(p.kind))
    return {
        "images": np.stack(images),
        "boxes": np.stack(boxes),
        "classes": np.stack(classes),
        "masks": np.stack(masks),
        "label": np.asarray(labels, np.int32),
    }


def tiny_model(affinities=32, affinity_init="normal", vectorise="conv"):
    config = tiny_config(
        image_size=SIZE,
        tiny_width=4,
        fpn_channels=16,
        representation_size=32,
        mask_channels=16,
        anchor_sizes=(8, 16, 32, 64, 128),
        rpn_pre_nms_train=100,
        rpn_post_nms_train=50,
        rpn_pre_nms_test=100,
        rpn_post_nms_test=50,
        roi_batch=32,
        max_instances=MAX_INSTANCES,
    )
    affinity = AffinityConfig(
        affinities=affinities, feature_channels=16, hidden=16, affinity_init=affinity_init,
        vectorise=vectorise,
    )  # fmt: skip
    return AffinityMaskRCNN(config, affinity)


@pytest.mark.slow
def test_affinity_model_trains_on_ct_phantoms():
    batch = phantom_batches()
    assert set(batch["label"]) == {0, 1, 2}
    model = tiny_model()
    assert not any("classification_branch" in v.path for v in model.trainable_variables)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    w1 = model.affinity.w1.numpy().copy()
    copier = DetectionWeightCopy(frequency="batch")
    data = tf.data.Dataset.from_tensor_slices(batch).batch(1)
    history = model.fit(data, epochs=1, callbacks=[copier], shuffle=False, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    for name in ("loss", "segmentation_loss", "image_class", "mask"):
        assert np.isfinite(logs[name]), name
    # Three summed BCEs; W1, w2 ~ N(0, 1) (the author's init) give large first logits, so the
    # sum starts well above 3 x 0.69; after three steps it is finite and still far from 0.
    assert 0.5 < logs["image_class"] < 30.0
    assert copier.copies >= 1
    assert not np.allclose(model.affinity.w1.numpy(), w1)  # the image loss reaches W1

    out = model(batch["images"])
    assert tuple(out["class_probs"].shape) == (3, 3)
    assert tuple(out["affinity_x2"].shape) == (3, 32, 16)
    assert tuple(out["selected_boxes"].shape) == (3, 8, 4)
    assert np.all((out["class_probs"].numpy() >= 0) & (out["class_probs"].numpy() <= 1))


def test_affinity_model_config_and_weights_round_trip(tmp_path):
    model = tiny_model(affinities=64)
    clone = AffinityMaskRCNN.from_config(model.get_config())
    assert clone.affinity_config == model.affinity_config
    assert tuple(clone.affinity.w1.shape) == (8, 64)
    assert not np.array_equal(clone.affinity.w1.numpy(), model.affinity.w1.numpy())
    path = tmp_path / "affinity.weights.h5"
    model.save_weights(path)
    clone.load_weights(path)
    np.testing.assert_array_equal(clone.affinity.w1.numpy(), model.affinity.w1.numpy())
    np.testing.assert_array_equal(
        clone.classification_branch.head.fc6.kernel.numpy(),
        model.classification_branch.head.fc6.kernel.numpy(),
    )


def test_the_classification_branch_starts_as_the_box_branch():
    """Issue 19 fault 7: copied at construction, so epoch 1 selects RoIs with the detector's
    weights rather than random ones."""
    model = tiny_model()
    source = model.box_head.weights + model.box_predictor.weights
    target = model.classification_branch.weights
    assert len(source) == len(target)
    for s, t in zip(source, target, strict=True):
        np.testing.assert_array_equal(s.numpy(), t.numpy())
