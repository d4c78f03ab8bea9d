"""Every SSL method through the shared harness, plus what is particular to each."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from ssl_harness import fixed_batch, make_model, run_ssl_method_test

from kerassev.losses.byol import byol_loss, normalized_mse
from kerassev.losses.cross import cross_loss
from kerassev.losses.pirl import bank_nce
from kerassev.losses.simclr import nt_xent
from kerassev.models.ssl import METHODS, ema_momentum, jigsaw_tiles, random_rotation


@pytest.mark.parametrize("method", METHODS)
def test_method_through_the_harness(method, tmp_path):
    run_ssl_method_test(method, tmp_path, flexible=method == "pirl_jigsaw")


def test_pirl_jigsaw_on_a_fixed_size_backbone_resizes_tiles():
    model = make_model("pirl_jigsaw")
    v1, v2, idx = fixed_batch(4)
    loss, f, g = model.compute_ssl_loss(v1, v2, training=False, index=idx)
    assert np.isfinite(float(loss)) and f.shape == g.shape == (4, 16)


def test_normalized_mse_and_cross_loss_values():
    p = tf.constant([[1.0, 0.0], [0.0, 2.0]])
    assert float(normalized_mse(p, 3 * p)) == pytest.approx(0.0, abs=1e-6)
    assert float(normalized_mse(p, -p)) == pytest.approx(4.0, abs=1e-6)
    assert float(normalized_mse(p, p[:, ::-1])) == pytest.approx(2.0, abs=1e-6)
    # eq. 3 = eq. 1 + eq. 2; eq. 2 stops the gradient into Y2' only
    p1, p2, y = (
        tf.constant(np.random.default_rng(i).normal(size=(4, 6)), tf.float32) for i in range(3)
    )
    expected = float(normalized_mse(p1, p2) + normalized_mse(p2, y))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([p1, p2, y])
        loss = cross_loss(p1, p2, y)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert tape.gradient(loss, y) is None and tape.gradient(loss, p1) is not None
    with pytest.raises(ValueError, match="predictor's output size"):
        cross_loss(p1, p2, tf.zeros((4, 3)))
    assert float(byol_loss(p1, p2, p2, p1)) == pytest.approx(
        float(normalized_mse(p1, p1) + normalized_mse(p2, p2)), abs=1e-5
    )


def test_nt_xent_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    z = np.concatenate([z1, z2])
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    s = z @ z.T / 0.5
    losses = []
    for i in range(6):
        j = (i + 3) % 6
        others = [k for k in range(6) if k != i]
        losses.append(-s[i, j] + np.log(np.sum(np.exp(s[i, others]))))
    got = float(nt_xent(tf.constant(z1, tf.float32), tf.constant(z2, tf.float32), 0.5))
    assert got == pytest.approx(np.mean(losses), rel=1e-5)


def test_bank_nce_positive_is_the_indexed_row():
    bank = tf.eye(4)
    q = tf.constant([[1.0, 0, 0, 0], [0, 0, 1.0, 0]])
    good = float(bank_nce(q, bank, tf.constant([0, 2])))
    bad = float(bank_nce(q, bank, tf.constant([1, 3])))
    assert good < bad


def test_pirl_updates_the_bank_rows_of_the_batch_only():
    model = make_model("pirl_rotation")
    v1, v2, idx = fixed_batch(4)
    before = model.bank.numpy().copy()
    model.compile(optimizer="sgd")
    model.train_on_batch((v1, v2), idx)
    after = model.bank.numpy()
    assert not np.allclose(after[:4], before[:4]) and np.allclose(after[4:], before[4:])
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)


def test_jigsaw_tiles_are_a_permutation_of_the_grid():
    x = tf.reshape(tf.range(2 * 6 * 6, dtype=tf.float32), (2, 6, 6, 1))
    tiles = jigsaw_tiles(x, 3, seed=0)
    assert tiles.shape == (2, 9, 2, 2, 1)
    for b in range(2):
        got = sorted(float(t[0, 0, 0]) for t in tiles[b])
        want = sorted(float(x[b, r * 2, c * 2, 0]) for r in range(3) for c in range(3))
        assert got == want


def test_random_rotation_rotates_by_quarter_turns():
    x = tf.random.uniform((8, 5, 5, 1), seed=1)
    out = random_rotation(x, seed=3).numpy()
    for a, b in zip(x.numpy(), out, strict=True):
        assert any(np.allclose(np.rot90(a, k), b) for k in range(4))


def test_ema_momentum_constant_and_cosine():
    assert float(ema_momentum(10, 0.996, None)) == pytest.approx(0.996)
    assert float(ema_momentum(0, 0.996, 100)) == pytest.approx(0.996)
    assert float(ema_momentum(100, 0.996, 100)) == pytest.approx(1.0)


def test_views_made_inside_the_train_step_by_an_augmenter():
    """Raw images in, two augmented views made in the graph (the hook in-graph augmentation uses)."""
    from kerassev.models.ssl import SimSiam
    from kerassev.transforms.augment import make_augmenter

    base = make_model("simsiam")
    model = SimSiam(
        base.encoder, base.predictor, augmenter=make_augmenter("covid_ssl", image_size=32, seed=1)
    )
    model.compile(optimizer="sgd")
    x, _, _ = fixed_batch(8)
    hist = model.fit(x, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
