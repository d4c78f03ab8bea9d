"""The package outside the checkout: a wheel carries the manifests and py.typed, and an install
from it (not editable) answers ``kerassev --version`` and ``kerassev data list`` from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import kerassev
from kerassev.data.manifest import available_manifests, manifest_dir

REPO = Path(__file__).resolve().parents[1]


def test_version_comes_from_the_distribution_metadata():
    from importlib.metadata import version

    assert kerassev.__version__ == version("kerassev") != "0+unknown"
    assert f'version = "{kerassev.__version__}"' in (REPO / "pyproject.toml").read_text()


def test_cli_prints_the_version(capsys):
    from kerassev.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"kerassev {kerassev.__version__}"


def test_manifests_are_package_data():
    assert manifest_dir().is_relative_to(Path(kerassev.__file__).parent)
    assert "covid_chestxray" in available_manifests() and len(available_manifests()) >= 10
    assert (Path(kerassev.__file__).parent / "py.typed").is_file()


def test_a_wheel_installed_elsewhere_finds_its_manifests(tmp_path):
    # Build from a copy, so the shared checkout gets no build/ or egg-info folders.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "kerassev", source / "kerassev", ignore=shutil.ignore_patterns("__pycache__")
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # --no-build-isolation: the venv's setuptools, no download (tests never use the network)
    build = [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w"]
    subprocess.run([*build, str(tmp_path / "whl")], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "whl").glob("kerassev-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "kerassev/py.typed" in names
    expected = {f"kerassev/data_manifests/{n}.yaml" for n in available_manifests()}
    assert expected <= names
    target = tmp_path / "target"
    subprocess.run([*pip, "install", str(wheel), "--no-deps", "--target", str(target)], check=True)
    # The base interpreter (no venv .pth, so no editable finder): the wheel's package first,
    # the venv's site-packages only for the dependencies.
    env = {**os.environ, "PYTHONPATH": f"{target}{os.pathsep}{sysconfig.get_paths()['purelib']}"}
    base_python = [os.path.realpath(sys.executable), "-s"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> str:
        done = subprocess.run(
            [*base_python, *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = run("-c", "import kerassev; print(kerassev.__file__)")
    assert Path(where.strip()).is_relative_to(target)
    assert run("-m", "kerassev.cli", "--version").strip() == f"kerassev {kerassev.__version__}"
    listing = run("-m", "kerassev.cli", "data", "list")
    assert all(name in listing for name in available_manifests())
