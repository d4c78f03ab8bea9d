"""`kerassev reproduce learner` parses its options into reproduce_learner's arguments."""

import pytest

from kerassev.cli import main
from kerassev.recipes import learner


class _Stop(Exception):
    pass


def test_cli_passes_preset_data_and_overrides(monkeypatch, tmp_path):
    seen = {}

    def fake(config, out, **kwargs):
        seen.update(config=config, out=out, **kwargs)
        raise _Stop

    monkeypatch.setattr(learner, "reproduce_learner", fake)
    argv = ["reproduce", "learner", "--preset", "smoke", "--out", str(tmp_path), "--no-pocus"]
    with pytest.raises(_Stop):
        main([*argv, "--data", "ROOT", "--layout", "adni", "--set", "epochs=2", "--resume"])
    assert seen["config"].preset == "smoke" and seen["config"].epochs == 2
    assert seen["config"].pocus is False and seen["resume"] is True
    assert seen["data_root"] == "ROOT" and seen["layout"] == "adni"


def test_cli_rejects_unknown_override(tmp_path, capsys):
    code = main(["reproduce", "learner", "--out", str(tmp_path), "--set", "nope=1"])
    assert code != 0 and "nope" in capsys.readouterr().err
