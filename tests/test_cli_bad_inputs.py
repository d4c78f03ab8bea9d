"""Issue 21's bad-input sweep: every ``kerassev`` command given its likely bad inputs (missing,
empty, truncated, wrong kind of file, wrong kind of model, unknown key, bad value; videos and CT
masks included) answers with ONE error line, no traceback, and exit status 2.

Run in-process (``kerassev.cli.main``), so the sweep costs one TensorFlow import, not one a case.
The recipes' entry points are replaced by a tripwire: a case whose input is not rejected before
the work would start fails as "reached the work" instead of training for minutes.
"""

from __future__ import annotations

import re
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

from kerassev.cli import main
from kerassev.exports import ExportMetadata, export_model
from kerassev.io.video import write_video


class WorkStarted(BaseException):  # BaseException: no `except Exception` in a command hides it
    pass


def _tripwire(*args, **kwargs):
    raise WorkStarted


@pytest.fixture(autouse=True)
def _no_recipe_runs(monkeypatch):
    import kerassev.recipes.cohen as cohen
    import kerassev.recipes.covid_ssl as covid_ssl
    import kerassev.recipes.ct_affinity as ct_affinity
    import kerassev.recipes.ct_lesions as ct_lesions
    import kerassev.recipes.learner as learner
    import kerassev.recipes.mrale as mrale

    for module, name in (
        (mrale, "reproduce_mrale"),
        (learner, "reproduce_learner"),
        (cohen, "reproduce"),
        (covid_ssl, "reproduce_covid_ssl"),
        (ct_lesions, "reproduce"),
        (ct_affinity, "reproduce"),
    ):
        monkeypatch.setattr(module, name, _tripwire)


