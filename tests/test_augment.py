"""Two-view augmentation policies (SPEC 01 mRALE: no crop; SPEC 04: crop-and-resize)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerassev.transforms.augment import (
    POLICIES,
    AugmentConfig,
    RandomApply,
    RandomResizedCrop,
    make_augmenter,
    two_views,
)


def _batch(n=4, size=32, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, size, size, c)).astype(np.float32)


@pytest.mark.parametrize("policy", POLICIES)
def test_views_shape_range_and_differ(policy):
    x = _batch()
    aug = make_augmenter(policy, image_size=24 if policy != "mrale" else 32, seed=3)
    v1, v2 = two_views(aug)(x)
    want = (4, 32, 32, 3) if policy == "mrale" else (4, 24, 24, 3)
    assert v1.shape == v2.shape == want
    for v in (v1, v2):
        assert v.dtype == tf.float32
        assert float(tf.reduce_min(v)) >= 0.0 and float(tf.reduce_max(v)) <= 1.0 + 1e-6
    assert float(tf.reduce_mean(tf.abs(v1 - v2))) > 1e-3


@pytest.mark.parametrize("policy", POLICIES)
def test_same_seed_reproduces_and_other_seed_differs(policy):
    x = _batch(seed=1)
    a = make_augmenter(policy, image_size=32, seed=5)(x, training=True)
    b = make_augmenter(policy, image_size=32, seed=5)(x, training=True)
    c = make_augmenter(policy, image_size=32, seed=6)(x, training=True)
    np.testing.assert_allclose(a, b)
    assert not np.allclose(a, c)


def test_mrale_has_no_crop_and_simsiam_has_crop_and_blur():
    """SPEC 01: no random crop for mRALE (it can cut away the opacities)."""
    mrale = [type(layer) for layer in make_augmenter("mrale", image_size=32).layers]
    assert RandomResizedCrop not in mrale
    assert keras.layers.RandomFlip in mrale and keras.layers.RandomGrayscale in mrale
    assert RandomApply in mrale  # colour jitter with p=0.8
    simsiam = [type(layer) for layer in make_augmenter("simsiam", image_size=32).layers]
    assert RandomResizedCrop in simsiam
    assert any(issubclass(t, keras.layers.RandomGaussianBlur) for t in simsiam)


def test_mrale_keeps_every_pixel_up_to_flip():
    """With jitter and grayscale off, an mRALE view is the image or its mirror: nothing cropped."""
    cfg = AugmentConfig.for_policy("mrale", jitter_p=0.0, grayscale_p=0.0)
    x = _batch(n=8, seed=2)
    out = make_augmenter(cfg, image_size=32, seed=0)(x, training=True).numpy()
    for i in range(8):
        assert np.allclose(out[i], x[i]) or np.allclose(out[i], x[i, :, ::-1])


def test_config_defaults_and_overrides():
    assert AugmentConfig.for_policy("mrale").crop_scale is None
    assert AugmentConfig.for_policy("simsiam").crop_scale == (0.2, 1.0)
    assert AugmentConfig.for_policy("byol").crop_scale == (0.08, 1.0)
    assert AugmentConfig.for_policy("simsiam", blur_p=0.0).blur_p == 0.0
    with pytest.raises(ValueError, match="unknown augmentation policy"):
        AugmentConfig.for_policy("simclr")


def test_single_channel_and_unbatched_input():
    aug = make_augmenter("simsiam", image_size=16, channels=1, seed=0)
    assert aug(_batch(c=1), training=True).shape == (4, 16, 16, 1)
    crop = RandomResizedCrop(12, seed=0)
    assert crop(_batch(c=1)[0]).shape == (12, 12, 1)


def test_inside_tf_data_two_views():
    aug = make_augmenter("byol", image_size=16, seed=0)
    ds = tf.data.Dataset.from_tensor_slices(_batch(n=6)).batch(3).map(two_views(aug))
    out = list(ds)
    assert len(out) == 2 and out[0][0].shape == out[0][1].shape == (3, 16, 16, 3)


def test_random_apply_rate_extremes():
    x = tf.constant(_batch())
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    np.testing.assert_array_equal(RandomApply(flip, 0.0)(x), x)
    always = RandomApply(keras.layers.RandomBrightness((0.5, 0.5), value_range=(0, 1)), 1.0)
    assert float(tf.reduce_mean(always(x, training=True))) > float(tf.reduce_mean(x))


def test_crop_layer_serialises():
    layer = RandomResizedCrop(20, scale=(0.3, 0.9), seed=4)
    clone = RandomResizedCrop.from_config(layer.get_config())
    assert clone.size == 20 and clone.scale == (0.3, 0.9)


@pytest.mark.parametrize("policy", ["simsiam", "byol", "mrale"])
def test_views_stay_float32_under_a_mixed_bfloat16_policy(policy):
    # precision="auto" sets mixed_bfloat16 on AMX CPUs before the pipeline is built; the views
    # must still be made in float32 (tf.image.crop_and_resize has no bf16 kernel).
    from kerassev.precision import precision_scope

    images = tf.random.uniform((2, 48, 48, 1), seed=0)
    with precision_scope("bfloat16"):
        augment = make_augmenter(policy, image_size=32, seed=0, channels=1)
        views = tf.data.Dataset.from_tensors(images).map(lambda x: augment(x, training=True))
        view = next(iter(views))
    assert view.dtype == tf.float32
    assert view.shape[1:3] == (32, 32) or policy == "mrale"


@pytest.mark.parametrize("policy", ["simsiam", "mrale"])
def test_views_under_mixed_bfloat16_equal_the_float32_views(policy):
    # dtype= does not reach RandomColorJitter's own sub-layers: they computed (and drew their
    # factors) in bf16 until the augmenter was built under a float32 policy.
    from kerassev.precision import precision_scope

    images = tf.random.uniform((4, 40, 40, 1), seed=1)
    with precision_scope("bfloat16"):
        mixed = make_augmenter(policy, image_size=32, seed=2, channels=1)(images, training=True)
    plain = make_augmenter(policy, image_size=32, seed=2, channels=1)(images, training=True)
    np.testing.assert_array_equal(mixed, plain)


def _torch_gaussian_blur(x: np.ndarray, k: int, sigma: float) -> np.ndarray:
    """torchvision ``F.gaussian_blur`` (its 1-D kernel and reflect padding) written in torch."""
    import torch

    half = (k - 1) * 0.5
    t = torch.linspace(-half, half, k, dtype=torch.float64)
    kern = torch.exp(-0.5 * (t / sigma) ** 2)
    kern = kern / kern.sum()
    img = torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2)  # NCHW
    c = img.shape[1]
    img = torch.nn.functional.pad(img, [k // 2] * 4, mode="reflect")
    weight = (kern[:, None] * kern[None, :]).expand(c, 1, k, k)
    out = torch.nn.functional.conv2d(img, weight, groups=c)
    return out.permute(0, 2, 3, 1).numpy()


def test_blur_matches_torchvision_gaussian_blur_with_reflect_padding():
    from kerassev.transforms.augment import RandomGaussianBlur

    x = np.random.default_rng(3).random((3, 20, 20, 2)).astype(np.float32)
    layer = RandomGaussianBlur(factor=1.0, kernel_size=5, sigma=(0.8, 0.8), value_range=(0, 1))
    ours = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(ours, _torch_gaussian_blur(x, 5, 0.8), atol=1e-5)
    # a flat image stays flat up to its border (zero padding darkened the border rows)
    flat = np.full((1, 16, 16, 1), 0.7, np.float32)
    np.testing.assert_allclose(layer(flat, training=True), flat, atol=1e-6)


def test_blur_kernel_and_sigma_scale_with_the_view():
    from kerassev.transforms.augment import RandomGaussianBlur

    for size, kernel in ((224, 23), (64, 7), (32, 3)):
        aug = make_augmenter("simsiam", image_size=size)
        (blur,) = [layer for layer in aug.layers if isinstance(layer, RandomGaussianBlur)]
        assert blur.kernel_size[0] == kernel  # 10 % of the side, odd (SimCLR)
        np.testing.assert_allclose(blur.sigma, (0.1 * size / 224, 2.0 * size / 224))


def test_blur_per_image_with_probability_p():
    from kerassev.transforms.augment import RandomGaussianBlur

    # SimSiam / BYOL semantics: probability p per image (Keras' factor=p blurs p/2) and one
    # isotropic sigma per image (Keras draws one pair per batch)
    layer = RandomGaussianBlur(factor=0.5, kernel_size=3, sigma=(0.1, 2.0), seed=1)
    many = tf.random.uniform((4000, 6, 6, 1), seed=4)
    t = layer.get_random_transformation(many, training=True)
    assert abs(float(tf.reduce_mean(tf.cast(t["should_apply_blur"], "float32"))) - 0.5) < 0.03
    sigma = np.asarray(t["blur_factor"])
    assert sigma.shape == (4000,) and sigma.min() >= 0.1 and sigma.max() <= 2.0
    assert np.std(sigma) > 0.4  # uniform on [0.1, 2]: sd 0.55
    out = np.asarray(layer.transform_images(many, t, training=True)).reshape(4000, -1)
    flat, apply = np.asarray(many).reshape(4000, -1), np.asarray(t["should_apply_blur"])
    np.testing.assert_array_equal(out[~apply], flat[~apply])  # the rest pass through unchanged
    visible = apply & (sigma > 0.5)  # sigma near 0.1 leaves a 3-tap kernel almost an identity
    assert (np.abs(out[visible] - flat[visible]).max(axis=1) > 1e-3).all()


def _jitter(**kw):
    from kerassev.transforms.augment import ColorJitter

    return ColorJitter(**{"brightness": 0.0, "contrast": 0.0, **kw}, seed=4)


def test_brightness_multiplies_as_torchvision():
    # torchvision ColorJitter(brightness=0.4): x * f, f ~ U[0.6, 1.4], clipped to [0, 1]
    x = np.random.default_rng(0).uniform(0.05, 0.5, (2000, 4, 4, 1)).astype(np.float32)
    out = np.asarray(_jitter(brightness=0.4)(x, training=True))
    f = out / x
    np.testing.assert_allclose(f, f[:, :1, :1, :1] * np.ones_like(f), rtol=1e-5)  # one per image
    f = f[:, 0, 0, 0]
    assert 0.6 <= f.min() < 0.62 and 1.38 < f.max() <= 1.4
    assert abs(f.mean() - 1.0) < 0.02
    # a dark lung field is never lifted by a fixed offset (Keras' additive 0.4 made 0.1 -> 0.5)
    assert out.max() <= 0.5 * 1.4 + 1e-6


def test_contrast_blends_with_the_mean_grey_as_torchvision():
    x = np.random.default_rng(1).uniform(0.3, 0.7, (500, 6, 6, 3)).astype(np.float32)
    out = np.asarray(_jitter(contrast=0.4)(x, training=True))
    grey = (x * np.array([0.299, 0.587, 0.114], np.float32)).sum(-1, keepdims=True)
    mean = grey.mean(axis=(1, 2, 3), keepdims=True)
    # out = f x + (1 - f) mean  =>  f = (out - mean) / (x - mean), one per image
    f = ((out - mean) * (x - mean)).sum(axis=(1, 2, 3)) / ((x - mean) ** 2).sum(axis=(1, 2, 3))
    want = f[:, None, None, None] * x + (1 - f[:, None, None, None]) * mean
    np.testing.assert_allclose(out, np.clip(want, 0, 1), atol=1e-5)
    assert 0.6 <= f.min() < 0.63 and 1.37 < f.max() <= 1.4


def test_jitter_order_is_random_per_image_and_output_in_range():
    x = np.random.default_rng(2).random((400, 8, 8, 1)).astype(np.float32)
    out = np.asarray(_jitter(brightness=0.4, contrast=0.4)(x, training=True))
    assert out.min() >= 0 and out.max() <= 1
    jitter = _jitter(brightness=0.4, contrast=0.4)
    assert not np.allclose(jitter(x, training=False), out)
    np.testing.assert_array_equal(jitter(x, training=False), x)
