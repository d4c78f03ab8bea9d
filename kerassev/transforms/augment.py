"""Two-view augmentation policies from Keras 3 core preprocessing layers.

Policies (parameters in :class:`AugmentConfig`, defaults from the papers / SimSiam's recipe):

* ``"mrale"`` -- SPEC 01 (Liang et al.): random flip, colour jitter, colour drop, and **no random
  crop** (a crop can cut away the opacities that make the score). Probabilities and strengths
  follow SimSiam (jitter 0.4/0.4/0.4/0.1 with p=0.8, grayscale p=0.2); the paper gives none.
* ``"simsiam"`` -- SimSiam's recipe: random resized crop (scale 0.2-1), flip, jitter (p=0.8),
  colour drop (p=0.2), Gaussian blur sigma 0.1-2 (p=0.5). SPEC 04 comparator.
* ``"byol"`` -- SPEC 04's crop-and-resize, flip, Gaussian blur plus colour jitter, with BYOL's
  crop scale 0.08-1 and jitter 0.4/0.4/0.2/0.1. Symmetric: BYOL's asymmetric blur/solarise per
  view is not reproduced (pass a second augmenter to :func:`two_views` for that).

* ``"covid_ssl"`` -- paper 04 (Li et al., §"Self-Supervised Transfer Learning"): "cropping,
  resizing, flipping, and Gaussian blur" plus colour jitter (SPEC 04). The paper gives no
  strengths; we use the MoCo v2 / SimSiam values it cites for its views (He et al. 2020; Chen et
  al. 2020c): crop scale 0.2-1, jitter 0.4/0.4 p=0.8, blur sigma 0.1-2 p=0.5, and no colour drop
  (the radiographs are grey already).

All augmenters take ``[0, 1]`` float images ``(H, W, C)`` or batches ``(B, H, W, C)`` and return
``[0, 1]``. Colour jitter is torchvision's ``ColorJitter`` (:class:`ColorJitter`), which the
papers' code uses: brightness *multiplies* by a factor in ``[1-b, 1+b]`` (Keras' ``RandomBrightness``
adds ``b`` of the value range, washing radiographs out to white). Blur follows SimCLR: a kernel of
10 % of the view side, sigma scaled by ``view / 224`` (the 0.1-2 range was set for 224-px views),
reflect padding. On grey radiographs saturation, hue and grayscale are no-ops, which is what the
papers' colour ops do to a grey image too. With ``channels=1`` (XRV) only brightness and contrast
are used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import keras
import tensorflow as tf

POLICIES = ("mrale", "simsiam", "byol", "covid_ssl")


# Views are made in float32 whatever the global dtype policy: under mixed_bfloat16 the layers
# would otherwise compute in bf16, which tf.image.crop_and_resize rejects and which would
# quantise the views before the model's own cast.
AUGMENT_DTYPE = "float32"


@contextlib.contextmanager
def _augment_policy() -> Iterator[None]:
    """Build layers under the float32 policy: ``dtype=`` alone does not reach the sub-layers a
    layer makes itself (``RandomColorJitter``'s brightness / contrast stayed bf16 and drew their
    factors in bf16 under ``mixed_bfloat16``)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(AUGMENT_DTYPE)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@dataclass(frozen=True)
class AugmentConfig:
    """Parameters of one augmentation policy; build with :meth:`for_policy`."""

    policy: str
    crop_scale: tuple[float, float] | None = None  # None: no crop (mrale, SPEC 01)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: str | None = "horizontal"  # keras.layers.RandomFlip mode
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    jitter_p: float = 0.8
    grayscale_p: float = 0.2  # "colour drop"
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # at 224 px; scaled by view / 224
    blur_kernel_frac: float = 0.1  # kernel ~ 10% of the view size (SimCLR appendix A), made odd
    blur_reference_size: int = 224  # the view size blur_sigma was set for (SimCLR/MoCo v2)

    @classmethod
    def for_policy(cls, policy: str, **overrides) -> AugmentConfig:
        """Paper defaults for ``policy``, with keyword overrides."""
        if policy == "mrale":
            base = cls(policy)
        elif policy == "simsiam":
            base = cls(policy, crop_scale=(0.2, 1.0), blur_p=0.5)
        elif policy == "byol":
            base = cls(policy, crop_scale=(0.08, 1.0), saturation=0.2, blur_p=0.5)
        elif policy == "covid_ssl":
            base = cls(policy, crop_scale=(0.2, 1.0), grayscale_p=0.0, blur_p=0.5)
        else:
            raise ValueError(f"unknown augmentation policy {policy!r}; choose one of {POLICIES}")
        return dataclasses.replace(base, **overrides)


