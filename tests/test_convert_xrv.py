"""kerassev.convert.xrv and `kerassev convert xrv`: parity with a PyTorch reference (SPEC 03)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from reference.torch_xrv_densenet import TorchXRVDenseNet, randomise_

from kerassev.cli import main
from kerassev.convert.xrv import (
    ConversionError,
    convert_checkpoint,
    convert_state_dict,
    load_torch_state_dict,
)
from kerassev.models.xrv_densenet import build_xrv_densenet

pytestmark = pytest.mark.torch

PARITY_ATOL = 1e-4


@pytest.fixture(scope="module")
def torch_model():
    torch.manual_seed(0)
    return randomise_(TorchXRVDenseNet(), seed=0)


@pytest.fixture(scope="module")
def state_dict(torch_model):
    return {k: v.clone() for k, v in torch_model.state_dict().items()}


@pytest.fixture(scope="module")
def checkpoint(state_dict, tmp_path_factory):
    path = tmp_path_factory.mktemp("xrv") / "xrv_state_dict.pt"
    torch.save(state_dict, path)
    return path


@pytest.fixture(scope="module")
def converted(checkpoint):
    out = checkpoint.with_name("xrv.weights.h5")
    return convert_checkpoint(checkpoint, out)


@pytest.fixture(scope="module")
def keras_model(converted):
    return build_xrv_densenet(weights=converted)


def _inputs(batch: int, seed: int = 1) -> tuple[torch.Tensor, np.ndarray]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, 224, 224, generator=gen) * 2048 - 1024  # XRV range [-1024, 1024]
    return x, np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1))


def test_reference_has_torchvision_densenet121_keys(state_dict):
    assert len(state_dict) == 727
    assert state_dict["features.conv0.weight"].shape == (64, 1, 7, 7)
    assert "features.norm0.num_batches_tracked" in state_dict
    assert state_dict["features.denseblock1.denselayer1.norm1.running_var"].shape == (64,)
    assert state_dict["features.denseblock3.denselayer24.conv2.weight"].shape == (32, 128, 3, 3)
    assert state_dict["features.transition1.conv.weight"].shape == (128, 256, 1, 1)
    assert state_dict["features.norm5.weight"].shape == (1024,)
    assert state_dict["classifier.weight"].shape == (18, 1024)


def test_parity_with_pytorch(torch_model, keras_model):
    x_torch, x_keras = _inputs(2)
    with torch.no_grad():
        t_logits, t_features = torch_model(x_torch)
    out = keras_model(x_keras, training=False)
    d_logits = np.abs(np.asarray(out["logits"]) - t_logits.numpy()).max()
    d_features = np.abs(np.asarray(out["features"]) - t_features.numpy()).max()
    print(f"max |keras - torch|: logits {d_logits:.2e}, features {d_features:.2e}")
    # The comparison is meaningful only if the outputs are O(1) and vary between images.
    assert 0.1 < t_logits.abs().max() < 100
    assert t_features.std(0).mean() > 1e-3
    assert d_logits <= PARITY_ATOL
    assert d_features <= PARITY_ATOL


def test_layouts(state_dict, keras_model):
    w = keras_model.get_layer("features.denseblock2.denselayer3.conv2").get_weights()[0]
    src = state_dict["features.denseblock2.denselayer3.conv2.weight"].numpy()
    np.testing.assert_array_equal(w, src.transpose(2, 3, 1, 0))  # OIHW -> HWIO
    gamma, beta, mean, var = keras_model.get_layer("features.transition2.norm").get_weights()
    np.testing.assert_array_equal(var, state_dict["features.transition2.norm.running_var"].numpy())
    np.testing.assert_array_equal(gamma, state_dict["features.transition2.norm.weight"].numpy())
    kernel, bias = keras_model.get_layer("classifier").get_weights()
    np.testing.assert_array_equal(kernel, state_dict["classifier.weight"].numpy().T)
    np.testing.assert_array_equal(bias, state_dict["classifier.bias"].numpy())


def test_missing_key_fails_naming_it(state_dict, keras_model):
    broken = dict(state_dict)
    del broken["features.denseblock3.denselayer7.norm2.running_var"]
    with pytest.raises(
        ConversionError, match=r"features\.denseblock3\.denselayer7\.norm2\.running_var"
    ):
        convert_state_dict(broken, model=keras_model)


def test_module_prefix_and_legacy_keys(state_dict, keras_model):
    plain = convert_state_dict(state_dict, model=keras_model)
    prefixed = convert_state_dict(
        {f"module.{k}": v for k, v in state_dict.items()}, model=keras_model
    )
    legacy = convert_state_dict(
        {
            k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v
            for k, v in state_dict.items()
        },
        model=keras_model,
    )
    assert set(plain) == set(prefixed) == set(legacy)
    assert len(plain) == 120 + 121 + 1
    for name in plain:
        for a, b, c in zip(plain[name], prefixed[name], legacy[name], strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)


def test_unexpected_keys_reported_by_name(state_dict, keras_model):
    extra = dict(state_dict, **{"features.extra.weight": torch.zeros(3)})
    with pytest.warns(UserWarning, match=r"features\.extra\.weight"):
        convert_state_dict(extra, model=keras_model)
    with pytest.raises(ConversionError, match=r"features\.extra\.weight"):
        convert_state_dict(extra, model=keras_model, strict_unexpected=True)


def test_wrong_shape_fails(state_dict, keras_model):
    rgb = dict(state_dict, **{"features.conv0.weight": torch.zeros(64, 3, 7, 7)})
    with pytest.raises(ConversionError, match=r"features\.conv0"):
        convert_state_dict(rgb, model=keras_model)


def test_refuses_to_overwrite(converted, checkpoint):
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_checkpoint(checkpoint, converted)


def test_cli_round_trip_with_op_threshs(state_dict, keras_model, tmp_path, capsys):
    thr = torch.linspace(0.01, 0.2, 18)
    ckpt = tmp_path / "with_threshs.pt"
    torch.save({"module." + k: v for k, v in state_dict.items()} | {"op_threshs": thr}, ckpt)
    out = tmp_path / "cli.weights.h5"
    assert main(["convert", "xrv", str(ckpt), str(out)]) == 0
    assert str(out) in capsys.readouterr().out

    loaded = build_xrv_densenet(weights=out)
    np.testing.assert_allclose(loaded.op_threshs, thr.numpy())
    _, x = _inputs(1, seed=7)
    a, b = keras_model(x, training=False), loaded(x, training=False)
    np.testing.assert_array_equal(a["logits"], b["logits"])
    np.testing.assert_array_equal(a["features"], b["features"])

    # Existing output: one-line error and exit 2 unless --overwrite.
    assert main(["convert", "xrv", str(ckpt), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--overwrite" in err and "\n" not in err

    # --overwrite passes the existence check; a bad checkpoint then fails naming the missing key
    # and leaves the existing output untouched.
    before = out.read_bytes()
    broken = tmp_path / "broken.pt"
    torch.save({k: v for k, v in state_dict.items() if k != "classifier.bias"}, broken)
    assert main(["convert", "xrv", str(broken), str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert "classifier.bias" in err and "\n" not in err
    assert out.read_bytes() == before


def test_cli_missing_file(tmp_path, capsys):
    out = tmp_path / "x.weights.h5"
    assert main(["convert", "xrv", str(tmp_path / "absent.pt"), str(out)]) == 2
    assert "absent.pt" in capsys.readouterr().err
    assert not out.exists()
    assert main(["convert", "xrv", str(tmp_path / "absent.pt"), str(tmp_path / "x.h5")]) == 2
    assert ".weights.h5" in capsys.readouterr().err


def test_pickled_module_needs_allow_pickle(torch_model, state_dict, tmp_path):
    path = tmp_path / "module.pt"
    torch.save(torch_model, path)  # as TorchXRayVision's released .pt files are saved
    with pytest.raises(ConversionError, match=r"torchxrayvision.*state_dict"):
        load_torch_state_dict(path)
    loaded = load_torch_state_dict(path, allow_pickle=True)
    assert set(loaded) == set(state_dict)
    torch.testing.assert_close(loaded["classifier.weight"], state_dict["classifier.weight"])


def test_import_does_not_need_torch():
    code = (
        "import sys; import kerassev.convert.xrv, kerassev.cli.convert; "
        "assert 'torch' not in sys.modules, 'torch imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pickled_module_with_unimportable_class(tmp_path, monkeypatch):
    import types

    fake = types.ModuleType("fake_torchxrayvision_models")

    class DenseNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier = torch.nn.Linear(2, 2)

    DenseNet.__module__ = fake.__name__
    DenseNet.__qualname__ = "DenseNet"
    fake.DenseNet = DenseNet
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    path = tmp_path / "xrv_release.pt"
    torch.save(DenseNet(), path)
    monkeypatch.delitem(sys.modules, fake.__name__)
    with pytest.raises(ConversionError, match=r"pip install torchxrayvision.*state_dict"):
        load_torch_state_dict(path, allow_pickle=True)


def test_missing_torch_gives_install_hint(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(ImportError, match="pip install torch"):
        load_torch_state_dict(checkpoint)
    assert main(["convert", "xrv", str(checkpoint), str(tmp_path / "y.weights.h5")]) == 2
    assert "pip install torch" in capsys.readouterr().err
