"""The README and notebooks say what the code does: named objects exist, notebooks are quiet."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("dotted", sorted(set(re.findall(r"`(kerassev(?:\.\w+)+)`", README))))
def test_every_kerassev_name_in_the_readme_exists(dotted):
    assert _resolves(dotted), f"README names {dotted}, which does not exist"


def test_the_readme_names_no_renamed_layer():
    assert "SeparableGaussianBlur" not in README
    assert not re.search(r"random resized crop[^.]*Keras 3 core", README, re.I)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_start_quiet(notebook):
    # docs/architecture.md: quiet.py serves the CLI and the notebooks
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    first = next(c for c in cells if c["cell_type"] == "code")
    assert "quiet_tensorflow()" in "".join(first["source"])


def test_every_notebook_ends_with_checks_that_tools_break_checks_breaks():
    # issue 23: each notebook's last code cell asserts its story, and tools/break_checks.py
    # holds a deliberate break for every notebook (run it to see each checks cell fail)
    spec = importlib.util.spec_from_file_location("break_checks", REPO / "tools/break_checks.py")
    break_checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(break_checks)
    assert set(break_checks.BREAKS) == {p.stem for p in NOTEBOOKS}
    for notebook in NOTEBOOKS:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        checks = "".join([c for c in cells if c["cell_type"] == "code"][-1]["source"])
        assert checks.count("assert ") >= 5, f"{notebook.name}: the last code cell checks little"
