"""Export metadata and ``kerassev predict`` on PNG, JPEG and DICOM files (no data set needed)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

from kerassev.cli import main
from kerassev.exports import ExportMetadata, export_model, read_metadata
from kerassev.inference import predict_files
from kerassev.io.dicom_write import write_dicom


def _regressor():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def _images(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 30), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(folder / "b.jpg")
    (folder / "c.png").write_text("broken")
    return folder


def test_metadata_travels_inside_every_export(tmp_path):
    meta = ExportMetadata(task="regression", input_size=16, target_name="mrale", source="test")
    paths = export_model(_regressor(), tmp_path, name="reg", tflite=False, metadata=meta)
    assert read_metadata(paths.keras_file) == meta and read_metadata(paths.saved_model) == meta
    assert meta.kerassev_version
    (tmp_path / "reg.kerassev.json").unlink()  # the copy inside the .keras archive remains
    assert read_metadata(paths.keras_file) == meta
    keras.models.load_model(paths.keras_file)  # the extra archive member does not disturb Keras
    with pytest.raises(ValueError, match="class_names"):
        ExportMetadata(task="classification", input_size=16)
    with pytest.raises(ValueError, match="no kerassev export metadata"):
        read_metadata(tmp_path / "nothing.keras")


def test_predict_names_outputs_and_reports_bad_files(tmp_path, capsys):
    meta = ExportMetadata(task="regression", input_size=16, target_name="mrale")
    paths = export_model(_regressor(), tmp_path / "exp", name="reg", tflite=False, metadata=meta)
    folder = _images(tmp_path / "imgs")
    write_dicom(
        folder / "d.dcm", np.linspace(0, 1, 400, dtype=np.float32).reshape(20, 20), patient_id="p1"
    )
    table, skipped = predict_files(paths.keras_file, [folder, tmp_path / "missing.png"])
    assert [p.split("/")[-1] for p in table["path"]] == ["a.png", "b.jpg", "d.dcm"]
    assert set(skipped) == {str(folder / "c.png"), str(tmp_path / "missing.png")}
    # the same input recipe by hand: grey [0, 1], centre crop + resize, 3 channels, caffe
    import tensorflow as tf

    from kerassev.transforms.geometry import resize_keep_aspect
    from kerassev.transforms.preprocess import get_preprocessor

    grey = np.asarray(Image.open(folder / "a.png"), np.float32)[..., None] / 255.0
    x = tf.image.grayscale_to_rgb(resize_keep_aspect(tf.constant(grey), 16, mode="crop"))
    x = get_preprocessor("imagenet")(x[None]).numpy()
    want = float(keras.models.load_model(paths.keras_file).predict(x, verbose=0)[0, 0])
    assert table["mrale"].iloc[0] == pytest.approx(want, rel=1e-5)
    assert main(["predict", str(paths.saved_model), str(folder / "a.png")]) == 0
    assert "mrale" in capsys.readouterr().out


def test_every_export_form_predicts_the_same_and_finds_its_metadata(tmp_path):
    meta = ExportMetadata(task="regression", input_size=16, target_name="mrale")
    paths = export_model(_regressor(), tmp_path / "exp", name="reg", metadata=meta)
    folder = _images(tmp_path / "imgs")
    (paths.keras_file.with_name("reg.kerassev.json")).unlink()  # .tflite finds the SavedModel's
    tables = {
        form: predict_files(where, [folder])[0]
        for form, where in {
            "keras": paths.keras_file,
            "saved_model": paths.saved_model,
            "tflite": paths.tflite_file,
            "folder": tmp_path / "exp",
        }.items()
    }
    for form, table in tables.items():
        assert list(table["path"]) == list(tables["keras"]["path"]), form
        np.testing.assert_allclose(table["mrale"], tables["keras"]["mrale"], atol=1e-4)


def test_the_wrong_command_or_the_wrong_kind_of_input_says_so(tmp_path):
    from kerassev.inference import ExportError, load_export
    from kerassev.io.video import write_video

    meta = ExportMetadata(task="regression", input_size=16, target_name="mrale")
    paths = export_model(_regressor(), tmp_path, name="reg", tflite=False, metadata=meta)
    with pytest.raises(ExportError, match="use `kerassev predict`"):
        load_export(paths.keras_file, command="segment")
    video = write_video(tmp_path / "v.mp4", np.zeros((4, 16, 16), np.float32))
    with pytest.raises(ExportError, match="is a video, but .* is an image export"):
        predict_files(paths.keras_file, [video])
    (tmp_path / "two.keras").write_bytes(paths.keras_file.read_bytes())
    with pytest.raises(ExportError, match="several exports"):
        load_export(tmp_path)
    (tmp_path / "bad.keras").write_text("not a zip")
    with pytest.raises(ExportError, match="not a zip file"):
        load_export(tmp_path / "bad.keras")
    with pytest.raises(ExportError, match="no such file"):
        load_export(tmp_path / "missing.keras")


def test_predict_streams_batches_not_the_whole_folder(tmp_path):
    from kerassev.inference import load_export
    from kerassev.inference.image import predict_loaded

    meta = ExportMetadata(task="regression", input_size=16, target_name="mrale")
    paths = export_model(_regressor(), tmp_path / "exp", name="reg", tflite=False, metadata=meta)
    folder = _images(tmp_path / "imgs")  # a.png, b.jpg and the broken c.png
    Image.fromarray(np.zeros((18, 18), np.uint8)).save(folder / "d.png")
    export = load_export(paths.keras_file, command="predict")
    seen, model_predict = [], export.predict
    export.predict = lambda x: (seen.append(len(x)), model_predict(x))[1]
    table, skipped = predict_loaded(export, [folder], batch_size=2)
    assert seen == [2, 1] and len(table) == 3  # the model saw one batch at a time
    assert (
        list(skipped) == [str(folder / "c.png")]
        and "Unknown image" in skipped[str(folder / "c.png")]
    )
