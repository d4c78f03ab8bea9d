"""Tables behind docs/results/covid_ssl_cpu.md for a run made before the recipe wrote them:
each fine-tuned row against From Scratch (``table.vs_scratch_tests``: paired AUC bootstrap on the
final models' saved test predictions, Holm over the rows) and the linear probe's p-values with
Holm's adjustment (``stats.significance.holm_adjust``). Reads the run folder; trains nothing.

    RUN=runs/<covid_ssl cpu run> KERASSEV_DATA=../shared/data \
        .venv/bin/python docs/results/covid_ssl_cpu_vs_scratch.py
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from kerassev.recipes.covid_ssl import CovidSSLConfig
from kerassev.recipes.covid_ssl.data import load_data
from kerassev.recipes.covid_ssl.table import vs_scratch_tests
from kerassev.stats.significance import holm_adjust
from kerassev.stats.tables import to_markdown

run = Path(os.environ["RUN"])
info = json.loads((run / "run.json").read_text())
stored = {k: tuple(v) if isinstance(v, list) else v for k, v in info["config"].items()}
config = CovidSSLConfig(**stored)
data = load_data(config)
labels = data.labels[data.test_idx]
preds = {}
for folder in sorted((run / "predictions" / "finetune").glob("*/100pct")):
    files = sorted(folder.glob("epoch*.npy"))[-config.last_epochs :]
    preds[folder.parent.name] = np.stack([np.load(f) for f in files])
vs = vs_scratch_tests(
    preds, labels, data.positive, n_resamples=config.bootstrap_resamples, seed=config.seed
)
print(f"run {run.name}: each row's final model vs From Scratch on {len(labels)} test images")
print(to_markdown(vs.round(4)))

probe = pd.read_csv(run / "tables" / "linear_probe.csv")
p = pd.to_numeric(probe["p (paired)"], errors="coerce")
probe["p (Holm)"] = np.round(holm_adjust(p), 4)
print(f"\nlinear probe, Holm over {int(p.notna().sum())} rows against the random-init control")
print(
    to_markdown(
        probe[["encoder", "AUC", "ΔAUC vs control", "ΔAUC 95% CI", "p (paired)", "p (Holm)"]]
    )
)
