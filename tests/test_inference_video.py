"""``kerassev predict`` on videos: a tiny Keras clip model exported with video metadata."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kerassev.cli import main
from kerassev.exports import ExportMetadata, export_model
from kerassev.inference import ExportError, predict_files
from kerassev.io.video import read_clip, write_video

T, S = 4, 16


def _clip_model():
    keras.utils.set_random_seed(0)
    clips = keras.Input((T, S, S, 1))
    x = keras.layers.GlobalAveragePooling3D()(keras.layers.Conv3D(2, 3, padding="same")(clips))
    return keras.Model(clips, keras.layers.Dense(1)(x) * 3.0)


def _export(tmp_path, sampling="uniform", tflite=False):
    meta = ExportMetadata(
        task="regression",
        input_size=S,
        channels=1,
        preprocessing="unit",
        input_kind="video",
        frames_per_clip=T,
        frame_sampling=sampling,
        target_name="severity",
        target_range=(0.0, 3.0),
    )
    return export_model(_clip_model(), tmp_path / "exp", name="lus", tflite=tflite, metadata=meta)


def _videos(folder):
    rng = np.random.default_rng(0)
    moving = np.stack([np.roll(np.eye(24, 32) * (0.3 + 0.1 * i), i, 1) for i in range(12)])
    write_video(folder / "a.mp4", moving)
    write_video(folder / "b.avi", rng.random((9, 20, 20)))
    write_video(folder / "c.gif", rng.random((6, 16, 16)))
    write_video(folder / "short.mp4", rng.random((2, 16, 16)))  # fewer frames than T
    (folder / "broken.mov").write_bytes(b"\x00\x00\x00\x18ftypqt  " + b"\x00" * 40)
    (folder / "empty.mp4").write_bytes(b"")
    return folder


def test_video_predict_one_row_a_video_sampled_as_in_training(tmp_path):
    paths = _export(tmp_path, tflite=True)
    folder = _videos(tmp_path / "videos")
    table, skipped = predict_files(paths.keras_file, [folder])
    assert [p.split("/")[-1] for p in table["path"]] == ["a.mp4", "b.avi", "c.gif"]
    assert list(table["frames"]) == [12, 9, 6]
    assert set(skipped) == {str(folder / n) for n in ("short.mp4", "broken.mov", "empty.mp4")}
    assert "too short" in skipped[str(folder / "short.mp4")]
    assert "empty" in skipped[str(folder / "empty.mp4")]
    model = keras.models.load_model(paths.keras_file)
    clip = read_clip(folder / "b.avi", T, size=S, mode="uniform")[..., None]
    assert table["severity"].iloc[1] == pytest.approx(float(model(clip)[0, 0]), abs=1e-5)
    rounded = np.clip(np.rint(table["severity"]), 0, 3)
    np.testing.assert_array_equal(table["severity_rounded"], rounded)
    via_tflite, _ = predict_files(paths.tflite_file, [folder])
    np.testing.assert_allclose(via_tflite["severity"], table["severity"], atol=1e-4)


def test_sliding_sampling_averages_the_clips_of_a_video(tmp_path):
    paths = _export(tmp_path, sampling="sliding")
    video = write_video(tmp_path / "v.mp4", np.random.default_rng(1).random((10, 16, 16)))
    table, _ = predict_files(paths.saved_model, [video])
    clips = read_clip(video, T, size=S, mode="sliding")[..., None]  # 2 windows of 4 frames
    model = keras.models.load_model(paths.keras_file)
    assert table["severity"].iloc[0] == pytest.approx(float(np.mean(model(clips))), abs=1e-5)


def test_a_video_export_given_images_fails_with_one_line(tmp_path, capsys):
    paths = _export(tmp_path)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(image)
    with pytest.raises(ExportError, match="is an image, but .* is a video export"):
        predict_files(paths.keras_file, [image])
    assert main(["predict", str(paths.keras_file), str(image)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "video export" in err[0]


def test_video_predict_cli_writes_csv_and_json(tmp_path):
    paths = _export(tmp_path)
    folder = _videos(tmp_path / "videos")
    assert (
        main(["predict", str(tmp_path / "exp"), str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    )
    csv = pd.read_csv(tmp_path / "p.csv")
    assert list(csv.columns) == ["path", "severity", "severity_rounded", "frames"]
    assert (
        main(
            [
                "predict",
                str(paths.keras_file),
                str(folder / "a.mp4"),
                "--out",
                str(tmp_path / "p.json"),
            ]
        )
        == 0
    )
    js = pd.read_json(tmp_path / "p.json")
    assert js["severity"].iloc[0] == pytest.approx(csv["severity"].iloc[0], abs=1e-6)


def test_real_pocus_videos_decode_through_predict(tmp_path, shared_data):
    root = shared_data("lus_pocus") / "pocus_videos"
    picks = []
    for suffix in (".mp4", ".avi", ".mov", ".gif"):
        found = sorted(p for p in root.rglob("*") if p.suffix.lower() == suffix)
        picks += found[:1]
    assert len(picks) == 4
    paths = _export(tmp_path)
    table, skipped = predict_files(paths.keras_file, picks)
    assert len(table) + len(skipped) == 4 and len(table) >= 3, skipped
    assert (table["frames"] >= T).all() and table["severity"].notna().all()
