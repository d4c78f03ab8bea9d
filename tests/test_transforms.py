"""Geometry (aspect-preserving resize) and per-backbone preprocessing."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerassev.transforms.geometry import center_crop_square, resize_keep_aspect
from kerassev.transforms.preprocess import get_preprocessor, xrv_preprocess


def _ramp(h, w, c=1):
    y = np.linspace(0, 1, h * w, dtype=np.float32).reshape(h, w, 1)
    return np.repeat(y, c, axis=-1)


def test_center_crop_square_uses_xrv_offsets():
    img = np.arange(6 * 3, dtype=np.float32).reshape(6, 3, 1)
    out = center_crop_square(img).numpy()
    # XRayCenterCrop: start = 6 // 2 - 3 // 2 = 2 (tf.image.central_crop would start at 1)
    np.testing.assert_array_equal(out, img[2:5])
    wide = np.arange(4 * 9, dtype=np.float32).reshape(4, 9, 1)
    np.testing.assert_array_equal(center_crop_square(wide).numpy(), wide[:, 2:6])


@pytest.mark.parametrize("mode", ["crop", "pad"])
@pytest.mark.parametrize("hw", [(40, 40), (60, 30), (30, 90)])
def test_resize_keep_aspect_shape_dtype_range(mode, hw):
    out = resize_keep_aspect(_ramp(*hw, c=3), 32, mode=mode)
    assert out.shape == (32, 32, 3) and out.dtype == tf.float32
    assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0 + 1e-6


def test_pad_mode_pads_with_zeros_and_keeps_content_centred():
    img = np.ones((20, 40, 1), np.float32)
    out = resize_keep_aspect(img, 40, mode="pad").numpy()[..., 0]
    assert np.all(out[:10] == 0) and np.all(out[30:] == 0)
    np.testing.assert_allclose(out[10:30], 1.0, atol=1e-6)


def test_crop_mode_matches_crop_then_resize_and_keeps_aspect():
    img = np.zeros((20, 40, 1), np.float32)
    img[:, 10:30] = 1.0  # exactly the centre square
    out = resize_keep_aspect(img, 10, mode="crop").numpy()
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_resize_inside_graph_with_unknown_shape():
    fn = tf.function(
        lambda x: resize_keep_aspect(x, 16, mode="crop"),
        input_signature=[tf.TensorSpec((None, None, 1), tf.float32)],
    )
    assert fn(_ramp(50, 20)).shape == (16, 16, 1)
    ds = tf.data.Dataset.from_generator(
        lambda: (_ramp(h, 17) for h in (9, 33)), output_signature=tf.TensorSpec((None, None, 1))
    ).map(lambda x: resize_keep_aspect(x, 8, mode="pad"))
    assert [tuple(e.shape) for e in ds] == [(8, 8, 1), (8, 8, 1)]


def test_stretch_resizes_both_sides_without_cropping():
    img = _ramp(4, 8)  # wide: crop would drop the outer columns, stretch keeps them
    out = np.asarray(resize_keep_aspect(img, 4, mode="stretch", antialias=False))
    assert out.shape == (4, 4, 1)
    assert out[:, 0].mean() < np.asarray(resize_keep_aspect(img, 4, mode="crop"))[:, 0].mean()


def test_bad_mode_and_integer_input_rejected():
    with pytest.raises(ValueError, match="resize mode"):
        resize_keep_aspect(_ramp(4, 4), 2, mode="squash")
    with pytest.raises(TypeError):
        resize_keep_aspect(np.zeros((4, 4, 1), np.uint8), 2)


def test_imagenet_matches_keras_resnet50_preprocess_input():
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    ours = get_preprocessor("imagenet")(x).numpy()
    ref = keras.applications.resnet50.preprocess_input(x * 255.0)
    np.testing.assert_allclose(ours, np.asarray(ref), rtol=1e-6, atol=1e-4)
    # caffe mode: BGR order, mean subtracted, no std scaling
    np.testing.assert_allclose(ours[..., 0], x[..., 2] * 255 - 103.939, atol=1e-3)
    np.testing.assert_allclose(ours[..., 2], x[..., 0] * 255 - 123.68, atol=1e-3)


def test_xrv_and_unit_preprocessors():
    x = np.array([0.0, 0.25, 0.5, 1.0], np.float32).reshape(1, 2, 2, 1)
    np.testing.assert_allclose(get_preprocessor("xrv")(x).numpy().ravel(), [-1024, -512, 0, 1024])
    np.testing.assert_array_equal(get_preprocessor("unit")(x).numpy(), x)
    with pytest.raises(ValueError, match="unknown preprocessing"):
        get_preprocessor("torch")


@pytest.mark.parametrize("shape", [(300, 200), (100, 500, 1), (256, 256, 3)])
def test_xrv_preprocess_any_size(shape):
    img = np.random.default_rng(1).random(shape).astype(np.float32)
    out = xrv_preprocess(img)
    assert out.shape == (224, 224, 1) and out.dtype == tf.float32
    assert float(tf.reduce_min(out)) >= -1024.0 and float(tf.reduce_max(out)) <= 1024.0


def test_xrv_preprocess_equals_normalize_crop_resize():
    """XRV order (normalize, then crop, then resize) gives the same result as ours."""
    img = np.random.default_rng(2).random((230, 260)).astype(np.float32)
    ours = xrv_preprocess(img).numpy()
    xrv_normalised = (2 * img - 1.0) * 1024  # xrv.datasets.normalize(img * maxval, maxval)
    side = 230
    sx = 260 // 2 - side // 2
    cropped = xrv_normalised[:, sx : sx + side, None]
    ref = tf.image.resize(cropped, (224, 224), antialias=True).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-2)
    flat = np.full((50, 80), 0.5, np.float32)
    np.testing.assert_allclose(xrv_preprocess(flat).numpy(), 0.0, atol=1e-3)
