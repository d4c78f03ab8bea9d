"""PIRL (Misra & van der Maaten 2020) with the jigsaw or the rotation pretext transform.

An image ``I`` (view 1) and a transformed image ``I_t`` (view 2 through the pretext transform):

* ``f(v_I)`` = the encoder's projection of view 1 (backbone + projector);
* ``g(v_It)``: **jigsaw** -- view 2 cut into a 3x3 grid, the tiles shuffled per image, each
  tile through the shared backbone and a linear tile head, the 9 tile embeddings concatenated
  in shuffled order and projected linearly (PIRL §3.2); **rotation** -- view 2 rotated by
  0/90/180/270 degrees (drawn per image) through the backbone and a linear head.

A memory bank holds one L2-normalised embedding per image of the data set, updated with
momentum 0.5 from ``f(v_I)`` (PIRL §3.1); the loss is eq. 5 (:mod:`kerassev.losses.pirl`).
The data must carry each image's row number: ``((view1, view2), index)``.
Not reproduced: PIRL's random 64-of-75 px crop inside each jigsaw cell.

Tiles are ``S // 3`` px; a backbone with a fixed input size gets each tile resized to it (nine
full-size passes per image), one built with ``input_shape=(None, None, C)`` runs them as they are.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from kerassev.losses.pirl import pirl_loss

from .base import TwoViewSSL, backbone_of

__all__ = ["PIRL", "PRETEXTS", "jigsaw_tiles", "random_rotation"]

PRETEXTS = ("jigsaw", "rotation")


def jigsaw_tiles(images, grid: int = 3, *, seed=None):
    """``(B, S, S, C)`` -> shuffled tiles ``(B, grid*grid, S//grid, S//grid, C)``, one random
    permutation per image."""
    b = ops.shape(images)[0]
    t = images.shape[1] // grid
    x = images[:, : grid * t, : grid * t, :]
    c = images.shape[-1]
    x = ops.reshape(x, (b, grid, t, grid, t, c))
    x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (b, grid * grid, t, t, c))
    perm = ops.argsort(keras.random.uniform((b, grid * grid), seed=seed), axis=-1)
    return tf.gather(x, perm, batch_dims=1)


def random_rotation(images, *, seed=None):
    """Each image of ``(B, S, S, C)`` rotated by a random multiple of 90 degrees."""
    k = keras.random.randint((ops.shape(images)[0],), 0, 4, seed=seed)
    rotations = ops.stack([tf.image.rot90(images, i) for i in range(4)], axis=1)
    pick = ops.cast(ops.one_hot(k, 4), images.dtype)[:, :, None, None, None]
    return ops.sum(rotations * pick, axis=1)


def _unit_rows(shape, dtype=None, seed=None):
    return ops.normalize(keras.random.normal(shape, seed=seed, dtype="float32"), axis=-1)


@keras.saving.register_keras_serializable(package="kerassev")
class PIRL(TwoViewSSL):
    """PIRL-Jigsaw (``pretext="jigsaw"``) or PIRL-Rotation (``pretext="rotation"``).

    ``bank_size`` is the number of images (the largest index + 1); ``temperature`` 0.07,
    ``lam`` 0.5 and ``bank_momentum`` 0.5 are PIRL's values.
    """

    def __init__(
        self,
        encoder,
        predictor=None,
        *,
        bank_size: int,
        pretext: str = "jigsaw",
        temperature: float = 0.07,
        lam: float = 0.5,
        bank_momentum: float = 0.5,
        grid: int = 3,
        seed: int | None = None,
        **kwargs,
    ):
        if pretext not in PRETEXTS:
            raise ValueError(f"unknown PIRL pretext {pretext!r}; choose one of {PRETEXTS}")
        super().__init__(encoder, None, **kwargs)
        self.pretext = pretext
        self.bank_size = int(bank_size)
        self.temperature = float(temperature)
        self.lam = float(lam)
        self.bank_momentum = float(bank_momentum)
        self.grid = int(grid)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        dim = int(encoder.output_shape[-1])
        feats = int(backbone_of(encoder).output_shape[-1])
        if pretext == "jigsaw":
            self.tile_head = layers.Dense(dim, name="pirl_tile_head")
            self.tile_head.build((None, feats))
            feats = dim * grid * grid
        self.transform_head = layers.Dense(dim, name="pirl_transform_head")
        self.transform_head.build((None, feats))
        self.bank = self.add_weight(
            shape=(self.bank_size, dim),
            initializer=lambda shape, dtype=None: _unit_rows(shape, seed=seed),
            trainable=False,
            name="memory_bank",
        )

    def _features(self, x, training):
        backbone = backbone_of(self.encoder)
        size = backbone.input_shape[1:3]
        if None not in size and tuple(x.shape[1:3]) != tuple(size):
            x = ops.image.resize(x, size)
        f = backbone(x, training=training)
        return ops.mean(f, axis=(1, 2)) if len(f.shape) == 4 else f

    def transformed_embedding(self, view, training):
        """``g(v_It)`` for a batch of views."""
        if self.pretext == "rotation":
            x = random_rotation(view, seed=self.seed_generator)
            return self.transform_head(self._features(x, training))
        tiles = jigsaw_tiles(view, self.grid, seed=self.seed_generator)
        b, n = ops.shape(tiles)[0], self.grid * self.grid
        flat = ops.reshape(tiles, (-1, *tiles.shape[2:]))
        per_tile = self.tile_head(self._features(flat, training))
        return self.transform_head(ops.reshape(per_tile, (b, n * per_tile.shape[-1])))

    def compute_ssl_loss(self, view1, view2, training, index=None):
        if index is None:
            raise ValueError("PIRL needs each image's row number: feed ((view1, view2), index)")
        index = ops.cast(ops.reshape(index, (-1,)), "int32")
        f = self.encoder(view1, training=training)
        g = self.transformed_embedding(view2, training)
        loss = pirl_loss(f, g, self.bank, index, temperature=self.temperature, lam=self.lam)
        if training:  # m_I <- normalise(0.5 m_I + 0.5 f(v_I)) after the loss has read the bank
            old = ops.take(self.bank, index, axis=0)
            fn = ops.normalize(ops.stop_gradient(ops.cast(f, "float32")), axis=-1)
            new = ops.normalize(self.bank_momentum * old + (1 - self.bank_momentum) * fn, axis=-1)
            self.bank.assign(ops.scatter_update(self.bank, index[:, None], new))
        return loss, f, g

    def get_config(self):
        return {
            **super().get_config(),
            "bank_size": self.bank_size,
            "pretext": self.pretext,
            "temperature": self.temperature,
            "lam": self.lam,
            "bank_momentum": self.bank_momentum,
            "grid": self.grid,
            "seed": self.seed,
        }
