"""Paper 05 recipe: one shared smoke run of `kerassev reproduce affinity` (64-px tiny model, 9 + 3
training slices, 2 epochs; about a minute on two cores) checked for every table and both X2 heat
maps, then resumed; presets, the label -1 image loss and bad data."""

import contextlib
import io
import json
import types

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import require_dataset

from kerassev.cli import main
from kerassev.models.detection.affinity_model import AffinityConfig, AffinityMaskRCNN
from kerassev.recipes.ct_affinity import CtAffinityConfig

ROWS = ["Sens (COVID)", "Sens (CP)", "TNR (Normal)", "F1 (weighted)"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = require_dataset("ct_lesions")
    out = tmp_path_factory.mktemp("affinity_runs")
    argv = ["reproduce", "affinity", "--preset", "smoke", "--out", str(out), "--data", str(root)]
    argv += ["--set", "sweep=32,64"]  # the smoke preset sweeps only the main model's A
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(argv)
    assert code == 0
    (run,) = out.iterdir()
    return types.SimpleNamespace(argv=argv, run=run, printed=printed.getvalue())


@pytest.mark.slow
def test_smoke_run_writes_every_table_and_heat_map(smoke_run):
    run = smoke_run.run
    info = json.loads((run / "run.json").read_text())
    assert info["completed"]
    assert info["stages_done"] == [
        "train", "evaluate", "generalise_finetune", "generalise", "sweep_A64", "sweep",
    ]  # fmt: skip
    cls = pd.read_csv(run / "classification_table.csv")
    assert cls["metric"].tolist() == ROWS
    assert cls["estimate"].between(0, 1).all()
    assert (cls["95% CI lo"] <= cls["estimate"]).all() and (
        cls["estimate"] <= cls["95% CI hi"]
    ).all()
    assert cls["paper: A=256"].tolist() == [0.9174, 0.8535, 0.9726, 0.9194]
    assert set(cls["beats control"]) <= {"yes", "no"}
    caption = (run / "classification_table.md").read_text()
    assert "majority-class control" in caption and "CT phantoms" in caption and "A=32" in caption
    cm = pd.read_csv(run / "confusion_matrix.csv")
    assert cm["true class"].tolist() == ["COVID", "CP", "Normal"]
    assert cm.drop(columns="true class").to_numpy().sum(1).tolist() == [3, 3, 3]

    ap = pd.read_csv(run / "ap_table.csv")
    assert ap["data"].str.startswith("CT phantoms").sum() == 3
    assert ap["data"].str.contains("real ct_lesions slices .*no image class").sum() == 3
    assert ap["AP@[.5:.95]"].between(0, 1).all()
    assert (ap["paper: AP@[.5:.95] (A=64)"].dropna() == 0.42).all()
    assert "real ct_lesions" in (run / "ap_table.md").read_text()

    gen = pd.read_csv(run / "generalisation_table.csv")
    assert gen["metric"].tolist() == ["TNR (Negative)", "Sens (COVID)", "F1 (weighted)"]
    assert gen[["before fine-tuning", "estimate"]].stack().between(0, 1).all()
    sweep = pd.read_csv(run / "sweep_table.csv")
    assert sweep["A"].tolist() == [32, 64] and (sweep["epochs"] == 2).all()
    assert sweep["parameters"].iloc[1] > sweep["parameters"].iloc[0]  # W1 and w2 grow with A
    assert sweep["paper: segm mAP"].tolist()[1] == 0.42

    first, last = (np.load(run / f"x2_{n}.npz")["x2"] for n in ("epoch1", "last"))
    assert first.shape == last.shape == (3, 32, 16)  # one test image per class, A x C
    assert not np.allclose(first, last)  # epoch 2 moved X2
    for name in ("x2_epoch1", "x2_last"):
        assert (run / f"{name}.png").stat().st_size > 0
        assert "X2" in (run / f"{name}.txt").read_text()
    for name in ("classification_table", "ap_table", "sweep_table", "generalisation_table"):
        assert f"## {name}" in smoke_run.printed
    assert not (run / "checkpoints" / "sweep_A64.weights.h5").exists()  # its row is the product


@pytest.mark.slow
def test_resume_redoes_only_unfinished_stages(smoke_run, capsys):
    run = smoke_run.run
    assert main([*smoke_run.argv, "--resume"]) == 2  # a completed run is not resumed
    assert "no unfinished" in capsys.readouterr().err
    info = json.loads((run / "run.json").read_text())
    train_log = (run / "logs" / "train.csv").read_text()
    old_sweep = (run / "sweep_table.csv").read_text()
    # Killed while writing the generalisation table: both last stages are redone.
    info.update(completed=None, stages_done=info["stages_done"][:3])
    (run / "run.json").write_text(json.dumps(info))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*smoke_run.argv, "--resume"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["completed"] and info["stages_done"][-2:] == ["generalise", "sweep"]
    assert (run / "logs" / "train.csv").read_text() == train_log  # nothing retrained
    assert (run / "sweep_table.csv").read_text() == old_sweep  # the A=64 row was kept, not rerun
    moved = list(run.glob("incomplete-*/generalisation_table.csv"))
    assert len(moved) == 1 and (run / "generalisation_table.csv").is_file()


def test_bad_data_folder_is_named(tmp_path, capsys):
    missing = tmp_path / "no_such_ct_lesions"
    argv = ["reproduce", "affinity", "--out", str(tmp_path / "runs"), "--data", str(missing)]
    assert main(argv) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_presets_and_precision():
    paper = CtAffinityConfig.from_preset("paper")
    assert (paper.learning_rate, paper.weight_decay, paper.batch_size, paper.epochs) == (
        1e-5, 1e-3, 1, 100,
    )  # fmt: skip
    assert (paper.affinities, paper.lesion_batch, paper.sieve_stages, paper.roi_nms) == (
        256, 8, 3, 0.25,
    )  # fmt: skip
    assert paper.sweep == (32, 64, 128, 256, 512) and paper.generalise_epochs == 20
    assert paper.train_per_class == 1000 and paper.phantom_min_lesion_size == 10
    a = paper.affinity_config()
    assert (a.affinities, a.roi_batch, a.roi_nms, a.feature_channels) == (256, 8, 0.25, 256)
    smoke = CtAffinityConfig.from_preset("smoke")
    # num_classes excludes background: lesion only; the box predictor has background + lesion
    detector = smoke.model_config(mean=0.3, std=0.2)
    assert detector.num_classes == 1
    from kerassev.models.detection.heads import BoxPredictor

    logits, deltas = BoxPredictor(detector.num_classes)(tf.zeros((1, 8)))
    assert logits.shape[-1] == 2 and deltas.shape[-2] == 2
    assert paper.precision == "auto" and smoke.precision == "float32"
    assert CtAffinityConfig.smoke(precision="bfloat16").precision == "bfloat16"
    with pytest.raises(ValueError, match="preset"):
        CtAffinityConfig.from_preset("gpu")


def test_unlabelled_slices_add_no_image_loss():
    fake = types.SimpleNamespace(
        affinity_config=AffinityConfig(),
        image_loss_fn=keras.losses.BinaryCrossentropy(from_logits=True, reduction=None),
    )
    logits = np.array([[2.0, -1.0, 0.5], [0.3, 0.1, -4.0]], np.float32)
    both = float(AffinityMaskRCNN.image_loss(fake, np.array([0, 2]), logits))
    first = float(AffinityMaskRCNN.image_loss(fake, np.array([0, -1]), logits))
    only_first = float(AffinityMaskRCNN.image_loss(fake, np.array([0]), logits[:1]))
    assert first == pytest.approx(only_first) and first != pytest.approx(both)
    assert float(AffinityMaskRCNN.image_loss(fake, np.array([-1, -1]), logits)) == 0.0


@pytest.mark.slow
def test_covidx_from_a_cncb_folder_trains_without_lesion_masks(shared_data, tmp_path):
    from test_covidx_ct_cncb import _mini_split_root, _write_slice

    root, lines = _mini_split_root(tmp_path, shared_data("covidx_ct"), per_class=2)
    cncb = tmp_path / "CNCB"
    for chosen in lines.values():
        for line in chosen:
            _write_slice(cncb, line.split()[0], size=520)
    out = tmp_path / "runs"
    argv = ["reproduce", "affinity", "--out", str(out), "--cncb", str(cncb), "--covidx", str(root),
            "--set", "train_per_class=2", "epochs=1", "sweep=", "generalise_epochs=0",
            "lesion_slices=false"]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    (run,) = out.iterdir()
    cls = pd.read_csv(run / "classification_table.csv")
    assert cls["metric"].tolist() == ROWS and (cls["n"].iloc[:3] == 2).all()
    assert "COVIDx CT-1" in (run / "classification_table.md").read_text()
    preds = pd.read_csv(run / "predictions.csv")
    assert preds["file"].str.startswith(str(cncb)).all() and len(preds) == 6
    assert np.load(run / "x2_last.npz")["x2"].shape == (3, 32, 16)
    log = pd.read_csv(run / "logs" / "train.csv")
    assert log["segmentation_loss"].iloc[0] == pytest.approx(0.0)  # no lesion masks: off
    assert log["image_class"].iloc[0] > 0
