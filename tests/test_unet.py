"""The compact U-Net of kerassev.models.unet: shapes, norms, .keras round trip, loss, overfit."""

import keras
import numpy as np
import pytest

from kerassev.models.unet import bce_dice, build_unet


@pytest.mark.parametrize("norm", ["group", "bn"])
def test_shapes_and_range(norm):
    model = build_unet(64, width=4, depth=3, norm=norm)
    out = model(np.random.default_rng(0).random((2, 64, 64, 1), dtype=np.float32)).numpy()
    assert out.shape == (2, 64, 64, 1) and out.dtype == np.float32
    assert (out > 0).all() and (out < 1).all()
    kinds = {type(layer).__name__ for layer in model.layers}
    assert ("GroupNormalization" in kinds) == (norm == "group")
    assert ("BatchNormalization" in kinds) == (norm == "bn")
    # depth 3 at width 4: the bottom has 4 * 2**3 channels
    assert model.get_layer("bottom_conv2").filters == 32


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        build_unet(60, depth=3)
    with pytest.raises(ValueError, match="norm"):
        build_unet(64, norm="layer")


def test_keras_round_trip(tmp_path):
    model = build_unet(32, width=4, depth=2, mean=0.4, std=0.2)
    model.compile(optimizer="adam", loss=bce_dice)
    x = np.random.default_rng(1).random((1, 32, 32, 1), dtype=np.float32)
    model.train_on_batch(x, np.zeros_like(x))  # builds the optimiser that is saved with it
    path = tmp_path / "unet.keras"
    model.save(path)
    back = keras.saving.load_model(path)
    np.testing.assert_allclose(back(x).numpy(), model(x).numpy(), atol=1e-6)
    assert back.loss is bce_dice or getattr(back.loss, "__name__", "") == "bce_dice"
    # the z-score statistics travel with the model
    z = back.get_layer("zscore")
    np.testing.assert_allclose(z.mean.numpy().ravel(), [0.4], atol=1e-6)


def test_bce_dice_values():
    y = np.zeros((2, 8, 8, 1), np.float32)
    y[0, 2:6, 2:6] = 1
    perfect = np.clip(y, 1e-4, 1 - 1e-4)
    wrong = 1 - perfect
    good, bad = (bce_dice(y, p).numpy() for p in (perfect, wrong))
    assert good.shape == (2,)
    assert good[0] < 0.01 and bad[0] > 1.9  # dice ~0 vs ~1, BCE small vs large
    # a lesion-free image: soft Dice is 1 whatever is predicted; BCE still separates the two
    assert bad[1] - good[1] > 5


def test_overfits_two_slices():
    # Two synthetic slices with a bright blob each: a few hundred Adam steps must reach a
    # training Dice well above a blank or all-lesion guess (which score 0 and ~0.2).
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 0.05, (2, 32, 32, 1)).astype(np.float32)
    y = np.zeros_like(x)
    y[0, 4:14, 6:16] = 1
    y[1, 18:28, 12:26] = 1
    x[y > 0] += 0.4
    keras.utils.set_random_seed(0)
    model = build_unet(32, width=8, depth=2, mean=0.35, std=0.15)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=bce_dice)
    model.fit(x, y, batch_size=1, epochs=40, verbose=0)
    pred = model.predict(x, verbose=0) >= 0.5
    inter = (pred & (y > 0)).sum()
    dice = 2 * inter / (pred.sum() + (y > 0).sum())
    assert dice > 0.9
