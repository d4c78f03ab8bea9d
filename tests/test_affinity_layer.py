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


@pytest.mark.parametrize("vectorise", ["conv", "mean"])
def test_x2_and_x3_follow_equations_2_and_5(vectorise):
    layer = AffinityLayer(affinities=4, hidden=8, vectorise=vectorise)
    x = tf.random.normal((2, 8, 28, 28, 6), seed=1)
    _, x2 = layer(x)
    x1 = layer._vectorise(layer.sieve(x), training=False).numpy()  # (N, B, C)
    if vectorise == "mean":
        np.testing.assert_allclose(x1, tf.reduce_mean(layer.sieve(x), axis=(2, 3)), atol=1e-6)
    w1 = layer.w1.numpy()
    np.testing.assert_allclose(x2, np.einsum("ba,nbc->nac", w1, x1), rtol=1e-4, atol=1e-5)
    x3 = np.einsum("a,nac->nc", layer.w2.numpy(), x2.numpy())
    expected = layer.logits(layer.fc2(layer.fc1(x3)))
    np.testing.assert_allclose(layer(x)[0], expected, rtol=1e-4, atol=1e-5)


def test_the_authors_vectorisation_and_initialisation():
    """COVID-Affinity-Model's AffinityLayer: conv 2x2/2, conv 2x2/2, conv 7x7 (each ReLU + BN) to
    1 x 1; W1, w2 ~ N(0, 1) (torch.randn), not Glorot's ~180x smaller x3; FC width 128."""
    layer = AffinityLayer(affinities=256)
    layer(tf.zeros((1, 8, 28, 28, 16)))
    convs = [x for x in layer.vector_layers if type(x).__name__ == "Conv2D"]
    assert [c.kernel.shape[:2] for c in convs] == [(2, 2), (2, 2), (7, 7)]
    assert [c.strides for c in convs] == [(2, 2), (2, 2), (1, 1)]
    assert 0.9 < np.std(layer.w1.numpy()) < 1.1 and 0.85 < np.std(layer.w2.numpy()) < 1.15
    assert layer.fc1.units == 128 and layer.get_config()["vectorise"] == "conv"
    glorot = AffinityLayer(affinities=256, affinity_init="glorot")
    glorot(tf.zeros((1, 8, 28, 28, 16)))
    assert np.std(glorot.w1.numpy()) < 0.1
    with pytest.raises(ValueError, match="divisible by 4"):
        AffinityLayer()(tf.zeros((1, 8, 14, 14 + 2, 4)))
