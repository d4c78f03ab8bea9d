import json

import pytest

from kerassev.runs import RunError, RunFolder


def test_create_never_reuses_a_folder(tmp_path):
    a = RunFolder.create(tmp_path, "mrale-smoke", config={"lr": 0.02}, seed=1)
    b = RunFolder.create(tmp_path, "mrale-smoke", config={"lr": 0.02}, seed=1)
    assert a.path != b.path
    info = json.loads((a.path / "run.json").read_text())
    assert info["seed"] == 1 and info["config"] == {"lr": 0.02}
    assert "keras" in info["versions"] and "python" in info["versions"]


def test_new_file_refuses_to_overwrite(tmp_path):
    run = RunFolder.create(tmp_path, "x", config={}, seed=0)
    path = run.new_file("tables", "table1.csv")
    path.write_text("result")
    with pytest.raises(FileExistsError, match="table1.csv"):
        run.new_file("tables", "table1.csv")
    assert path.read_text() == "result"


def test_resume_takes_latest_unfinished_run_with_same_config(tmp_path):
    first = RunFolder.create(tmp_path, "mrale-smoke", config={"lr": 0.02}, seed=0)
    first.mark_stage_done("ssl_a")
    resumed = RunFolder.resume(tmp_path, "mrale-smoke", config={"lr": 0.02})
    assert resumed.path == first.path
    assert resumed.stage_done("ssl_a") and not resumed.stage_done("ssl_b")


def test_resume_rejects_changed_config_and_finished_runs(tmp_path):
    run = RunFolder.create(tmp_path, "mrale-smoke", config={"lr": 0.02}, seed=0)
    with pytest.raises(RunError, match="differs in: lr"):
        RunFolder.resume(tmp_path, "mrale-smoke", config={"lr": 0.1})
    run.mark_complete()
    with pytest.raises(RunError, match="no unfinished"):
        RunFolder.resume(tmp_path, "mrale-smoke", config={"lr": 0.02})
    with pytest.raises(RunError, match="already completed"):
        RunFolder.resume(run.path, "mrale-smoke", config={"lr": 0.02})


def test_set_aside_moves_partial_outputs_without_losing_them(tmp_path):
    run = RunFolder.create(tmp_path, "x", config={}, seed=0)
    (run.path / "REPORT.md").write_text("half-written")
    run.subdir("tables").joinpath("table1.csv").write_text("a,b")
    moved = run.set_aside("REPORT.md", "tables", "figures")  # figures never existed
    assert moved is not None and moved.name.startswith("incomplete-")
    assert (moved / "REPORT.md").read_text() == "half-written"
    assert (moved / "tables" / "table1.csv").is_file()
    assert not (run.path / "REPORT.md").exists() and not (run.path / "tables").exists()
    assert run.set_aside("REPORT.md") is None


def test_versions_name_every_package_that_shapes_results():
    from importlib import metadata

    from kerassev.runs import package_versions

    versions = package_versions()
    decoders = ["pycocotools", "av", "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg"]
    for name in [*decoders, "pylibjpeg-rle", "ai-edge-litert", "nibabel", "keras", "kerassev"]:
        assert versions[name] == metadata.version(name), name
    # and every runtime requirement of the installed distribution (none left out by a stale list)
    for requirement in metadata.requires("kerassev"):
        name = requirement.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip()
        if "extra ==" not in requirement and _installed(name):
            assert name in versions, name
    assert "pytest" not in versions  # test extras are not results' dependencies


def _installed(name: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True
