"""Re-export a finished learner cpu run's severity model by the current rule (the trained row and
readout, head or ridge, with the lowest mean fold MAE; severity.best_row), into a reopened copy
of the run (kerassev.runs.reopen_copy): the run itself is not touched, and only the chosen row is
pre-trained again, on all scored videos. Behind docs/results/learner_cpu.md.

    KERASSEV_DATA=../shared/data .venv/bin/python docs/results/learner_cpu_severity_reexport.py \
        runs/<learner cpu run> /tmp/reexport
"""

import json
import sys
from pathlib import Path

import pandas as pd

from kerassev import config as kconfig
from kerassev.recipes.learner import severity as sev
from kerassev.recipes.learner.config import LearnerConfig
from kerassev.recipes.learner.data import pocus_data
from kerassev.render import reopen_for_render
from kerassev.runs import RunFolder

src, scratch = Path(sys.argv[1]), Path(sys.argv[2])
config, copy = reopen_for_render(src, LearnerConfig.cpu(), scratch)  # the run's own overrides
info = json.loads((copy / "run.json").read_text())
run = RunFolder.resume(copy, info["kind"], config=info["config"])
data = sev.scored(pocus_data(config, kconfig.data_root() / "lus_pocus"))
tables = copy / "tables"
result = sev.SeverityResult(
    pd.read_csv(tables / "severity_table.csv"),
    pd.read_csv(tables / "severity_per_fold.csv"),
    pd.read_csv(copy / "predictions" / "severity_oof.csv"),
    pd.read_csv(tables / "severity_paired_tests.csv"),
    data.source,
)
print("best (row, readout):", sev.best_row(result.per_fold, config))
run.set_aside("exports")
exported = sev.export_severity(result, data, sev.severity_folds(data, config), config, run)
print(exported["note"])
print("SavedModel:", exported["saved_model"])
