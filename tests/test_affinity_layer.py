"""Affinity layer of paper 05 (eqs. 1-5): shapes for every A, and the algebra of X2 and x3."""

import numpy as np
import pytest
import tensorflow as tf

from kerassev.models.detection.affinity import AffinityLayer, MaskSieve


def test_sieve_keeps_shape_and_has_three_stages():
    sieve = MaskSieve(3)
    x = tf.random.normal((2, 8, 28, 28, 16))
    assert tuple(sieve(x).shape) == (2, 8, 28, 28, 16)
    kinds = [type(layer).__name__ for block in sieve.blocks for layer in block]
    assert kinds == ["Conv2D", "BatchNormalization", "ReLU", "Conv2DTranspose"] * 3


@pytest.mark.parametrize("affinities", [32, 64, 128, 256, 512])
def test_shapes_for_every_affinity_count(affinities):
    layer = AffinityLayer(affinities=affinities, hidden=32)
    logits, x2 = layer(tf.random.normal((1, 8, 28, 28, 16)))
    assert tuple(logits.shape) == (1, 3)
    assert tuple(x2.shape) == (1, affinities, 16)  # X2 is A x C
    assert tuple(layer.w1.shape) == (8, affinities) and tuple(layer.w2.shape) == (affinities,)


def test_x2_and_x3_follow_equations_2_and_5():
    layer = AffinityLayer(affinities=4, hidden=8)
    x = tf.random.normal((2, 8, 28, 28, 6), seed=1)
    _, x2 = layer(x)
    x1 = tf.reduce_mean(layer.sieve(x), axis=(2, 3)).numpy()  # (N, B, C)
    w1 = layer.w1.numpy()
    np.testing.assert_allclose(x2, np.einsum("ba,nbc->nac", w1, x1), rtol=1e-4, atol=1e-5)
    x3 = np.einsum("a,nac->nc", layer.w2.numpy(), x2.numpy())
    expected = layer.logits(layer.fc2(layer.fc1(x3)))
    np.testing.assert_allclose(layer(x)[0], expected, rtol=1e-4, atol=1e-5)
