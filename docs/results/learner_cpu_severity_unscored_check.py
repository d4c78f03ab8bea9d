"""Check behind docs/results/learner_cpu.md ("The exported severity model on videos it never saw"):
the run's exported severity model (trained on all 81 scored POCUS videos), applied with
``kerassev predict`` to the POCUS videos that carry **no** severity score, so it never trained on
them. With no score to compare against, the test is whether its predicted severity ranks the
pathological videos (bacterial / viral pneumonia, COVID-19) above the healthy ("regular") ones:
AUC with a patient-bootstrap 95 % CI, against 0.5 for chance.

    RUN=runs/<learner cpu run> KERASSEV_DATA=../shared/data \
        .venv/bin/python docs/results/learner_cpu_severity_unscored_check.py

``EXPORT=<SavedModel>`` checks another export instead of the run's own.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from kerassev import config as kconfig
from kerassev.data.loaders import load_lus_pocus
from kerassev.stats.intervals import bootstrap_interval

run = Path(os.environ["RUN"])
info = json.loads((run / "run.json").read_text())
export = os.environ.get("EXPORT") or info["severity_export"]["saved_model"]  # or another export
videos = load_lus_pocus(kconfig.data_root() / "lus_pocus", kind="video")
videos = videos[videos["label_index"] >= 0]  # drop label_uncertain, as training does
scored = videos[videos["severity"].notna()]
unscored = videos[videos["severity"].isna()].reset_index(drop=True)
shared = sorted(set(unscored["patient_id"]) & set(scored["patient_id"]))
with tempfile.TemporaryDirectory() as tmp:
    out = Path(tmp) / "preds.csv"
    cmd = [sys.executable, "-m", "kerassev.cli", "predict", export,
           *map(str, unscored["path"]), "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True)
    preds = pd.read_csv(out)
merged = unscored.assign(path=unscored["path"].astype(str)).merge(
    preds.assign(path=preds["path"].astype(str)), on="path", how="left"
)
col = next(c for c in preds.columns if c not in ("path", "frames") and "round" not in c)
missing = int(merged[col].isna().sum())
merged = merged[merged[col].notna()]
sick = (merged["label"] != "regular").to_numpy()
auc = roc_auc_score(sick, merged[col])
ci = bootstrap_interval(
    sick.astype(float), merged[col].to_numpy(), roc_auc_score,
    groups=merged["patient_id"].to_numpy(), n_boot=2000, seed=0,
)  # fmt: skip
print(f"export: {export}")
print(f"unscored videos: {len(unscored)} ({missing} unreadable); by label:")
print(merged.groupby("label")[col].describe()[["count", "mean", "50%", "min", "max"]].round(2))
print(f"patients shared with the scored (training) videos: {len(shared)} {shared[:5]}")
print(f"AUC of predicted severity, pathological vs regular: {auc:.3f} "
      f"[{ci.low:.3f}, {ci.high:.3f}] (patient bootstrap, 2000 resamples); chance 0.5")  # fmt: skip