@keras.saving.register_keras_serializable(package="kerassev")
class RandomResizedCrop(keras.layers.Layer):
    """Crop a random area fraction ``scale`` with aspect ratio in ``ratio``, resize to ``size``.

    torchvision's ``RandomResizedCrop`` with clipping instead of its 10-try rejection loop; one
    ``tf.image.crop_and_resize`` call per batch. Keras 3.15 has no such layer.
    """

    def __init__(self, size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), seed=None, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        self.scale = tuple(float(s) for s in scale)
        self.ratio = tuple(float(r) for r in ratio)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        images = tf.convert_to_tensor(images)
        unbatched = images.shape.rank == 3
        if unbatched:
            images = images[None]
        n = tf.shape(images)[0]
        if training:
            area = keras.random.uniform((n,), *self.scale, seed=self.generator)
            log_r = keras.random.uniform(
                (n,), math.log(self.ratio[0]), math.log(self.ratio[1]), seed=self.generator
            )
            r = tf.exp(log_r)
            w = tf.minimum(tf.sqrt(area * r), 1.0)
            h = tf.minimum(tf.sqrt(area / r), 1.0)
            y0 = keras.random.uniform((n,), seed=self.generator) * (1.0 - h)
            x0 = keras.random.uniform((n,), seed=self.generator) * (1.0 - w)
            boxes = tf.stack([y0, x0, y0 + h, x0 + w], axis=1)
        else:
            boxes = tf.tile(tf.constant([[0.0, 0.0, 1.0, 1.0]]), [n, 1])
        out = tf.image.crop_and_resize(
            images, boxes, tf.range(n), (self.size, self.size), method="bilinear"
        )
        out = tf.cast(out, images.dtype)
        return out[0] if unbatched else out

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], self.size, self.size, input_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "size": self.size,
            "scale": self.scale,
            "ratio": self.ratio,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="kerassev")
