"""Each notebook's checks cell must fail when a result is wrong, not only when a cell crashes
(issue 23): run a notebook at the smoke preset with one cell inserted before its checks cell that
breaks a result on purpose, and require that the checks cell (the last code cell) stops with an
``AssertionError``. Exits 1 if a broken notebook still passes its checks.

    .venv/bin/python tools/break_checks.py [NOTEBOOK ...]     # default: all of BREAKS

Smoke runs as under nbval (``KERASSEV_PRESET=smoke``, run folders in a temporary folder); about
as long as ``make test``'s notebook part, run one notebook at a time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# notebook -> code run just before its checks cell, making one claimed result wrong
BREAKS = {
    "00_data_tour": "radio = radio.assign(label='COVID')  # every radiograph one class",
    "01_mrale_simsiam": "result.oof['y_pred'] = result.oof['y_true'].mean() + 5.0  # no signal",
    "02_learner_lus": "result.table['macro_f1'] = 1.5  # out of range",
    "03_cohen_severity": "result['results'].numeric['mae_mean'] = 0.0  # not the paper's no-data MAE",
    "04_covid_ssl_transfer": "result.probe['AUC'] = 1.5  # out of range",
    "05_ct_affinity": "result['classification_table'].loc[0, 'estimate'] = 1.5  # out of range",
}
TIMEOUT_S = 1800  # per cell


def break_and_run(name: str) -> tuple[bool, str]:
    """``(checks failed as they should, what happened)`` for notebook ``name``."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    checks = code[-1]
    nb.cells.insert(checks, nbformat.v4.new_code_cell(BREAKS[name]))
    client = NotebookClient(
        nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    )
    try:
        client.execute()
    except CellExecutionError as err:
        failed_at = next((i for i, c in enumerate(nb.cells) if _errored(c)), None)
        if failed_at == checks + 1 and err.ename == "AssertionError":
            return True, f"checks cell raised AssertionError {err.evalue[:120]!r}"
        return False, f"cell {failed_at} raised {err.ename}, not the checks cell's assertion"
    return False, "the checks cell passed with a broken result"


def _errored(cell) -> bool:
    return any(o.get("output_type") == "error" for o in cell.get("outputs", []))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help=f"default: all of {', '.join(BREAKS)}")
    names = parser.parse_args(argv).notebooks or list(BREAKS)
    unknown = sorted(set(names) - set(BREAKS))
    if unknown:
        parser.error(f"no break defined for {unknown}; known: {sorted(BREAKS)}")
    bad = []
    with tempfile.TemporaryDirectory(prefix="kerassev-break-") as scratch:
        os.environ.update(KERASSEV_PRESET="smoke", KERASSEV_RUNS=scratch)
        os.environ.pop("KERASSEV_RENDER_FROM", None)
        for name in names:
            started = time.perf_counter()
            ok, what = break_and_run(name)
            print(f"{'ok  ' if ok else 'FAIL'} {name} ({time.perf_counter() - started:.0f} s): "
                  f"{BREAKS[name]!r} -> {what}", flush=True)  # fmt: skip
            if not ok:
                bad.append(name)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
