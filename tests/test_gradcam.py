"""Grad-CAM on nested encoders, a known-answer model, mass-inside-mask and the overlay grid."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from kerassev.explain.gradcam import (
    gradcam,
    last_conv_layer,
    mass_inside_mask,
    overlay_grid,
)
from kerassev.models.backbones import build_backbone
from kerassev.models.heads import build_encoder, build_regressor, build_subscore_regressor


def _images(n, size, channels=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, size, size, channels)).astype("float32")


def test_nested_resnet50_regressor_runs_without_graph_disconnected():
    keras.utils.set_random_seed(0)
    backbone = build_backbone("resnet50", input_shape=(64, 64, 3))
    reg = build_regressor(build_encoder(backbone, projection_dim=64, n_layers=2))
    assert last_conv_layer(reg).name == "conv5_block3_out"
    heat = gradcam(reg, _images(3, 64) * 50)
    assert heat.shape == (3, 64, 64) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    # an earlier layer, named, works as well
    assert gradcam(reg, _images(1, 64), layer="conv4_block6_out").shape == (1, 64, 64)


def test_nested_cam_matches_manual_computation_on_backbone_graph():
    keras.utils.set_random_seed(1)
    backbone = build_backbone("tiny_cnn", input_shape=(32, 32, 3))
    encoder = build_encoder(backbone, projection_dim=8, n_layers=2)
    reg = build_regressor(encoder, units=(4,))
    x = _images(2, 32, seed=3)
    heat = gradcam(reg, x, layer="conv2_out")

    # Reference: a model on the backbone's own graph, then the outer layers replayed by hand.
    inner = keras.Model(backbone.input, [backbone.get_layer("conv2_out").output, backbone.output])
    with tf.GradientTape() as tape:
        act, feat = inner(x, training=False)
        z = encoder.get_layer("projector")(feat, training=False)
        h = z
        for layer in reg.layers[2:]:
            h = layer(h, training=False)
        score = tf.reduce_sum(h)
    grads = tape.gradient(score, act)
    cam = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(grads, axis=(1, 2), keepdims=True) * act, -1))
    cam = tf.image.resize(cam[..., None], (32, 32))[..., 0].numpy()
    cam = cam / np.maximum(cam.max(axis=(1, 2), keepdims=True), 1e-12)
    np.testing.assert_allclose(heat, cam, atol=1e-5)


def _two_channel_model(use_channel):
    """feat = [x, 1 - x] (1x1 conv, nested); output = mean of one channel only."""
    x_in = keras.Input((16, 16, 1))
    conv = layers.Conv2D(2, 1, name="feat")
    feats = keras.Model(x_in, conv(x_in), name="features")
    conv.set_weights(
        [np.array([1.0, -1.0], "float32").reshape(1, 1, 1, 2), np.array([0.0, 1.0], "float32")]
    )
    r_in = keras.Input((16, 16, 1))
    pooled = layers.GlobalAveragePooling2D()(feats(r_in))
    dense = layers.Dense(1, name="mrale")
    out = dense(pooled)
    dense.set_weights(
        [np.eye(2, dtype="float32")[:, use_channel : use_channel + 1], np.zeros(1, "float32")]
    )
    return keras.Model(r_in, out, name="known")


def test_known_answer_cam_follows_the_channel_the_output_uses():
    img = np.zeros((1, 16, 16, 1), "float32")
    img[0, 2:8, 2:8, 0] = 1.0  # bright square, top-left
    mask = np.zeros((16, 16), "float32")
    mask[2:8, 2:8] = 1.0
    bright = gradcam(_two_channel_model(0), img)  # output depends on x: square lights up
    dark = gradcam(_two_channel_model(1), img)  # output depends on 1 - x: everything else
    assert mass_inside_mask(bright, mask)[0] == pytest.approx(1.0, abs=1e-6)
    assert mass_inside_mask(dark, mask)[0] == pytest.approx(0.0, abs=1e-6)
    assert bright[0, 4, 4] == pytest.approx(1.0) and bright[0, 12, 12] == 0.0


def test_subscore_regressor_outputs_selectable():
    keras.utils.set_random_seed(2)
    reg = build_subscore_regressor(
        build_encoder(
            build_backbone("tiny_cnn", input_shape=(32, 32, 3)), projection_dim=8, n_layers=2
        )
    )
    x = _images(2, 32)
    for output in ["mrale", ("subscores", 3), None]:
        assert gradcam(reg, x, output=output).shape == (2, 32, 32)
    with pytest.raises(ValueError, match="unknown output"):
        gradcam(reg, x, output="nope")
    with pytest.raises(ValueError, match="no layer named"):
        gradcam(reg, x, layer="nope")


def test_mass_inside_mask_known_arrays():
    heat = np.array([[[1.0, 1.0], [0.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    mask = np.array([[1.0, 0.0], [0.0, 1.0]])
    got = mass_inside_mask(heat, mask)
    assert got[0] == pytest.approx(0.75) and np.isnan(got[1])
    big = np.zeros((4, 4))
    big[:, :2] = 1.0  # left half at 2x the heatmap resolution
    assert mass_inside_mask(heat[:1], big[None])[0] == pytest.approx(0.25)


def test_overlay_grid_returns_figure():
    from matplotlib.figure import Figure

    imgs = _images(5, 16, channels=1)
    fig = overlay_grid(
        imgs, np.random.default_rng(0).random((5, 16, 16)), titles=list("abcde"), ncols=4
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 8
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    assert len(fig.axes[0].images) == 2  # image + heatmap