class RandomApply(keras.layers.Layer):
    """Apply ``layer`` to each image with probability ``rate`` (torchvision ``RandomApply``)."""

    def __init__(self, layer, rate=0.8, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer
        self.rate = float(rate)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)

    def call(self, images, training=True):
        if not training or self.rate <= 0:
            return images
        out = self.layer(images, training=training)
        if self.rate >= 1:
            return out
        shape = (tf.shape(images)[0], 1, 1, 1) if images.shape.rank == 4 else (1, 1, 1)
        keep = keras.random.uniform(shape, seed=self.generator) < self.rate
        return tf.where(keep, out, images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "layer": keras.saving.serialize_keras_object(self.layer),
            "rate": self.rate,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


_GREY = (0.299, 0.587, 0.114)  # torchvision rgb_to_grayscale (ITU-R 601-2 luma)


def _grey(x):
    """``(B, H, W, 1)`` luma of ``(B, H, W, C)`` (the image itself when C is 1)."""
    if x.shape[-1] == 1:
        return x
    return tf.reduce_sum(x * tf.constant(_GREY, x.dtype), axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="kerassev")
class ColorJitter(keras.layers.Layer):
    """torchvision ``ColorJitter(brightness, contrast, saturation, hue)`` on ``[0, 1]`` images.

    Per image, as torchvision defines them (``transforms.functional_tensor``): brightness
    ``clip(x * f)``, contrast ``clip(f x + (1 - f) mean(grey(x)))``, saturation
    ``clip(f x + (1 - f) grey(x))``, each ``f ~ U[max(0, 1 - s), 1 + s]``; hue by Keras'
    ``RandomHue``. torchvision applies the four in a random order per image; here brightness and
    contrast come in a random order per image, then saturation, then hue (the last two are no-ops
    on grey radiographs, the suite's images).
    """

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.0, hue=0.0, seed=None, **kw):
        super().__init__(**kw)
        self.brightness, self.contrast = float(brightness or 0), float(contrast or 0)
        self.saturation, self.hue = float(saturation or 0), float(hue or 0)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)
        self.hue_layer = (
            keras.layers.RandomHue(self.hue, value_range=(0, 1), seed=seed, dtype=self.dtype_policy)
            if self.hue
            else None
        )

    def build(self, input_shape):
        if self.hue_layer is not None and input_shape[-1] == 3:
            self.hue_layer.build(input_shape)

    def _factor(self, n, strength):
        return keras.random.uniform(
            (n, 1, 1, 1), max(0.0, 1.0 - strength), 1.0 + strength, seed=self.generator
        )

    def call(self, images, training=True):
        if not training:
            return images
        x = tf.convert_to_tensor(images)
        single = x.shape.rank == 3
        x = x[None] if single else x
        n = tf.shape(x)[0]
        fb, fc = self._factor(n, self.brightness), self._factor(n, self.contrast)

        def brightness(v):
            return tf.clip_by_value(v * fb, 0.0, 1.0) if self.brightness else v

        def contrast(v):
            if not self.contrast:
                return v
            mean = tf.reduce_mean(_grey(v), axis=[1, 2, 3], keepdims=True)
            return tf.clip_by_value(fc * v + (1.0 - fc) * mean, 0.0, 1.0)

        brightness_first = keras.random.uniform((n, 1, 1, 1), seed=self.generator) < 0.5
        x = tf.where(brightness_first, contrast(brightness(x)), brightness(contrast(x)))
        if self.saturation and x.shape[-1] == 3:
            fs = self._factor(n, self.saturation)
            x = tf.clip_by_value(fs * x + (1.0 - fs) * _grey(x), 0.0, 1.0)
        if self.hue_layer is not None and x.shape[-1] == 3:
            x = self.hue_layer(x, training=True)
        return x[0] if single else x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "brightness": self.brightness,
            "contrast": self.contrast,
            "saturation": self.saturation,
            "hue": self.hue,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="kerassev")
