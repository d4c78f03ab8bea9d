"""`kerassev demo` is `reproduce mrale --preset smoke` on phantoms, through the same parser."""

import pytest

from kerassev.cli import main
from kerassev.recipes import mrale


class _Stop(Exception):
    pass


def test_demo_runs_the_smoke_reproduction_on_phantoms(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_reproduce(config, out, **kwargs):
        seen.update(config=config, out=out, **kwargs)
        raise _Stop

    monkeypatch.setattr(mrale, "reproduce_mrale", fake_reproduce)
    with pytest.raises(_Stop):
        main(["demo", "--out", str(tmp_path), "--resume"])
    assert seen["config"].preset == "smoke" and seen["out"] == str(tmp_path)
    assert seen["image_root"] is None and seen["labels_csv"] is None  # phantoms
    assert seen["resume"] is True and seen["export"] is True
    assert "reproduce mrale --preset smoke" in capsys.readouterr().out
