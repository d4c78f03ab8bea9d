"""Fused batch norm matches Keras' BatchNormalization: outputs, gradients, statistics, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerassev.models.backbones import build_backbone
from kerassev.models.batch_norm import (
    FusedBatchNormalization,
    fuse_batch_norm,
    recompute_batch_norm_statistics,
)


@pytest.fixture
def policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _pair(shape, **kw):
    ref, fused = keras.layers.BatchNormalization(**kw), FusedBatchNormalization(**kw)
    ref.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    fused.set_weights(weights)
    return ref, fused


@pytest.mark.parametrize("shape", [(4, 5, 6, 8), (16, 8)], ids=["4d", "2d"])
@pytest.mark.parametrize("center_scale", [True, False])
def test_matches_keras_in_training_and_inference(shape, center_scale):
    ref, fused = _pair(shape, momentum=0.9, center=center_scale, scale=center_scale)
    x = tf.constant(np.random.default_rng(1).normal(1.0, 3.0, shape).astype("float32"))
    weights = tf.range(shape[-1], dtype="float32")
    for _ in range(3):  # statistics move the same way step after step
        grads = []
        for layer in (ref, fused):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(y * weights)
            grads.append((y, *tape.gradient(loss, [x, *layer.trainable_variables])))
        for a, b in zip(*grads, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)
    for a, b in zip(ref.get_weights(), fused.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(ref(x), fused(x), atol=1e-5)  # inference uses moving statistics


def test_frozen_layer_uses_moving_statistics():
    ref, fused = _pair((2, 3, 3, 4))
    fused.trainable = False
    ref.trainable = False
    x = tf.random.normal((2, 3, 3, 4))
    before = [w.copy() for w in fused.get_weights()]
    np.testing.assert_allclose(ref(x, training=True), fused(x, training=True), atol=1e-5)
    for a, b in zip(before, fused.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bfloat16_policy_keeps_float32_statistics(policy):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    layer = FusedBatchNormalization()
    y = layer(tf.random.normal((4, 3, 3, 8)), training=True)
    assert y.dtype == tf.bfloat16
    assert layer.moving_mean.dtype == "float32" and layer.gamma.dtype == "float32"
    assert np.isfinite(layer.moving_variance.numpy()).all()


def test_unfusable_input_falls_back_to_keras():
    ref, fused = _pair((2, 3, 4, 5, 6))  # 5-D: no fused kernel
    x = tf.random.normal((2, 3, 4, 5, 6))
    np.testing.assert_allclose(ref(x, training=True), fused(x, training=True), atol=1e-5)


def test_fused_backbone_has_the_same_function_and_saves(tmp_path):
    plain = build_backbone("tiny_cnn", input_shape=(32, 32, 3), fused_batch_norm=False)
    fused = fuse_batch_norm(plain)
    kinds = {type(layer) for layer in fused.layers}
    assert FusedBatchNormalization in kinds and keras.layers.BatchNormalization not in kinds
    assert [w.name for w in fused.weights] == [w.name for w in plain.weights]
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(plain(x), fused(x), atol=1e-5)
    fused.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert any(isinstance(layer, FusedBatchNormalization) for layer in loaded.layers)
    np.testing.assert_allclose(loaded(x), fused(x), atol=1e-6)


def test_weight_files_load_across_plain_and_fused(tmp_path):
    plain = build_backbone("tiny_cnn", input_shape=(32, 32, 3), fused_batch_norm=False)
    fused = build_backbone("tiny_cnn", input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    plain.set_weights([rng.normal(size=w.shape).astype("float32") ** 2 for w in plain.weights])
    plain.save_weights(tmp_path / "plain.weights.h5")
    fused.load_weights(tmp_path / "plain.weights.h5")
    for a, b in zip(plain.get_weights(), fused.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    fused.save_weights(tmp_path / "fused.weights.h5")
    again = build_backbone("tiny_cnn", input_shape=(32, 32, 3), fused_batch_norm=False)
    again.load_weights(tmp_path / "fused.weights.h5")
    for a, b in zip(plain.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bn_class", [keras.layers.BatchNormalization, FusedBatchNormalization])
def test_recompute_statistics_is_the_mean_of_full_batch_statistics(bn_class):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    features = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    model = keras.Model(inputs, bn_class(momentum=0.99, name="bn")(features))
    frozen = bn_class(name="frozen")
    frozen.trainable = False
    outer = keras.Sequential([model, frozen])
    outer.build((None, 6, 6, 2))
    x = np.random.default_rng(0).normal(2.0, 3.0, (10, 6, 6, 2)).astype("float32")

    used = recompute_batch_norm_statistics(outer, x, batch_size=4)

    assert used == 2  # two full batches of 4; the last 2 images are left out
    conv = keras.Model(inputs, features)
    batches = [conv(x[i : i + 4]).numpy() for i in (0, 4)]
    bn = model.get_layer("bn")
    np.testing.assert_allclose(
        bn.moving_mean.numpy(), np.mean([b.mean((0, 1, 2)) for b in batches], 0), atol=1e-5
    )
    np.testing.assert_allclose(
        bn.moving_variance.numpy(), np.mean([b.var((0, 1, 2)) for b in batches], 0), rtol=1e-4
    )
    assert bn.momentum == 0.99  # restored
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), 0.0)  # frozen layers keep theirs

    # a second call reuses the traced pass and starts its average afresh
    assert recompute_batch_norm_statistics(outer, x[4:8] + 5.0, batch_size=4) == 1
    np.testing.assert_allclose(
        bn.moving_mean.numpy(), conv(x[4:8] + 5.0).numpy().mean((0, 1, 2)), atol=1e-5
    )