class RandomGaussianBlur(keras.layers.RandomGaussianBlur):
    """SimCLR / SimSiam / BYOL's blur: each image blurred with probability ``factor`` by an
    isotropic Gaussian whose sigma is drawn per image from ``sigma``.

    Keras' own layer differs in two ways that halve and correlate the augmentation: it reads
    ``factor=p`` as a range ``(0, p)`` for the blur probability (so images blur with p/2), and it
    draws one ``(sigma_x, sigma_y)`` pair per batch. The kernel runs as two 1-D depthwise
    convolutions (k x 1, then 1 x k; ``2k`` instead of ``k^2`` multiply-adds per pixel), with the
    batch folded into channels so every image gets its own kernel. Borders are reflect-padded as
    torchvision's ``GaussianBlur`` (Keras' zero padding darkens the border of every view).
    """

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        images = data["images"] if isinstance(data, dict) else data
        batch = tf.shape(images)[0] if len(images.shape) == 4 else 1
        seed = seed or self._get_seed_generator(self.backend._backend)
        draw = self.backend.random.uniform((batch,), 0.0, 1.0, seed=seed)
        sigma = self.backend.random.uniform((batch,), self.sigma[0], self.sigma[1], seed=seed)
        return {"should_apply_blur": draw < self.factor[1], "blur_factor": sigma}

    def transform_images(self, images, transformation=None, training=True):
        images = tf.cast(images, self.compute_dtype)
        if not training or transformation is None:
            return images
        single = len(images.shape) == 3
        x = images[None] if single else images
        sigma = tf.cast(transformation["blur_factor"], self.compute_dtype)  # (B,)
        k = self.kernel_size[0]
        offsets = tf.range(k, dtype=self.compute_dtype) - (k - 1) / 2
        taps = tf.exp(-0.5 * (offsets[None, :] / sigma[:, None]) ** 2)  # (B, k)
        taps = taps / tf.reduce_sum(taps, axis=1, keepdims=True)
        shape = tf.shape(x)
        b, h, w, c = shape[0], shape[1], shape[2], shape[3]
        # (B, H, W, C) -> (1, H, W, B*C): one depthwise channel per image and channel
        folded = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, b * c])
        per_channel = tf.repeat(taps, c, axis=0)  # (B*C, k)
        along_h = tf.reshape(tf.transpose(per_channel), [k, 1, b * c, 1])
        along_w = tf.reshape(tf.transpose(per_channel), [1, k, b * c, 1])
        r = k // 2
        folded = tf.pad(folded, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
        blurred = tf.nn.depthwise_conv2d(folded, along_h, [1, 1, 1, 1], "VALID")
        blurred = tf.nn.depthwise_conv2d(blurred, along_w, [1, 1, 1, 1], "VALID")
        blurred = tf.transpose(tf.reshape(blurred, [h, w, b, c]), [2, 0, 1, 3])
        apply = transformation["should_apply_blur"][:, None, None, None]
        out = tf.clip_by_value(tf.where(apply, blurred, x), *self.value_range)
        return out[0] if single else out


def _odd(k: float) -> int:
    k = max(3, int(k))
    return k if k % 2 else k + 1


def make_augmenter(
    policy: str | AugmentConfig,
    *,
    image_size: int,
    seed: int = 0,
    channels: int = 3,
) -> keras.Sequential:
    """Seeded ``keras.Sequential`` for ``policy`` (a name or an :class:`AugmentConfig`).

    Input ``[0, 1]`` float, ``(H, W, C)`` or ``(B, H, W, C)``; crop policies output
    ``image_size`` x ``image_size`` views, ``"mrale"`` keeps the input size (the pipeline resizes
    to ``image_size`` first). Each layer gets its own seed derived from ``seed``.
    """
    cfg = policy if isinstance(policy, AugmentConfig) else AugmentConfig.for_policy(policy)
    with _augment_policy():
        return _build_augmenter(cfg, image_size=image_size, seed=seed, channels=channels)


def _build_augmenter(cfg: AugmentConfig, *, image_size: int, seed: int, channels: int):
    vr = (0.0, 1.0)
    seeds = iter(range(seed * 100, seed * 100 + 100))
    layers: list[keras.layers.Layer] = []
    if cfg.crop_scale is not None:
        layers.append(
            RandomResizedCrop(
                image_size, cfg.crop_scale, cfg.crop_ratio, seed=next(seeds), dtype=AUGMENT_DTYPE
            )
        )
    if cfg.flip:
        layers.append(keras.layers.RandomFlip(cfg.flip, seed=next(seeds), dtype=AUGMENT_DTYPE))
    if cfg.jitter_p > 0:
        colour = channels == 3
        jitter = ColorJitter(
            brightness=cfg.brightness,
            contrast=cfg.contrast,
            saturation=cfg.saturation if colour else 0.0,
            hue=cfg.hue if colour else 0.0,
            seed=next(seeds),
            dtype=AUGMENT_DTYPE,
        )
        layers.append(RandomApply(jitter, cfg.jitter_p, seed=next(seeds), dtype=AUGMENT_DTYPE))
    if cfg.grayscale_p > 0 and channels == 3:
        layers.append(
            keras.layers.RandomGrayscale(cfg.grayscale_p, seed=next(seeds), dtype=AUGMENT_DTYPE)
        )
    if cfg.blur_p > 0:
        k = _odd(cfg.blur_kernel_frac * image_size)
        scale = image_size / cfg.blur_reference_size  # SimCLR's sigma range is for 224 px
        layers.append(
            RandomGaussianBlur(
                factor=cfg.blur_p,  # the probability p (see RandomGaussianBlur)
                kernel_size=k,
                sigma=tuple(float(s) * scale for s in cfg.blur_sigma),
                value_range=vr,
                seed=next(seeds),
                dtype=AUGMENT_DTYPE,
            )
        )
    model = keras.Sequential(layers, name=f"augment_{cfg.policy}")
    model.build((None, None, None, channels))
    return model


def two_views(
    augmenter: Callable, augmenter2: Callable | None = None
) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """``x -> (view1, view2)``: two independent draws (``augmenter2`` for asymmetric policies).

    Use inside ``tf.data``: ``ds.map(two_views(make_augmenter("mrale", image_size=224)))``.
    """
    second = augmenter2 or augmenter

    def fn(x):
        return augmenter(x, training=True), second(x, training=True)

    return fn
