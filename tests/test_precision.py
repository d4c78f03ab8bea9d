"""``precision = auto | float32 | bfloat16 | float16``: what auto picks, and why."""

from __future__ import annotations

import keras
import pytest

from kerassev.precision import PRECISIONS, apply_precision, cpu_flags, resolve_precision


def test_auto_picks_bf16_on_amx_or_avx512_bf16_cpus():
    for flags in ({"amx_bf16", "avx512f"}, {"avx512_bf16"}):
        choice = resolve_precision("auto", flags=flags, gpu=None)
        assert choice.policy == "mixed_bfloat16" and "bf16" in choice.reason


def test_auto_is_float32_without_hardware_support_and_fp16_on_tensor_core_gpus():
    assert resolve_precision("auto", flags={"avx2"}, gpu=None).policy == "float32"
    choice = resolve_precision("auto", flags={"amx_bf16"}, gpu="NVIDIA T4")
    assert choice.policy == "mixed_float16" and "T4" in choice.reason


@pytest.mark.parametrize(
    ("setting", "policy"),
    [("float32", "float32"), ("bfloat16", "mixed_bfloat16"), ("float16", "mixed_float16")],
)
def test_explicit_settings(setting, policy):
    choice = resolve_precision(setting)
    assert choice.policy == policy and choice.to_dict()["setting"] == setting


def test_unknown_setting_names_the_choices():
    with pytest.raises(ValueError, match="auto, float32, bfloat16, float16"):
        resolve_precision("fp8")
    assert PRECISIONS[0] == "auto"


def test_cpu_flags_reads_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 amx_bf16\n")
    assert cpu_flags(info) == {"fpu", "sse2", "amx_bf16"}
    assert cpu_flags(tmp_path / "absent") == set()


def test_apply_sets_the_global_policy():
    try:
        assert apply_precision("bfloat16").policy == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bf16_simsiam_tracks_the_float32_loss_curve():
    """20 SimSiam steps on phantom views: bf16 (fused BN, float32 loss and statistics) follows
    float32 within 0.05 per step (the loss lies in [-1, 1]; bf16 has ~3 significant digits)."""
    import numpy as np
    import tensorflow as tf

    from kerassev.data.phantoms import make_phantom_cohort
    from kerassev.models.backbones import build_backbone
    from kerassev.models.heads import build_encoder, build_predictor
    from kerassev.models.ssl import SimSiam
    from kerassev.precision import precision_scope
    from kerassev.transforms.augment import make_augmenter

    images = make_phantom_cohort(n_patients=8, size=32, seed=0).images[:16]
    x = np.repeat(images[..., None], 3, axis=-1).astype("float32")
    augment = make_augmenter("simsiam", image_size=32, seed=0)
    views = tuple(np.asarray(augment(x, training=True)) for _ in range(2))

    def curve(setting, weights=None):
        with precision_scope(setting):
            keras.utils.set_random_seed(0)
            backbone = build_backbone("tiny_cnn", input_shape=(32, 32, 3))
            model = SimSiam(
                build_encoder(backbone, projection_dim=64), build_predictor(64, hidden=16)
            )
            model(views[0][:2])
            if weights is not None:
                model.set_weights(weights)
            start = model.get_weights()
            model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
            data = tf.data.Dataset.from_tensors(views).repeat(20)
            model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[_PerStep()])
            return np.array(_PerStep.last), start

    f32, start = curve("float32")
    bf16, _ = curve("bfloat16", weights=start)
    assert len(f32) == len(bf16) == 20 and np.isfinite(bf16).all()
    assert f32[-1] < f32[0] - 0.05  # the curve moves, so tracking it means something
    np.testing.assert_allclose(bf16, f32, atol=0.05)


