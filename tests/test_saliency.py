"""kerassev.explain.saliency: paper 03 Fig. 4 input-gradient saliency with a 5x5 Gaussian."""

from __future__ import annotations

import keras
import matplotlib
import numpy as np
import pytest
import tensorflow as tf

from kerassev.explain.saliency import (
    gaussian_blur,
    input_gradients,
    opencv_sigma,
    saliency,
    saliency_grid,
)

matplotlib.use("Agg")

# Prediction depends only on rows 20:30, cols 40:50.
R0, R1, C0, C1 = 20, 30, 40, 50


def _region_model(x):
    patch = x[:, R0:R1, C0:C1, 0]
    return tf.reduce_sum(tf.tanh(patch) ** 2, axis=(1, 2))


def _images(batch=2, size=64, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, size, size, 1)).astype(np.float32)


def _mask(size, pad):
    m = np.zeros((size, size), bool)
    m[max(R0 - pad, 0) : R1 + pad, max(C0 - pad, 0) : C1 + pad] = True
    return m


def test_gaussian_blur_is_opencv_5x5():
    delta = np.zeros((1, 9, 9))
    delta[0, 4, 4] = 1.0
    k = gaussian_blur(delta, 5)[0, 2:7, 2:7]  # the blur of a unit impulse is its kernel
    assert gaussian_blur(delta, 5)[0].sum() == pytest.approx(1.0)
    assert np.count_nonzero(gaussian_blur(delta, 5)[0] > 1e-12) == 25  # 5x5 support only
    assert k.shape == (5, 5)
    assert k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k, k.T)
    assert k.argmax() == 12
    # sigma 1.1 (OpenCV's rule for 5 taps): 1-D profile ratio centre / neighbour = exp(1 / (2 s^2))
    assert k[2, 2] / k[2, 1] == pytest.approx(np.exp(1 / (2 * 1.1**2)))
    assert opencv_sigma(5) == pytest.approx(1.1)
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(delta, 4)


def test_gradient_matches_analytic():
    x = _images(1)
    g = input_gradients(_region_model, x)
    expected = np.zeros_like(x)
    patch = x[:, R0:R1, C0:C1, :]
    expected[:, R0:R1, C0:C1, :] = 2 * np.tanh(patch) * (1 - np.tanh(patch) ** 2)
    np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-6)


def test_saliency_mass_concentrates_on_the_region():
    maps = saliency(_region_model, _images(2))
    assert maps.shape == (2, 64, 64)
    assert maps.min() >= 0
    np.testing.assert_allclose(maps.max(axis=(1, 2)), 1.0)
    inside, blur_support = _mask(64, 0), _mask(64, 2)  # 5x5 blur spreads by 2 pixels
    for m in maps:
        assert m[~blur_support].max() == 0.0
        assert m[inside].sum() / m.sum() > 0.75


def test_no_blur_keeps_exact_support():
    maps = saliency(_region_model, _images(1), blur=0)
    assert maps[0][~_mask(64, 0)].max() == 0.0
    assert maps[0][_mask(64, 0)].min() >= 0


def test_keras_model_and_per_image_normalisation():
    # A Keras model whose output depends only on the region, with (B, 1) output.
    keras.utils.set_random_seed(0)
    inp = keras.Input((64, 64, 1))
    crop = keras.layers.Cropping2D(((R0, 64 - R1), (C0, 64 - C1)))(inp)
    out = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(crop)))
    model = keras.Model(inp, out)
    x = _images(2)
    x[1] *= 100.0  # scale should not matter after per-image normalisation
    maps = saliency(lambda t: model(t, training=False), x)
    np.testing.assert_allclose(maps.max(axis=(1, 2)), 1.0)
    for m in maps:
        assert m[~_mask(64, 2)].max() == 0.0
        assert m[_mask(64, 0)].sum() / m.sum() > 0.75


def test_square_magnitude_is_square_of_abs_before_blur():
    x = _images(1)
    a = saliency(_region_model, x, blur=0)
    q = saliency(_region_model, x, blur=0, magnitude="square")
    np.testing.assert_allclose(q, a**2, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="magnitude"):
        saliency(_region_model, x, magnitude="signed")


def test_rejects_multi_output_and_constant_models():
    with pytest.raises(ValueError, match=r"\(B,\) or \(B, 1\)"):
        saliency(lambda x: tf.concat([x[:, 0, 0], x[:, 1, 1]], axis=1), _images(2))
    with pytest.raises(ValueError, match="does not depend"):
        saliency(lambda x: tf.ones((2,)), _images(2))


def test_saliency_grid_figure():
    x = _images(3)
    maps = saliency(_region_model, x)
    fig = saliency_grid(x, maps, ["a: 3.0 / 2.5", "b", "c"])
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        assert len(fig.axes) >= 6
        assert fig.axes[0].get_title() == "a: 3.0 / 2.5"
    finally:
        matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="titles"):
        saliency_grid(x, maps, ["only one"])
