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


def test_a_model_trained_under_mixed_bfloat16_exports_in_float32(tmp_path):
    # precision="auto" trains in bf16 on AMX CPUs; TFLite has no bf16 kernels and a float32
    # export runs anywhere, so exports convert every layer's policy (weights are float32 already).
    from kerassev.exports import float32_model
    from kerassev.precision import precision_scope

    with precision_scope("bfloat16"):
        model = _nested_regressor()
    images = np.random.default_rng(2).random((3, 32, 32, 3), dtype=np.float32)
    paths = export_model(model, tmp_path, name="reg")
    diffs = check_exports(model, paths, images)
    assert set(diffs) == {"keras", "saved_model", "tflite"} and max(diffs.values()) <= 1e-4
    reloaded = keras.models.load_model(paths.keras_file)
    assert {layer.dtype_policy.name for layer in reloaded._flatten_layers()} == {"float32"}
    copy = float32_model(model)
    np.testing.assert_allclose(  # the same function: bf16 round-off only
        copy.predict(images, verbose=0), model.predict(images, verbose=0), rtol=0.05, atol=0.05
    )
    assert model.layers[1].dtype_policy.name == "mixed_bfloat16"  # the original is untouched


def test_metadata_video_fields_round_trip_and_old_exports_still_read():
    import dataclasses
    import json

    from kerassev.exports import ExportMetadata

    video = ExportMetadata(
        task="regression",
        input_size=16,
        channels=1,
        preprocessing="unit",
        input_kind="video",
        frames_per_clip=4,
        frame_sampling="uniform",
        target_range=(0.0, 3.0),
        target_name="severity",
    )
    assert ExportMetadata.from_json(video.to_json()) == video
    # an export written before the video fields existed: its JSON lacks them
    old = {k: v for k, v in dataclasses.asdict(video).items() if k in ("task", "input_size")}
    assert ExportMetadata.from_json(json.dumps(old)).input_kind == "image"
    with pytest.raises(ValueError, match="frames_per_clip"):
        ExportMetadata(task="regression", input_size=16, input_kind="video")
    with pytest.raises(ValueError, match="frame_sampling"):
        ExportMetadata(task="regression", input_size=16, input_kind="video", frames_per_clip=4)
    with pytest.raises(ValueError, match="class_names"):
        ExportMetadata(task="segmentation", input_size=16)


def test_bf16_trained_paper04_export_tflite_and_savedmodel_give_the_same_predict_csv(tmp_path):
    # Issue 21's done-criterion at tiny size: one `kerassev predict` command a form.
    import pandas as pd
    from PIL import Image

    from kerassev.cli import main
    from kerassev.precision import precision_scope
    from kerassev.recipes.covid_ssl import CovidSSLConfig
    from kerassev.recipes.covid_ssl.finetune import build_classifier
    from kerassev.recipes.covid_ssl.reproduce import export_classifier

    config = CovidSSLConfig.smoke()
    rng = np.random.default_rng(0)
    with precision_scope("bfloat16"):
        keras.utils.set_random_seed(0)
        model = build_classifier(config, 2)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        x = rng.random((8, config.image_size, config.image_size, 3), dtype=np.float32)
        model.fit(x, rng.integers(0, 2, 8), epochs=1, verbose=0)  # bf16-trained
        assert model.layers[1].dtype_policy.name == "mixed_bfloat16"
    paths = export_classifier(
        model, config, ("COVID", "Normal"), tmp_path / "exp", name="c", source="t"
    )
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 50), dtype=np.uint8)).save(images / f"{i}.png")
    tables = {}
    for form in (paths.keras_file, paths.saved_model, paths.tflite_file):
        out = tmp_path / f"{form.name}.csv"
        assert main(["predict", str(form), str(images), "--out", str(out)]) == 0
        tables[form.name] = pd.read_csv(out)
    reference = tables.pop(paths.keras_file.name)
    assert len(reference) == 3
    for name, table in tables.items():
        assert list(table["path"]) == list(reference["path"]), name
        clear = (reference["p_COVID"] - 0.5).abs() > 1e-3  # a near-tie may flip within 1e-3
        assert (table["predicted"][clear] == reference["predicted"][clear]).all(), name
        np.testing.assert_allclose(
            table[["p_COVID", "p_Normal"]], reference[["p_COVID", "p_Normal"]], atol=1e-3
        )
