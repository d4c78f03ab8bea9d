"""LEARNER losses on hand-computed batches (paper 02 eqs. 1 and 3, SPEC 02)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerassev.losses.learner import (
    contrastive_loss,
    mse_loss,
    pair_distances,
    select_pairs,
    wcl_weights,
)

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
    # off-diagonal gaps sum to 2 * (1 + 3 + 7 + 2 + 6 + 4) = 46 over 12 pairs: delta = 0.5 * 46/12
    delta = 0.5 * 46 / 12
    d_pos = np.array([1, 1, 2, 4], float)  # (0,1) (1,0) (2,1) (3,2)
    w_pos = (1 / (d_pos + delta)) / np.mean(1 / (d_pos + delta))
    pos = np.mean(w_pos * -np.log(_s(0.0)))
    d_neg = np.array([3, 7, 2, 6, 3, 4, 7, 6], float)
    c_neg = np.array([-1, 0, 0, -1, -1, 0, 0, -1], float)
    w_neg = (d_neg + delta) / np.mean(d_neg + delta)
    neg = np.mean(w_neg * -np.log(1 - _s(c_neg)))
    got = float(_np(contrastive_loss(U, HS, weighted=True)))
    assert got == pytest.approx(pos + neg, rel=1e-5)


# Tied scores 0, 0, 1, 3 (POCUS-like integers), same embeddings. Gaps: row 0 [0, 0, 1, 3],
# row 1 [0, 0, 1, 3], row 2 [1, 1, 0, 2], row 3 [3, 3, 2, 0]; off-diagonal sum 20 over 12 pairs,
# so delta = 0.5 * 20 / 12 = 5/6. Positives (one each): (0,1) d 0, (1,0) d 0, (2,0) d 1 (index
# breaks the tie with 1), (3,2) d 2. Negatives: (0,2) (0,3) (1,2) (1,3) (2,1) (2,3) (3,0) (3,1).
HS_TIED = np.array([0.0, 0.0, 1.0, 3.0], np.float32)


def test_wcl_weights_with_ties_hand_computed():
    pos, neg = select_pairs(HS_TIED)
    np.testing.assert_array_equal(
        _np(pos), [[0, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]]
    )
    w_pos, w_neg = (_np(w) for w in wcl_weights(pair_distances(HS_TIED), pos, neg))
    raw = np.array([6 / 5, 6 / 5, 6 / 11, 6 / 17])  # 1 / (d + 5/6)
    want = raw / raw.mean()  # 1.4553, 1.4553, 0.6615, 0.4280
    got = [w_pos[0, 1], w_pos[1, 0], w_pos[2, 0], w_pos[3, 2]]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # a tie weighs (1 + 5/6) / (5/6) = 2.2 times the positive one point apart, not 1e6 times
    assert w_pos[0, 1] / w_pos[2, 0] == pytest.approx(2.2, rel=1e-5)
    d_neg = np.array([1, 3, 1, 3, 1, 2, 3, 3], float)
    raw_neg = (d_neg + 5 / 6) / np.mean(d_neg + 5 / 6)
    rows, cols = [0, 0, 1, 1, 2, 2, 3, 3], [2, 3, 2, 3, 1, 3, 0, 1]
    np.testing.assert_allclose(w_neg[rows, cols], raw_neg, rtol=1e-5)


def test_wcl_with_ties_hand_computed_and_not_cl_over_ties():
    c_pos = np.array([0, 0, -1, 0], float)  # (0,1) (1,0) (2,0) (3,2)
    raw = np.array([6 / 5, 6 / 5, 6 / 11, 6 / 17])
    pos = np.mean(raw / raw.mean() * -np.log(_s(c_pos)))
    c_neg = np.array([-1, 0, 0, -1, 0, 0, 0, -1], float)
    d_neg = np.array([1, 3, 1, 3, 1, 2, 3, 3], float)
    neg = np.mean((d_neg + 5 / 6) / np.mean(d_neg + 5 / 6) * -np.log(1 - _s(c_neg)))
    got = float(_np(contrastive_loss(U, HS_TIED, weighted=True)))
    assert got == pytest.approx(pos + neg, rel=1e-5)
    # the old weight 1 / (d + 1e-6) made the positive term the tied pairs' alone: -log 0.5,
    # ignoring (2,0) at cos -1, whose -log(eps) term dominates here
    ties_only = -np.log(_s(0.0)) + neg
    assert got > ties_only + 1.0


def test_wcl_is_invariant_to_the_score_scale():
    rng = np.random.default_rng(1)
    u = rng.normal(size=(8, 4)).astype(np.float32)
    hs = rng.integers(0, 4, 8).astype(np.float32)
    a = float(_np(contrastive_loss(u, hs, weighted=True)))
    assert float(_np(contrastive_loss(u, 10 * hs, weighted=True))) == pytest.approx(a, rel=1e-5)
    # an all-tied batch: every weight 1, wCL equals CL
    ties = np.zeros(8, np.float32)
    assert float(_np(contrastive_loss(u, ties, weighted=True))) == pytest.approx(
        float(_np(contrastive_loss(u, ties))), rel=1e-5
    )


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
