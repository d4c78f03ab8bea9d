"""LEARNER pre-training model: a Keras model whose train_step adds CL to the HS regression."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from kerassev.models.learner import LearnerPretrainer, build_hs_head
from kerassev.models.tsm import build_tsm_encoder


def test_train_step_fits_mse_plus_cl():
    keras.utils.set_random_seed(0)
    enc = build_tsm_encoder(2, (16, 16, 1), width=4)
    model = LearnerPretrainer(enc, build_hs_head(32, 8), contrastive={"weighted": False})
    model.compile(keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    x = rng.random((16, 2, 16, 16, 1)).astype(np.float32)
    hs = rng.normal(size=16).astype(np.float32)
    before = [w.copy() for w in enc.get_weights()]
    hist = model.fit(x, hs, batch_size=8, epochs=2, verbose=0)
    assert set(hist.history) == {"loss", "mse", "cl"}
    assert all(np.isfinite(v) for v in hist.history["loss"])
    assert hist.history["cl"][0] > 0  # the contrastive term is active
    np.testing.assert_allclose(
        hist.history["loss"][-1], hist.history["mse"][-1] + hist.history["cl"][-1], rtol=1e-4
    )
    assert any(not np.allclose(a, b) for a, b in zip(before, enc.get_weights(), strict=True))
    assert model.predict(x, verbose=0).shape == (16, 1)


def test_pretrainer_saves_as_keras_and_loads_back(tmp_path):
    keras.utils.set_random_seed(0)
    spec = {"weighted": True, "similarity_kind": "l2", "eps": 1e-6}
    model = LearnerPretrainer(
        build_tsm_encoder(2, (16, 16, 1), width=4),
        build_hs_head(32, 8),
        contrastive=spec,
        cl_weight=0.5,
        name="learner_test",
    )
    model.compile(keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(1).random((8, 2, 16, 16, 1)).astype(np.float32)
    model.fit(x, np.arange(8, dtype=np.float32), batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "learner.keras"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.save(path)
        loaded = keras.models.load_model(path)
    assert not [w for w in caught if "built" in str(w.message) or "optimizer" in str(w.message)]
    assert isinstance(loaded, LearnerPretrainer) and loaded.name == "learner_test"
    assert loaded.contrastive == spec and loaded.cl_weight == 0.5
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
