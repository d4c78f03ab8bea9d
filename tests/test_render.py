"""Rendering notebooks from a finished run (issue 23 goal 4): the reopened copy and the config
check, on a tiny fake run folder (no training)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from kerassev.render import command_overrides, config_for_run, reopen_for_render
from kerassev.runs import LINK_MIN_BYTES, RunError, RunFolder, reopen_copy


@dataclasses.dataclass(frozen=True)
class _Config:
    preset: str = "cpu"
    precision: str = "auto"
    epochs: int = 3
    seed: int = 0


_COMMAND = ["kerassev", "reproduce", "x", "--preset", "cpu", "--precision", "float32",
            "--set", "epochs=5", "--out", "runs"]  # fmt: skip
_STORED = {"preset": "cpu", "precision": "float32", "epochs": 5, "seed": 0}


def _finished_run(parent, *, config=_STORED, command=_COMMAND, completed="2026-12-04T03:00:00"):
    run = parent / "20261204-030000_x-cpu"
    (run / "tables").mkdir(parents=True)
    (run / "tables" / "t.csv").write_text("a\n1\n")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "big.weights.h5").write_bytes(b"w" * LINK_MIN_BYTES)
    (run / "exports").mkdir()
    (run / "exports" / "m.keras").write_bytes(b"model")
    info = {
        "kind": "x-cpu", "seed": 0, "config": config, "command": command,
        "completed": completed, "stages_done": ["train/a", "outputs", "exports"],
        "stage_seconds": {"train/a": 600.0},
        "exports": {"keras": str(run / "exports" / "m.keras"), "note": "relative runs/x"},
    }  # fmt: skip
    (run / "run.json").write_text(json.dumps(info))
    return run


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_reopen_copy_resumes_without_touching_the_original(tmp_path):
    original = _finished_run(tmp_path / "runs")
    before = _snapshot(original)
    copy = reopen_copy(original, tmp_path / "scratch")
    assert copy == tmp_path / "scratch" / original.name
    info = json.loads((copy / "run.json").read_text())
    assert info["completed"] is None and info["stages_done"] == ["train/a"]  # outputs redone
    assert info["stage_seconds"] == {"train/a": 600.0}
    assert info["exports"]["keras"] == str(copy.resolve() / "exports" / "m.keras")
    assert info["exports"]["note"] == "relative runs/x"  # not a path into the run
    assert info["reopened_from"] == str(original.resolve())
    big, small = "checkpoints/big.weights.h5", "tables/t.csv"
    assert (copy / big).stat().st_ino == (original / big).stat().st_ino  # linked, not copied
    assert (copy / small).stat().st_ino != (original / small).stat().st_ino
    # what a resumed recipe does with the copy: reopen it, move old outputs aside, rewrite them
    run = RunFolder.resume(copy, "x-cpu", config=_STORED)
    assert run.stage_done("train/a") and not run.stage_done("exports")
    run.set_aside("tables", "exports")
    run.new_file("tables", "t.csv").write_text("rewritten")
    run.mark_complete()
    assert _snapshot(original) == before
    with pytest.raises(RunError, match="already exists"):
        reopen_copy(original, tmp_path / "scratch")


def test_reopen_copy_refuses_an_unfinished_run(tmp_path):
    original = _finished_run(tmp_path, completed=None)
    with pytest.raises(RunError, match="not a finished run"):
        reopen_copy(original, tmp_path / "scratch")
    assert not (tmp_path / "scratch").exists()


def test_command_overrides_replays_the_run_command_line():
    assert command_overrides(_COMMAND) == ["precision=float32", "epochs=5"]
    cmd = ["k", "reproduce", "x", "--seed", "3", "--set", "a=1", "b=2", "--distribution", "one"]
    assert command_overrides(cmd) == ["seed=3", "a=1", "b=2", "distribution=one"]
    assert command_overrides(["ipykernel_launcher.py", "-f", "k.json"]) == []


def test_config_for_run_takes_the_runs_overrides(tmp_path):
    run = _finished_run(tmp_path)
    assert config_for_run(_Config(), run) == _Config(precision="float32", epochs=5)
    config, copy = reopen_for_render(run, _Config(), tmp_path / "scratch")
    assert config.epochs == 5 and (copy / "run.json").is_file()


def test_config_for_run_refuses_a_different_configuration(tmp_path):
    # the preset changed since the run: epochs 7 stored, the command gave none
    run = _finished_run(tmp_path / "a", config={**_STORED, "epochs": 7}, command=["nb"])
    with pytest.raises(RunError, match=r"epochs \(run 7, notebook 3\)") as err:
        config_for_run(_Config(), run)
    assert "precision (run 'float32', notebook 'auto')" in str(err.value)
    assert "seed" not in str(err.value)  # only the fields that differ are named
    run = _finished_run(tmp_path / "b", config={"preset": "cpu"})
    with pytest.raises(RunError, match="not in the run: epochs, precision, seed"):
        config_for_run(_Config(precision="float32", epochs=5), run)
    with pytest.raises(RunError):  # nothing is copied when the configuration differs
        reopen_for_render(run, _Config(), tmp_path / "scratch")
    assert not (tmp_path / "scratch").exists()


def _driver():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "render_notebooks.py"
    spec = importlib.util.spec_from_file_location("render_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_render_takes_the_latest_finished_cpu_run_and_skips_without_one(
    tmp_path, monkeypatch, capsys
):
    driver = _driver()
    assert set(driver.RENDERS) >= {"02_learner_lus", "04_covid_ssl_transfer", "05_ct_affinity"}
    old = _finished_run(tmp_path / "a")
    new = _finished_run(tmp_path / "b")
    new = new.rename(new.with_name("20261204-040000_x-cpu"))
    unfinished = _finished_run(tmp_path / "c", completed=None)
    unfinished.rename(unfinished.with_name("20261204-050000_x-cpu"))
    parents = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    assert driver.finished_run(parents, "*_x-cpu*", "cpu") == new
    assert driver.finished_run(parents[:1], "*_x-cpu*", "cpu") == old
    assert driver.finished_run(parents, "*_x-cpu*", "paper") is None
    # a config without a preset field (paper 05's): the command line's --preset decides
    no_field = _finished_run(tmp_path / "d", config={}, command=["kerassev", "reproduce",
                             "affinity", "--preset", "cpu", "--out", "runs"])  # fmt: skip
    assert driver.finished_run([tmp_path / "d"], "*_x-cpu*", "cpu") == no_field
    assert driver.finished_run([tmp_path / "d"], "*_x-cpu*", "smoke") is None
    monkeypatch.setenv("RENDER_RUNS", str(tmp_path / "empty"))
    assert driver.main(["02_learner_lus"]) == 0
    out = capsys.readouterr().out
    assert "skip 02_learner_lus: no finished cpu run" in out
    assert f"`kerassev reproduce learner --preset cpu --out {tmp_path / 'empty'}`" in out


def test_readme_links_rendered_notebooks_that_say_where_they_came_from():
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    table = (repo / "README.md").read_text(encoding="utf-8").split("\n\n## ")[0]
    links = re.findall(r"\]\((docs/notebooks/[\w.]+\.md)\)", table)
    assert links, "the README's first table links no rendered notebook"
    for link in links:
        text = (repo / link).read_text(encoding="utf-8")
        assert re.match(r"> Rendered from run `\d{8}-\d{6}_[\w-]+` \(git \w+, preset cpu\)", text)
        for figure in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text):
            assert (repo / link).parent.joinpath(figure).is_file(), figure


def test_importing_any_recipe_keeps_the_notebooks_matplotlib_backend():
    """A recipe that called matplotlib.use("Agg") on import took the inline backend from
    notebook 05, whose phantom grid then never showed (nor in docs/notebooks)."""
    import subprocess
    import sys

    code = (
        "import importlib, pkgutil, matplotlib; matplotlib.use('svg');"
        "import kerassev.recipes as r;"
        "[importlib.import_module(f'kerassev.recipes.{m.name}') for m in pkgutil.iter_modules(r.__path__)];"
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "svg", out.stdout