def test_bf16_feature_extraction_leaves_the_linear_probe_unchanged():
    """Paper 03's path under bf16: the same ResNet-50 weights give features within 2 % of
    float32 and an OLS probe whose held-out MAE moves by under 2 % (benchmarks/
    feature_extraction.py measures the speed and the same agreement at 224 px)."""
    import numpy as np

    from kerassev.data.phantoms import make_phantom_cohort
    from kerassev.data.splits import repeated_grouped_splits
    from kerassev.evaluation.linear_probe import linear_probe
    from kerassev.precision import precision_scope
    from kerassev.recipes.cohen.encoders import resnet_encoder

    cohort = make_phantom_cohort(n_patients=40, size=64, seed=1)
    images, table = cohort.images[:40], cohort.table.iloc[:40].reset_index(drop=True)
    y = {"score": table["mrale"].to_numpy(dtype=np.float64)}
    splits = repeated_grouped_splits(
        table, n_repeats=5, test_fraction=0.5, group_col="patient_id", seed=0
    )

    def features(setting, weights=None):
        with precision_scope(setting):
            keras.utils.set_random_seed(0)
            encoder = resnet_encoder("random", "random", image_size=64)
            if weights is not None:
                encoder.model.set_weights(weights)
            return encoder.extract(images)["pooled"], encoder.model.get_weights()

    f32, weights = features("float32")
    bf16, _ = features("bfloat16", weights)
    assert np.linalg.norm(bf16 - f32) / np.linalg.norm(f32) < 0.02
    mae = [
        linear_probe(f[:, :8], y, splits).summary().loc["score", "mae_mean"] for f in (f32, bf16)
    ]
    assert abs(mae[1] - mae[0]) < 0.02 * mae[0]


class _PerStep(keras.callbacks.Callback):
    last: list[float] = []

    def on_train_begin(self, logs=None):
        _PerStep.last = []

    def on_train_batch_end(self, batch, logs=None):
        _PerStep.last.append(float(logs["loss"]))


def test_run_folder_records_the_precision_and_the_scope_restores(tmp_path):
    import json

    from kerassev.precision import precision_scope
    from kerassev.runs import RunFolder

    with precision_scope("bfloat16"):
        run = RunFolder.create(tmp_path, "t", config={"precision": "bfloat16"}, seed=0)
    assert keras.mixed_precision.global_policy().name == "float32"
    stored = json.loads((run.path / "run.json").read_text())["precision"]
    assert stored == [
        {"setting": "bfloat16", "policy": "mixed_bfloat16", "reason": "set explicitly"}
    ]


def test_cli_precision_flag_reaches_every_recipe_config():
    from kerassev.cli import build_parser
    from kerassev.recipes.covid_ssl import CovidSSLConfig
    from kerassev.recipes.mrale import MraleConfig
    from kerassev.recipes.overrides import apply_overrides

    args = build_parser().parse_args(
        ["reproduce", "mrale", "--out", "o", "--precision", "bfloat16", "--set", "image_size=32"]
    )
    config = apply_overrides(MraleConfig.smoke(), args.overrides)
    assert config.precision == "bfloat16" and config.image_size == 32
    assert MraleConfig.paper().precision == CovidSSLConfig.paper().precision == "auto"
    assert MraleConfig.smoke().precision == "float32"  # CI numbers alike on every machine


def test_building_the_cli_parser_imports_no_tensorflow():
    """The CLI imports the precision choices before it silences TensorFlow (kerassev.quiet), so
    this module must not import Keras at the top, or every command prints TF's banners."""
    import subprocess
    import sys

    code = (
        "import sys; from kerassev.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.slow
def test_mask_rcnn_recipe_runs_a_bf16_smoke(shared_data, tmp_path):
    """The detector recipes default to precision=auto (bf16 on AMX CPUs) and their smoke presets
    pin float32, so this is the one end-to-end run of the bf16 path: train (finite losses),
    evaluate, a float32 export (3 real training slices, 2 test slices, 64 px, 1 epoch)."""
    import json

    import numpy as np

    from kerassev.recipes.ct_affinity import CtAffinityConfig
    from kerassev.recipes.ct_lesions import CtLesionsConfig, reproduce

    assert CtLesionsConfig.paper().precision == CtLesionsConfig.cpu().precision == "auto"
    assert CtAffinityConfig.paper().precision == "auto"
    assert CtLesionsConfig.smoke().precision == CtAffinityConfig.smoke().precision == "float32"
    root = shared_data("ct_lesions")
    config = CtLesionsConfig.smoke(
        precision="bfloat16", epochs=1, train_limit=3, test_limit=2, image_size=64,
        data_root=str(root),
    )  # fmt: skip
    result = reproduce(config, tmp_path / "runs")
    info = json.loads((result["run"].path / "run.json").read_text())
    assert info["precision"][0]["policy"] == "mixed_bfloat16" and info["completed"]
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
    log = result["train_log"]
    assert len(log) == 1 and np.isfinite(log[["loss", "mask", "rcnn_box"]].to_numpy()).all()
    assert np.isfinite(result["ap_table"]["AP@[.5:.95]"]).all()
    exported = keras.models.load_model(result["run"].path / "export" / "segmenter.keras")
    assert {layer.dtype_policy.name for layer in exported._flatten_layers()} == {"float32"}
