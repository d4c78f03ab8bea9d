"""Mask R-CNN and paper 05's affinity model under mixed precision.

From the same weights and the same sampled anchors/RoIs (one seed, one trace per run), a few
bf16 (and float16, loss-scaled) train steps of the tiny 64-px detector follow the float32 loss
curve, and bf16 inference gives the float32 boxes. Backbone, FPN and heads compute in 16 bits;
anchors, box coding, IoU matching, NMS, RoIAlign coordinates and the losses are float32.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf
from detection_harness import tiny_config, two_lesion_batch

from kerassev.models.detection.mask_rcnn import LOSS_NAMES, MaskRCNN
from kerassev.precision import precision_scope

SIZE, STEPS = 64, 5
# bf16 keeps ~3 significant digits; each loss is a mean over hundreds of samples, so the running
# means agree far better than one activation does: 1 % of the loss (or 0.005) per step.
RTOL, ATOL = 0.01, 0.005


class _PerStep(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rows = []

    def on_train_batch_end(self, batch, logs=None):
        self.rows.append({k: float(v) for k, v in logs.items()})


def _train(make_model, batches, setting, weights=None, steps=STEPS):
    """``(per-step logs, starting weights, model)`` of ``steps`` Adam steps under ``setting``."""
    with precision_scope(setting):
        keras.utils.set_random_seed(0)
        model = make_model()
        if weights is not None:
            model.set_weights(weights)
        start = model.get_weights()
        model.compile(optimizer=keras.optimizers.Adam(2e-3))
        tf.random.set_seed(1)  # the same anchor / RoI samples in every run
        steps_cb = _PerStep()
        data = tf.data.Dataset.from_tensor_slices(batches).batch(1).repeat()
        model.fit(
            data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=[steps_cb]
        )
    return steps_cb.rows, start, model


def _curves(rows, names):
    return {n: np.array([r[n] for r in rows]) for n in names}


def _detector():
    return MaskRCNN(tiny_config(image_size=SIZE))


@pytest.fixture(scope="module")
def float32_detector_run():
    batch = two_lesion_batch(SIZE)
    rows, start, model = _train(_detector, batch, "float32")
    return batch, rows, start, model


@pytest.mark.slow
def test_bf16_detector_steps_track_the_float32_losses(float32_detector_run):
    batch, f32_rows, start, f32_model = float32_detector_run
    rows, _, model = _train(_detector, batch, "bfloat16", weights=start)
    assert model.compute_dtype == "bfloat16" and model.backbone.compute_dtype == "bfloat16"
    names = ("loss", *LOSS_NAMES)
    f32, bf16 = _curves(f32_rows, names), _curves(rows, names)
    assert f32["loss"][-1] < f32["loss"][0] - 0.3  # the curve moves, so tracking it means something
    for name in names:
        assert np.isfinite(bf16[name]).all(), name
        np.testing.assert_allclose(bf16[name], f32[name], rtol=RTOL, atol=ATOL, err_msg=name)

    # Inference from the float32-trained weights. Five steps leave foreground scores near 0.01,
    # so the score threshold is 0 here: the comparison covers decoding, NMS and mask pasting.
    outs = {}
    for setting in ("float32", "bfloat16"):
        with precision_scope(setting):
            twin = MaskRCNN(tiny_config(image_size=SIZE, score_threshold=0.0))
            twin.set_weights(f32_model.get_weights())
            outs[setting] = {k: v.numpy() for k, v in twin(batch["images"]).items()}
    out32, out16 = outs["float32"], outs["bfloat16"]
    assert out16["boxes"].dtype == np.float32 and out16["roi_masks"].dtype == np.float32
    assert out32["num_detections"][0] == out16["num_detections"][0] > 0
    # Detections may swap rank where scores tie within bf16's resolution: match each of the
    # float32 top 5 to its nearest bf16 box.
    b32, b16 = out32["boxes"][0, :5], out16["boxes"][0]
    nearest = np.abs(b32[:, None, :] - b16[None, :, :]).max(-1).min(-1)
    assert nearest.max() < 1.0, nearest  # pixels
    np.testing.assert_allclose(out16["scores"][0, :5], out32["scores"][0, :5], atol=0.01)
    np.testing.assert_allclose(out16["roi_masks"][0, 0], out32["roi_masks"][0, 0], atol=0.02)


@pytest.mark.slow
def test_float16_detector_steps_use_loss_scaling(float32_detector_run):
    """mixed_float16: compile wraps the optimiser in a LossScaleOptimizer and the step scales
    the loss (without it the unscaled gradients are 1/32768 of the true ones and the loss
    stays flat); two steps reach float32's second loss."""
    batch, f32_rows, start, _ = float32_detector_run
    rows, _, model = _train(_detector, batch, "float16", weights=start, steps=2)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    f32, f16 = _curves(f32_rows[:2], ("loss",)), _curves(rows, ("loss",))
    assert np.isfinite(f16["loss"]).all()
    np.testing.assert_allclose(f16["loss"], f32["loss"], rtol=RTOL, atol=ATOL)


@pytest.mark.slow
def test_bf16_affinity_model_steps_track_the_float32_losses():
    from test_affinity_model import phantom_batches, tiny_model

    batches = phantom_batches()
    # Glorot W1/w2 and the mean vectorisation: the author's N(0, 1) draws give image logits in
    # the tens and the conv vectorisation's BN over 32 RoIs amplifies bf16 rounding, so after one
    # Adam update the curves part by more than 1 % (8 % measured); this test is about the
    # precision plumbing, and bf16 training of the author's configuration is not tracked here.
    make = functools.partial(tiny_model, affinity_init="glorot", vectorise="mean")
    f32_rows, start, _ = _train(make, batches, "float32", steps=3)
    rows, _, model = _train(make, batches, "bfloat16", weights=start, steps=3)
    names = ("loss", "segmentation_loss", "image_class")
    f32, bf16 = _curves(f32_rows, names), _curves(rows, names)
    for name in names:
        assert np.isfinite(bf16[name]).all(), name
        np.testing.assert_allclose(bf16[name], f32[name], rtol=RTOL, atol=ATOL, err_msg=name)
    assert model.affinity.w1.dtype == "float32" and model.affinity.fc1.compute_dtype == "bfloat16"
    out = model(batches["images"][:1])
    assert out["class_logits"].dtype == tf.float32 and out["affinity_x2"].dtype == tf.float32
