"""Paper 04 recipe on the real radiographs: Table 2 rows and ranges, low-shot, probe, resume,
the export and ``kerassev predict`` on it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from kerassev.cli import main
from kerassev.inference import predict_files
from kerassev.recipes.covid_ssl import CovidSSLConfig, reproduce_covid_ssl
from kerassev.recipes.covid_ssl.data import load_data

pytestmark = pytest.mark.shared_data


def _config():
    return CovidSSLConfig.smoke(
        methods=("cross", "simclr"), low_shot=(0.1, 1.0), low_shot_methods=("cross",),
        bootstrap_resamples=100, finetune_epochs=2, last_epochs=2,
        finetune_lr_grid=(0.03,),  # the lr-search wiring at one extra fine-tune per row
    )  # fmt: skip


@pytest.fixture(scope="module")
def data():
    from conftest import require_dataset

    require_dataset("covid_radiography")
    require_dataset("covid_chestxray")
    return load_data(_config())


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("covid_ssl")
    return out, reproduce_covid_ssl(_config(), out, data=data)


def test_pool_excludes_test_lookalikes_and_test_images(shared_data, data):
    shared_data("covid_radiography")
    test_paths = set(data.table.loc[data.table["split"] == "test", "path"])
    assert not test_paths & set(data.pool.table["path"])
    assert len(data.excluded) >= 1 and (data.excluded["max_corr"] >= 0.97).all()
    assert data.table.groupby("split").size().to_dict() == {"test": 100, "train": 400}
    assert data.classes[data.positive] == "COVID"


@pytest.mark.slow
def test_table2_low_shot_probe_and_skips(shared_data, smoke_run):
    shared_data("covid_radiography")
    _, result = smoke_run
    t2 = result.table2.set_index("key")
    assert list(t2.index) == ["ours", "transfer", "cross", "simclr", "scratch"]
    assert "skipped" in t2.loc["transfer", "note"] and "skipped" in t2.loc["ours", "note"]
    assert t2.loc["cross", "paper: HM"] == "0.955±0.002"
    for row in ("cross", "simclr", "scratch"):
        for m in ("Sen", "Spe", "HM", "AUC", "Acc"):
            mean = float(t2.loc[row, f"{m} (last 2 ep.)"].split("±")[0])
            final, ci = t2.loc[row, f"{m} final [95% CI]"].split(" [")
            lo, hi = (float(v) for v in ci.rstrip("]").split(", "))
            assert 0 <= mean <= 1 and lo <= float(final) <= hi, (row, m)
    assert set(zip(result.low_shot["key"], result.low_shot["fraction"], strict=True)) == {
        ("cross", 0.1), ("cross", 1.0), ("simclr", 1.0), ("scratch", 1.0)
    }  # fmt: skip
    assert list(result.probe["encoder"]) == ["random init (control)", "Cross", "SimCLR"]
    assert result.probe["AUC"].between(0, 1).all()
    holm = pd.to_numeric(result.probe["p (Holm, 2 rows)"], errors="coerce")[1:]
    raw = pd.to_numeric(result.probe["p (paired)"], errors="coerce")[1:]
    assert (holm >= raw).all() and (holm <= 1).all()  # a correction never lowers a p-value
    run = result.run.path
    vs = result.vs_scratch
    assert list(vs["row"]) == ["Cross", "SimCLR"] and set(vs["control"]) == {"From Scratch"}
    assert (vs["p_holm"] >= vs["p_value"]).all() and vs["diff_lo"].le(vs["auc_diff"]).all()
    for name in ("table2", "low_shot", "linear_probe", "paired_auc_tests", "finetune_vs_scratch"):
        assert (run / "tables" / f"{name}.csv").is_file() and (
            run / "tables" / f"{name}.md"
        ).is_file()
    for name in ("views", "ssl_curves", "fig3_low_shot", "fig4_confusion"):
        assert (run / "figures" / f"{name}.png").is_file()
    searched = pd.read_csv(run / "tables" / "lr_search.csv")  # one validated lr per trained row
    assert sorted(searched.loc[searched.chosen, "row"]) == ["cross", "scratch", "simclr"]
    assert not list((run / "checkpoints").glob("*.weights.h5"))  # products kept, checkpoints gone


@pytest.mark.slow
def test_resume_trains_nothing_again(shared_data, smoke_run, data):
    shared_data("covid_radiography")
    out, result = smoke_run
    info_path = result.run.path / "run.json"
    info = json.loads(info_path.read_text())
    seconds = dict(info["stage_seconds"])
    info["completed"] = None
    info["stages_done"] = [s for s in info["stages_done"] if s not in ("outputs", "exports")]
    info_path.write_text(json.dumps(info))
    again = reproduce_covid_ssl(_config(), out, resume=True, export=False, data=data)
    assert again.run.path == result.run.path
    assert json.loads(info_path.read_text())["stage_seconds"] == seconds
    pd.testing.assert_frame_equal(again.table2, result.table2)


@pytest.mark.slow
def test_export_runs_under_kerassev_predict(shared_data, smoke_run, tmp_path):
    shared_data("covid_radiography")
    _, result = smoke_run
    keras_file = result.exports["keras"]
    images = result.run.path.parent / "pngs"
    images.mkdir(exist_ok=True)
    for p in sorted((shared_data("covid_radiography") / "Normal" / "images").glob("*.png"))[:3]:
        shutil.copy(p, images)
    (images / "broken.png").write_bytes(b"not a png")
    table, skipped = predict_files(keras_file, [images])
    assert len(table) == 3 and list(skipped) == [str(images / "broken.png")]
    np.testing.assert_allclose(table[["p_COVID", "p_Normal"]].sum(axis=1), 1.0, atol=1e-5)
    out = tmp_path / "preds.csv"
    assert main(["predict", result.exports["saved_model"], str(images), "--out", str(out)]) == 0
    via_cli = pd.read_csv(out)
    np.testing.assert_allclose(via_cli["p_COVID"], table["p_COVID"], atol=1e-4)


def test_presets_and_cli_config():
    import argparse

    from kerassev.cli.reproduce.covid_ssl import config_from_args, register

    paper = CovidSSLConfig.paper()
    assert (paper.view_size, paper.ssl_batch_size, paper.ssl_epochs, paper.finetune_epochs) == (
        112, 256, 40, 30
    )  # fmt: skip
    assert (paper.lr, paper.momentum, paper.weight_decay, paper.tau) == (0.03, 0.9, 4e-4, 0.996)
    assert paper.low_shot == (0.01, 0.1, 0.5, 1.0) and paper.last_epochs == 10
    spec = paper.encoder_spec("cross")
    assert (spec.projection_hidden, spec.projection_dim, spec.predictor_hidden) == (512, 128, 4096)
    assert spec.predictor_dim is None  # = projector output (SPEC 04)
    assert paper.rows()[0] == "ours" and paper.rows()[-1] == "scratch"
    papers = argparse.ArgumentParser().add_subparsers()
    parser = register(papers)
    args = parser.parse_args(["--preset", "cpu", "--out", "o", "--set", "ssl_epochs=3"])
    cfg = config_from_args(args)
    assert cfg.preset == "cpu" and cfg.ssl_epochs == 3 and cfg.image_size == 64
    assert cfg.finetune_lr_grid == (0.003, 0.01)  # lr per row on a validation split
    with pytest.raises(ValueError, match="unknown SSL methods"):
        CovidSSLConfig.smoke(methods=("mocov3",))


@pytest.mark.slow
def test_transfer_and_ours_run_when_a_weights_file_is_given(shared_data, data, tmp_path):
    """A pre-trained backbone file (here a tiny CNN's) turns the skipped rows into numbers."""
    shared_data("covid_radiography")
    from kerassev.models.backbones import build_backbone

    weights = tmp_path / "pretrained.weights.h5"
    build_backbone("tiny_cnn", input_shape=(32, 32, 3)).save_weights(weights)
    cfg = CovidSSLConfig.smoke(
        methods=("cross",), baselines=("transfer",), low_shot=(1.0,), finetune_epochs=1,
        last_epochs=1, linear_probe=False, bootstrap_resamples=50, imagenet_weights=str(weights),
    )  # fmt: skip
    result = reproduce_covid_ssl(cfg, tmp_path / "runs", data=data, export=False)
    t2 = result.table2.set_index("key")
    assert list(t2.index) == ["ours", "transfer", "cross"] and not result.skipped
    assert (t2["note"] == "").all()


@pytest.mark.slow
def test_the_whole_recipe_runs_in_bf16_and_exports_float32(shared_data, data, tmp_path):
    """Smoke presets pin float32, so this is the one end-to-end run of the path precision=auto
    takes on AMX CPUs: two-view augmentation, SSL (incl. PIRL's tiles), fine-tuning, probe and a
    float32 export that ``kerassev predict`` runs."""
    shared_data("covid_radiography")
    import keras

    cfg = CovidSSLConfig.smoke(
        precision="bfloat16", methods=("cross", "pirl_jigsaw"), low_shot=(1.0,),
        finetune_epochs=1, last_epochs=1, bootstrap_resamples=50,
    )  # fmt: skip
    result = reproduce_covid_ssl(cfg, tmp_path / "runs", data=data)
    info = json.loads((result.run.path / "run.json").read_text())
    assert info["precision"][0]["policy"] == "mixed_bfloat16" and info["completed"]
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
    t2 = result.table2.set_index("key")
    assert {"cross", "pirl_jigsaw", "scratch"} <= set(t2.index)
    exported = keras.models.load_model(result.exports["keras"])
    assert {layer.dtype_policy.name for layer in exported._flatten_layers()} == {"float32"}
    png = sorted((shared_data("covid_radiography") / "COVID" / "images").glob("*.png"))[:1]
    table, skipped = predict_files(result.exports["keras"], png)
    assert len(table) == 1 and not len(skipped)


def test_finetune_lr_is_chosen_on_a_validation_split_of_the_training_images(
    data, tmp_path, monkeypatch
):
    """Issue 18: each lr is scored on held-out *training* images, the best validation AUC wins
    (ties: the smaller lr), and the test images are never passed in."""
    from kerassev.recipes.covid_ssl import lr_search
    from kerassev.runs import RunFolder

    fit, val = lr_search.validation_split(data.labels, data.train_idx, 0.2, seed=0)
    assert not set(val) & set(data.test_idx) and not set(fit) & set(val)
    assert set(fit) | set(val) == set(data.train_idx) and len(val) == 80
    x = np.arange(len(data.labels), dtype=np.float32)  # an image's "pixels" = its index
    quality = {0.003: 0.0, 0.01: 1.0, 0.03: 1.0}  # 0.01 and 0.03 tie: the smaller must win
    seen = []

    def fake_fine_tune(model, x_fit, y_fit, x_val, config, *, run, stage, verbose):
        seen.append((set(x_fit.astype(int)), set(x_val.astype(int)), stage))
        y = data.labels[x_val.astype(int)] == data.positive
        rng = np.random.default_rng(0)
        score = np.where(rng.random(len(y)) < quality[config.finetune_lr], y, rng.random(len(y)))
        probs = np.zeros((1, len(y), len(data.classes)))
        probs[0, :, data.positive] = score
        return probs

    monkeypatch.setattr(lr_search, "fine_tune", fake_fine_tune)
    monkeypatch.setattr(lr_search, "build_classifier", lambda *a, **k: None)
    config = CovidSSLConfig.smoke(finetune_lr_grid=(0.03, 0.003, 0.01))
    assert "per row from 0.03/0.003/0.01" in config.describe()
    run = RunFolder.create(tmp_path, "covid_ssl", config={}, seed=0)
    best, table = lr_search.choose_finetune_lr(config, data, run, "scratch", None, None, x)
    assert best == 0.01 and table.set_index("lr").chosen.to_dict() == {
        0.03: False, 0.003: False, 0.01: True
    }  # fmt: skip
    assert table.set_index("lr").validation_auc[0.003] < 0.7 < table.validation_auc.max()
    test = set(data.test_idx)
    for x_fit, x_val, stage in seen:
        assert not (x_fit | x_val) & test and x_val == set(val) and stage.startswith("lr_search/")
