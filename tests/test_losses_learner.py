"""LEARNER losses on hand-computed batches (paper 02 eqs. 1 and 3, SPEC 02)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerassev.losses.learner import contrastive_loss, mse_loss, select_pairs

# Four clips: scores 0, 1, 3, 7. Embeddings in 2D at angles 0, 90, 180, 270 degrees:
# cos = 1 on the diagonal, 0 between neighbours (1 apart in index), -1 between 0-2 and 1-3.
HS = np.array([0.0, 1.0, 3.0, 7.0], np.float32)
U = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.float32)
EPS = 1e-6


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_mse_is_the_mean_square():
    assert float(_np(mse_loss([1.0, 2.0], [[0.0], [4.0]]))) == pytest.approx((1 + 4) / 2)


def test_positives_are_nearest_and_negatives_farthest():
    pos, neg = (_np(m) for m in select_pairs(HS))
    # B = 4: each i keeps B/2 - 1 = 1 nearest other as positive, the B/2 = 2 farthest negative.
    # d from 0: [0, 1, 3, 7]; from 1: [1, 0, 2, 6]; from 3: [3, 2, 0, 4]; from 7: [7, 6, 4, 0]
    np.testing.assert_array_equal(pos, [[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
    np.testing.assert_array_equal(neg, [[0, 0, 1, 1], [0, 0, 1, 1], [1, 0, 0, 1], [1, 1, 0, 0]])


def _s(cos):
    return np.clip((1 + cos) / 2, EPS, 1 - EPS)


def test_bounded_cl_hand_computed():
    # positives: (0,1) cos 0, (1,0) cos 0, (2,1) cos 0, (3,2) cos 0 -> -log 0.5 each
    pos = -np.log(_s(0.0))
    # negatives: (0,2) -1, (0,3) 0, (1,2) 0, (1,3) -1, (2,0) -1, (2,3) 0, (3,0) 0, (3,1) -1
    neg = np.mean([-np.log(1 - _s(c)) for c in (-1, 0, 0, -1, -1, 0, 0, -1)])
    assert float(_np(contrastive_loss(U, HS))) == pytest.approx(pos + neg, rel=1e-5)


def test_weighted_cl_hand_computed():
    d_pos = np.array([1, 1, 2, 4], float)  # (0,1) (1,0) (2,1) (3,2)
    w_pos = (1 / (d_pos + EPS)) / np.mean(1 / (d_pos + EPS))
    pos = np.mean(w_pos * -np.log(_s(0.0)))
    d_neg = np.array([3, 7, 2, 6, 3, 4, 7, 6], float)
    c_neg = np.array([-1, 0, 0, -1, -1, 0, 0, -1], float)
    w_neg = (d_neg + EPS) / np.mean(d_neg + EPS)
    neg = np.mean(w_neg * -np.log(1 - _s(c_neg)))
    got = float(_np(contrastive_loss(U, HS, weighted=True)))
    assert got == pytest.approx(pos + neg, rel=1e-5)


def test_l2sim_hand_computed():
    # unit vectors: ||a - b||^2 = 2 - 2 cos; s = exp(-that)
    s_pos = np.exp(-2.0)
    c_neg = np.array([-1, 0, 0, -1, -1, 0, 0, -1], float)
    s_neg = np.exp(-(2 - 2 * c_neg))
    want = -np.log(s_pos) + np.mean(-np.log(1 - s_neg))
    got = float(_np(contrastive_loss(U, HS, similarity_kind="l2")))
    assert got == pytest.approx(want, rel=1e-5)


def test_literal_eq3_is_finite_for_negative_cosines():
    got = float(_np(contrastive_loss(U, HS, form="literal")))
    s_pos = np.full(4, EPS)  # cos 0 clipped to eps
    d_pos = np.array([1, 1, 2, 4], float)
    c_neg = np.clip(np.array([-1, 0, 0, -1, -1, 0, 0, -1], float), EPS, 1)
    d_neg = np.array([3, 7, 2, 6, 3, 4, 7, 6], float)
    want = np.mean(np.log(c_neg * (d_neg + EPS))) + np.mean(-np.log(s_pos) / (d_pos + EPS))
    assert np.isfinite(got) and got == pytest.approx(want, rel=1e-5)


def test_losses_have_finite_gradients_for_random_batches():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for kwargs in ({}, {"weighted": True}, {"similarity_kind": "l2"}, {"form": "literal"}):
        u = tf.Variable(rng.normal(size=(8, 16)).astype(np.float32))
        hs = rng.integers(0, 4, 8).astype(np.float32)  # ties, as with POCUS scores
        with tf.GradientTape() as tape:
            loss = contrastive_loss(u, hs, **kwargs)
        grad = tape.gradient(loss, u)
        assert np.isfinite(float(loss)) and np.isfinite(grad.numpy()).all(), kwargs
