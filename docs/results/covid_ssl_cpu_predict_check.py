"""Check behind docs/results/covid_ssl_cpu.md ("The exported classifier under kerassev predict"):
the run's exported best classifier, applied with ``kerassev predict`` (its SavedModel, its own
preprocessing from the export metadata, files read from disk) to the 100 test radiographs, keeps
the test AUC that Table 2 reports for its row from in-memory predictions.

    RUN=runs/<cpu run> .venv/bin/python docs/results/covid_ssl_cpu_predict_check.py
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from kerassev.recipes.covid_ssl import CovidSSLConfig
from kerassev.recipes.covid_ssl.data import load_data

run = Path(os.environ["RUN"])
info = json.loads((run / "run.json").read_text())
stored = {k: tuple(v) if isinstance(v, list) else v for k, v in info["config"].items()}
config = CovidSSLConfig(**stored)
data = load_data(config)
test = data.table.iloc[data.test_idx]
exports = info["exports"]
with tempfile.TemporaryDirectory() as tmp:
    listing, out = Path(tmp) / "files.txt", Path(tmp) / "preds.csv"
    cmd = [sys.executable, "-m", "kerassev.cli", "predict", exports["saved_model"],
           *map(str, test["path"]), "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True)
    preds = pd.read_csv(out)
positive = data.classes[data.positive]
merged = test[["path", "label_index"]].assign(path=lambda t: t.path.astype(str))
merged = merged.merge(preds.assign(path=preds.path.astype(str)), on="path", how="left")
missing = int(merged[f"p_{positive}"].isna().sum())
auc = roc_auc_score(merged.label_index == data.positive, merged[f"p_{positive}"].fillna(0.5))
table2 = pd.read_csv(run / "tables" / "table2.csv").set_index("key")
row = exports["row"]
print(f"exported row {row}: {len(preds)} of {len(test)} test images predicted ({missing} missing)")
print(
    f"kerassev predict AUC {auc:.3f}; Table 2 final AUC cell: {table2.loc[row, 'AUC final [95% CI]']}"
)
