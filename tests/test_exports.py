import keras
import numpy as np
import pytest

from kerassev.exports import check_exports, export_model


def _nested_regressor():
    # An encoder nested inside the regressor, like the paper-01 models.
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    encoder = keras.Model(inp, keras.layers.Dense(8)(x), name="encoder")
    outer_in = keras.Input((32, 32, 3))
    h = keras.layers.BatchNormalization()(keras.layers.Dense(6)(encoder(outer_in)))
    return keras.Model(outer_in, keras.layers.Dense(1)(h), name="regressor")


def test_every_export_reloads_with_matching_predictions(tmp_path):
    model = _nested_regressor()
    images = np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32)
    paths = export_model(model, tmp_path, name="reg")
    assert paths.keras_file.is_file() and paths.saved_model.is_dir() and paths.tflite_file.is_file()
    diffs = check_exports(model, paths, images)
    assert set(diffs) == {"keras", "saved_model", "tflite"}
    assert max(diffs.values()) <= 1e-4


def test_export_refuses_to_overwrite(tmp_path):
    model = _nested_regressor()
    export_model(model, tmp_path, name="reg", tflite=False)
    with pytest.raises(FileExistsError, match=r"reg\.keras"):
        export_model(model, tmp_path, name="reg", tflite=False)


def test_check_exports_catches_a_wrong_export(tmp_path):
    model = _nested_regressor()
    images = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    paths = export_model(model, tmp_path, name="reg", tflite=False)
    model.layers[-1].bias.assign(model.layers[-1].bias + 1.0)  # model drifts after export
    with pytest.raises(AssertionError, match="keras"):
        check_exports(model, paths, images)
