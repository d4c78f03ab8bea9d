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