def _model(shape):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    pooled = (
        keras.layers.GlobalAveragePooling3D()(inputs)
        if len(shape) == 4
        else keras.layers.GlobalAveragePooling2D()(inputs)
    )
    return keras.Model(inputs, keras.layers.Dense(1)(pooled))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every artefact the cases name, made once."""
    d = tmp_path_factory.mktemp("bad")
    f = {"dir": d}
    image_meta = ExportMetadata(task="regression", input_size=16, target_name="mrale")
    f["image_export"] = export_model(
        _model((16, 16, 3)), d / "img", name="reg", tflite=False, metadata=image_meta
    ).keras_file
    video_meta = ExportMetadata(
        task="regression", input_size=16, channels=1, preprocessing="unit", input_kind="video",
        frames_per_clip=4, frame_sampling="uniform", target_name="severity",
    )  # fmt: skip
    f["video_export"] = export_model(
        _model((4, 16, 16, 1)), d / "vid", name="lus", tflite=False, metadata=video_meta
    ).keras_file
    # segmentation metadata on a small model: the command check refuses it before loading
    seg_meta = ExportMetadata(
        task="segmentation", input_size=16, channels=1, preprocessing="unit",
        resize_mode="letterbox", class_names=("background", "lesion"),
    )  # fmt: skip
    f["seg_export"] = export_model(
        _model((16, 16, 1)), d / "seg", name="segmenter", tflite=False, metadata=seg_meta
    ).keras_file
    plain = d / "plain.keras"
    _model((16, 16, 3)).save(plain)  # a Keras model without kerassev metadata
    f["plain_keras"] = plain
    (d / "notazip.keras").write_text("not a zip")
    (d / "empty.keras").write_bytes(b"")
    whole = f["image_export"].read_bytes()
    (d / "truncated.keras").write_bytes(whole[: len(whole) // 2])
    with zipfile.ZipFile(d / "foreign.keras", "w") as z:
        z.writestr("readme.txt", "a zip, but no Keras model in it")
    (d / "garbage.tflite").write_bytes(b"\x00" * 64)
    (d / "empty_folder").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(d / "slice.png")
    (d / "broken.png").write_text("not a png")
    (d / "broken_only").mkdir()
    (d / "broken_only" / "x.png").write_text("not a png")
    write_video(d / "clip.mp4", rng.random((6, 16, 16)))
    clip = (d / "clip.mp4").read_bytes()
    (d / "videos_bad").mkdir()
    (d / "videos_bad" / "truncated.mp4").write_bytes(clip[: len(clip) // 3])
    (d / "videos_bad" / "empty.avi").write_bytes(b"")
    (d / "videos_bad" / "notavideo.mov").write_text("text, not a video")
    # DICOM: a PNG renamed, and a truncated file with the DICM preamble
    (d / "renamed.dcm").write_bytes((d / "slice.png").read_bytes())
    (d / "truncated.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00")
    (d / "ckpt.pt").write_bytes(b"")
    (d / "trunc.pt").write_bytes(b"PK\x03\x04 truncated torch zip")
    # CT data sets: a slice without its mask, and a slice whose mask is truncated
    for name, mask in (("ct_nomask", None), ("ct_badmask", b"\x89PNG\r\n\x1a\n trunc")):
        for rel in ("TrainingSet/MultiClassInfection-Train", "TestingSet/MultiClassInfection-Test"):
            (d / name / rel / "Imgs").mkdir(parents=True)
            (d / name / rel / "GT").mkdir()
            Image.fromarray(np.zeros((16, 16), np.uint8)).save(d / name / rel / "Imgs" / "1.jpg")
            if mask is not None:
                (d / name / rel / "GT" / "1.png").write_bytes(mask)
    return f


def _p(files, key):
    return str(files[key]) if key in files else str(files["dir"] / key)


# (case id, argv with <placeholders> of `files`, text the one error line must contain)
CASES = [
    # predict: the export
    ("predict-missing-model", "predict <dir>/no_such.keras <slice.png>", "no such file"),
    ("predict-not-a-zip", "predict <notazip.keras> <slice.png>", "not a zip"),
    ("predict-empty-model", "predict <empty.keras> <slice.png>", "empty file"),
    ("predict-truncated-model", "predict <truncated.keras> <slice.png>", "truncated.keras"),
    ("predict-zip-not-keras", "predict <foreign.keras> <slice.png>", "no config.json"),
    ("predict-image-as-model", "predict <slice.png> <slice.png>", "not a model export"),
    ("predict-folder-no-export", "predict <empty_folder> <slice.png>", "no model export"),
    ("predict-no-metadata", "predict <plain_keras> <slice.png>", "no kerassev export metadata"),
    ("predict-garbage-tflite", "predict <garbage.tflite> <slice.png>", "not a TFLite"),
    ("predict-segmenter", "predict <seg_export> <slice.png>", "use `kerassev segment`"),
    # predict: the inputs
    ("predict-image-export-video", "predict <image_export> <clip.mp4>", "image export"),
    ("predict-video-export-image", "predict <video_export> <slice.png>", "video export"),
    ("predict-video-export-dicom", "predict <video_export> <renamed.dcm>", "video export"),
    ("predict-bad-videos-only", "predict <video_export> <videos_bad>", "nothing to predict"),
    ("predict-broken-images-only", "predict <image_export> <broken_only>", "nothing to predict"),
    ("predict-missing-input", "predict <image_export> <dir>/nothing.png", "nothing to predict"),
    ("predict-out-exists", "predict <image_export> <slice.png> --out <slice.png>", "exists"),
    ("predict-out-no-folder", "predict <image_export> <slice.png> --out <dir>/x/y.csv", "not exist"),
    ("predict-batch-size-0", "predict <image_export> <slice.png> --batch-size 0", "batch-size"),
    ("predict-batch-size-abc", "predict <image_export> <slice.png> --batch-size abc", "invalid int"),
    # segment
    ("segment-classifier", "segment <image_export> <slice.png> --out <dir>/s1", "use `kerassev predict`"),
    ("segment-missing-slice", "segment <seg_export> <dir>/none.png --out <dir>/s2", "no such file"),
    ("segment-no-slices", "segment <seg_export> <empty_folder> --out <dir>/s3", "no PNG/JPEG"),
    ("segment-bad-threshold", "segment <seg_export> <slice.png> --out <dir>/s4 --score-threshold 2", "score-threshold"),
    ("segment-no-out", "segment <seg_export> <slice.png>", "--out"),
    # dicom
    ("dicom-missing", "dicom info <dir>/none.dcm", "none.dcm"),
    ("dicom-png-renamed", "dicom info <renamed.dcm>", "renamed.dcm"),
    ("dicom-truncated", "dicom info <truncated.dcm>", "truncated.dcm"),
    # data
    ("data-unknown-manifest", "data check no_such_manifest <dir>", "no_such_manifest"),
    ("data-missing-root", "data check covid_chestxray <dir>/nowhere", "does not exist"),
    # convert
    ("convert-missing", "convert xrv <dir>/none.pt <dir>/out.weights.h5", "none.pt"),
    ("convert-empty", "convert xrv <ckpt.pt> <dir>/out.weights.h5", "ckpt.pt"),
    ("convert-truncated", "convert xrv <trunc.pt> <dir>/out.weights.h5", "trunc.pt"),
    ("convert-bad-out-name", "convert xrv <trunc.pt> <dir>/out.h5", ".weights.h5"),
    # reproduce: unknown key and bad value for every paper
    *[
        (f"reproduce-{paper}-unknown-key", f"reproduce {paper} --out <dir>/r --set no_such_key=1", "no_such_key")
        for paper in ("mrale", "learner", "cohen", "covid-ssl", "ct-lesions", "affinity")
    ],
    ("reproduce-mrale-bad-int", "reproduce mrale --out <dir>/r --set image_size=abc", "image_size"),
    ("reproduce-covid-ssl-bad-float", "reproduce covid-ssl --out <dir>/r --set finetune_lr=abc", "finetune_lr"),
    ("reproduce-affinity-bad-optional-int", "reproduce affinity --out <dir>/r --set lesion_train_limit=abc", "lesion_train_limit"),
    ("reproduce-bad-precision", "reproduce mrale --out <dir>/r --set precision=fp8", "precision"),
    ("reproduce-unknown-preset", "reproduce mrale --out <dir>/r --preset fast", "invalid choice"),
    ("reproduce-unknown-paper", "reproduce paper99 --out <dir>/r", "invalid choice"),
    ("unknown-command", "nosuchcommand", "invalid choice"),
]  # fmt: skip

# Data problems surface inside the recipe (after the tripwire), so these run the real entry
# point: each must fail while reading the data, before any training.
DATA_CASES = [
    ("ct-lesions-slice-without-mask", "reproduce ct-lesions --out <dir>/r --data <dir>/ct_nomask", "GT mask"),
    ("ct-lesions-truncated-mask", "reproduce ct-lesions --out <dir>/r --data <dir>/ct_badmask", "1.png"),
    ("ct-lesions-missing-data", "reproduce ct-lesions --out <dir>/r --data <dir>/nowhere", "nowhere"),
]  # fmt: skip


def _run(argv_template, files, capsys):
    argv = [
        re.sub(r"<([^>]+)>", lambda m: _p(files, m.group(1)), part)
        for part in argv_template.split()
    ]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    return code, capsys.readouterr().err


def _check(code, err, expected):
    """One ``kerassev ...: error: ...`` line, the last (``skipped ...`` lines may come before,
    argparse's usage too), no traceback, exit 2."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    errors = [line for line in lines if re.match(r"^(usage: )?kerassev[\w -]*: error: ", line)]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert code == 2, (code, err)
    assert expected in errors[0], errors[0]


@pytest.mark.parametrize(("case", "argv", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_exit_2(case, argv, expected, files, capsys):
    code, err = _run(argv, files, capsys)
    _check(code, err, expected)


@pytest.mark.parametrize(
    ("case", "argv", "expected"),
    DATA_CASES,
    ids=[getattr(c, "values", c)[0] for c in DATA_CASES],
)
def test_bad_data_fails_before_training(case, argv, expected, files, capsys, monkeypatch):
    import importlib

    import kerassev.recipes.ct_lesions as ct_lesions
    import kerassev.training as training

    real = importlib.import_module("kerassev.recipes.ct_lesions.reproduce")

    monkeypatch.setattr(ct_lesions, "reproduce", real.reproduce)
    monkeypatch.setattr(training, "fit_stage", _tripwire)
    monkeypatch.setattr(real, "fit_stage", _tripwire, raising=False)
    code, err = _run(argv, files, capsys)
    _check(code, err, expected)


def test_the_sweep_covers_at_least_25_kinds():
    assert len(CASES) + len(DATA_CASES) >= 25
