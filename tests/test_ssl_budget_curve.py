"""The SSL budget-curve script (benchmarks/ssl_budget_curve.py) at a tiny size."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ssl_budget_curve.py"


@pytest.mark.slow
def test_budget_curve_runs_resumes_and_plots(shared_data, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("ssl_budget_curve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec.loader.exec_module(module)
    from kerassev.recipes.covid_ssl.config import CovidSSLConfig

    config = CovidSSLConfig.smoke(
        data_root=str(shared_data("covid_radiography")), extra_pool=False, knn_images=40,
        bootstrap_resamples=50,
    )  # fmt: skip
    table = module.budget_curve(config, [1, 2], ["byol", "simsiam"], tmp_path)
    runs = table[table["method"] != module.CONTROL]
    assert sorted(zip(runs["method"], runs["epochs"], strict=True)) == [
        ("byol", 1), ("byol", 2), ("simsiam", 1), ("simsiam", 2),
    ]  # fmt: skip
    assert table["probe_auc"].between(0, 1).all() and table["knn_acc"].between(0, 1).all()
    assert runs["p_paired"].between(0, 1).all()
    assert (tmp_path / "budget_curve.png").is_file()
    # a rerun trains nothing again: every (method, budget) is in the CSV
    calls = []
    monkeypatch.setattr(module, "pretrain_in_run", lambda *a, **k: calls.append(a))
    module.budget_curve(dataclasses.replace(config), [1, 2], ["byol", "simsiam"], tmp_path)
    assert not calls and len(pd.read_csv(tmp_path / "budget_curve.csv")) == 4
