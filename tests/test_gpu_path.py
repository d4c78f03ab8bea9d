"""The GPU path a SageMaker user takes, kept honest without a GPU (issue 22, item 6).

``precision=auto`` picks ``mixed_float16`` on a tensor-core GPU (the device query is replaced by
a fake T4); float16 is then forced on this CPU for one SSL step and one detector step: the
optimiser scales the loss, the scaled gradients are finite (the dynamic loss scale is kept, which
it is not after a step with inf/NaN gradients) and the loss tracks float32 from the same weights.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerassev.precision import precision_scope, resolve_precision

INITIAL_SCALE = 2.0**15  # keras.optimizers.LossScaleOptimizer's default


@pytest.mark.parametrize(("capability", "policy"), [((7, 5), "mixed_float16"), ((6, 1), "float32")])
def test_auto_picks_float16_on_a_tensor_core_gpu(monkeypatch, capability, policy):
    gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    real = tf.config.list_physical_devices
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: [gpu] if kind == "GPU" else real(kind)
    )
    details = {"compute_capability": capability, "device_name": "Tesla T4"}
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda device: details)
    choice = resolve_precision("auto", flags=set())  # the device query itself, not gpu=...
    assert choice.policy == policy
    if policy == "mixed_float16":
        assert "Tesla T4" in choice.reason


class _Losses(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rows = []

    def on_train_batch_end(self, batch, logs=None):
        self.rows.append({k: float(v) for k, v in logs.items()})


def _steps(
    build, make_data, setting, steps, weights=None, optimizer=lambda: keras.optimizers.SGD(0.01)
):
    with precision_scope(setting):
        keras.utils.set_random_seed(0)
        model = build()
        if weights is not None:
            model.set_weights(weights)
        start = model.get_weights()
        model.compile(optimizer=optimizer())
        tf.random.set_seed(1)  # the same sampled views / anchors in both runs
        losses = _Losses()
        model.fit(make_data(), epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[losses])
    return losses.rows, start, model


def _check_scaled_and_finite(model, steps):
    opt = model.optimizer
    assert isinstance(opt, keras.optimizers.LossScaleOptimizer)
    # every step applied (a step with non-finite gradients is skipped) and the scale never fell
    assert int(opt.iterations.numpy()) == steps
    assert float(opt.dynamic_scale.numpy()) == INITIAL_SCALE
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_one_float16_ssl_step_on_cpu_tracks_float32():
    from kerassev.data.pipeline import PipelineConfig, build_dataset_from_arrays, view_maker
    from kerassev.recipes.ssl_pretraining import EncoderSpec, build_ssl

    spec = EncoderSpec(method="simsiam", backbone="tiny_cnn", image_size=32, projection_dim=32,
                       predictor_hidden=16, projection_layers=2, l2=None)  # fmt: skip
    pipe = PipelineConfig(image_size=32, batch_size=16, seed=0, two_view_policy="covid_ssl",
                          augment_on="model", drop_remainder=True, repeat=True)  # fmt: skip
    images = np.random.default_rng(0).random((16, 32, 32)).astype("float32")

    def data():  # a new feed per run: a second pass over one would be reshuffled
        return build_dataset_from_arrays(images, pipe)

    def build():
        model = build_ssl(spec, n_images=len(images))
        model.augmenter = view_maker(pipe)
        return model

    f32, start, _ = _steps(build, data, "float32", 1)
    f16, _, model = _steps(build, data, "float16", 1, weights=start)
    assert model.encoder.get_layer("projector").compute_dtype == "float16"
    _check_scaled_and_finite(model, 1)
    # the SimSiam loss lies in [-1, 1]; float16 keeps ~3 significant digits: within 0.002
    assert abs(f16[0]["loss"] - f32[0]["loss"]) < 0.002, (f16, f32)


@pytest.mark.slow
def test_one_float16_detector_step_on_cpu_tracks_float32():
    from detection_harness import tiny_config, two_lesion_batch

    from kerassev.models.detection.mask_rcnn import MaskRCNN

    batch = two_lesion_batch(64)

    def data():
        return tf.data.Dataset.from_tensor_slices(batch).batch(1).repeat()

    def build():
        return MaskRCNN(tiny_config(image_size=64))

    adam = lambda: keras.optimizers.Adam(2e-3)  # noqa: E731
    f32, start, _ = _steps(build, data, "float32", 1, optimizer=adam)
    f16, _, model = _steps(build, data, "float16", 1, weights=start, optimizer=adam)
    assert model.backbone.compute_dtype == "float16"
    _check_scaled_and_finite(model, 1)
    np.testing.assert_allclose(f16[0]["loss"], f32[0]["loss"], rtol=0.01, atol=0.005)
