"""Paper 02 end to end: pre-train every row's encoder (Algorithm 1), the downstream 3-way pair
classifier on test patients, controls, the POCUS proxy rows and linear probe, Fig. 1, and the
acc / macro-F1 table with the paper's figures in ``paper:`` columns, in one run folder.

Call :func:`reproduce_learner`; the CLI (``kerassev reproduce learner``) and notebook 02 both do.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from kerassev import config as kconfig
from kerassev.distribute import runs_under_configured_distribution
from kerassev.plots import save_figure
from kerassev.precision import runs_in_configured_precision
from kerassev.runs import RunFolder
from kerassev.stats.tables import to_markdown, write_table

from . import figures
from .config import PAPER_ADNI, PAPER_LUS, ROWS, LearnerConfig
from .data import ClipData, inhouse_data, phantom_data, pocus_data
from .evaluate import (
    linear_probe,
    longitudinal_split,
    majority_task,
    pair_task,
    pocus_split,
)
from .pretrain import embed, pretrain_row, random_encoder
from .severity import SeverityResult, run_severity

log = logging.getLogger(__name__)
OUTPUTS = ("tables", "figures", "predictions", "REPORT.md")
FIG1_ROWS = ("tsm_mse", "tsm_cl")


@dataclass
class LearnerResult:
    run: RunFolder
    config: LearnerConfig
    table: pd.DataFrame  # one row per (data, task, comparator); paper columns labelled
    fig1: pd.DataFrame  # spread of embedding distances per comparator
    sources: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)
    severity: SeverityResult | None = None  # the POCUS severity CV and its export (issue 20)

    @property
    def caption(self) -> str:
        data = "; ".join(f"{k}: {v}" for k, v in self.sources.items())
        return f"Data: {data}. Config: {self.config.describe()}. {self.run.describe()}."

    def display_table(self) -> pd.DataFrame:
        keep = ["data", "task", "comparator", "accuracy % (95% CI)", "macro F1 (95% CI)", "pairs"]
        return self.table[keep + [c for c in self.table.columns if c.startswith("paper:")]]

    def report(self) -> str:
        lines = [f"Paper 02 (LEARNER), ours; paper figures in 'paper:' columns. {self.caption}"]
        lines.append(to_markdown(self.display_table()))
        if not self.fig1.empty:
            lines += ["Fig. 1 statistics (test clips):", to_markdown(self.fig1.round(4))]
        if self.severity is not None:
            lines += [
                f"Severity (Lung Severity Score 0-3) on {self.severity.source}, patient-grouped "
                "CV, per-video metrics:",
                to_markdown(self.severity.table),
            ]
            if self.severity.exports:
                lines.append(f"Exported: {self.severity.exports['note']}")
        lines += [f"skipped {k}: {v}" for k, v in self.skipped.items()]
        return "\n".join(lines)


def _row(data: str, task: str, comparator: str, scores, paper: dict | None = None) -> dict:
    out = {"data": data, "task": task, "comparator": comparator, **scores.row()}
    out["paper: accuracy %"] = (paper or {}).get("accuracy %", "")
    out["paper: macro F1"] = (paper or {}).get("macro F1", "")
    return out


def _summary_line(what: str, scores, seconds: float) -> None:
    print(
        f"{what}: accuracy {100 * scores.accuracy.estimate:.1f}%, macro F1 "
        f"{scores.macro_f1.estimate:.3f} on {scores.n_pairs} ({seconds:.0f} s)"
    )


def _longitudinal(data: ClipData, config, run, verbose, rows, preds, embeddings):
    split = longitudinal_split(data, config)
    enc_idx, fit_idx = split["train"], split["val"]  # the pair MLP: patients the encoder never saw
    name = (
        "longitudinal (phantoms)"
        if data.hs_name == "S/F" and "phantom" in data.source
        else data.source.split(" (")[0]
    )
    task = "3-way change, consecutive scans of test patients"
    paper = PAPER_ADNI if data.hs_name == "MMSE" else PAPER_LUS  # the paper's LUS or ADNI table
    for row in config.phantom_rows:
        started = time.perf_counter()
        enc = pretrain_row(
            row, data, split["train"], config, run, stage_prefix="longitudinal",
            val_idx=split["val"], verbose=verbose,
        )  # fmt: skip
        emb = embeddings[row] = embed(enc, data)
        scores, p = pair_task(emb, data, fit_idx, split["test"], config, encoder_idx=enc_idx)
        preds[f"longitudinal_{row}"] = p
        rows.append(_row(name, task, ROWS[row][0], scores, paper.get(row)))
        _summary_line(f"{name} {ROWS[row][0]}", scores, time.perf_counter() - started)
    rand = embed(random_encoder("tsm_mse", config), data)
    scores, p = pair_task(rand, data, fit_idx, split["test"], config, encoder_idx=None)
    rows.append(_row(name, task, "random-init TSM encoder (control)", scores))
    scores, p = majority_task(data, fit_idx, split["test"], config)
    rows.append(_row(name, task, "majority class (control)", scores))
    return split


def _pocus(data: ClipData, config, run, verbose, rows, preds):
    split = pocus_split(data, config)
    name = "POCUS (real)"
    proxy = "PROXY: is clip B less/equally/more severe than A (cross-video, test patients)"
    probe = "4-class linear probe (covid/pneumonia/regular/viral), test patients"
    for row in config.pocus_rows:
        started = time.perf_counter()
        enc = pretrain_row(
            row, data, split["train_scored"], config, run, stage_prefix="pocus", verbose=verbose
        )
        emb = embed(enc, data)
        scores, p = pair_task(
            emb, data, split["fit_scored"], split["test_scored"], config,
            encoder_idx=split["train_scored"], kind="cross",
        )  # fmt: skip
        preds[f"pocus_proxy_{row}"] = p
        rows.append(_row(name, proxy, ROWS[row][0], scores))
        _summary_line(f"{name} proxy {ROWS[row][0]}", scores, time.perf_counter() - started)
        probe_scores, majority = linear_probe(
            emb, data, split["fit"], split["test"], config, encoder_idx=split["train_scored"]
        )
        rows.append(_row(name, probe, ROWS[row][0], probe_scores))
    rand = embed(random_encoder("tsm_mse", config), data)
    scores, _ = pair_task(
        rand, data, split["fit_scored"], split["test_scored"], config, encoder_idx=None,
        kind="cross",
    )  # fmt: skip
    rows.append(_row(name, proxy, "random-init TSM encoder (control)", scores))
    scores, _ = majority_task(data, split["fit_scored"], split["test_scored"], config, kind="cross")
    rows.append(_row(name, proxy, "majority class (control)", scores))
    probe_scores, majority = linear_probe(
        rand, data, split["fit"], split["test"], config, encoder_idx=None
    )
    rows.append(_row(name, probe, "random-init TSM encoder (control)", probe_scores))
    rows.append(_row(name, probe, "majority class (control)", majority))


@runs_in_configured_precision
@runs_under_configured_distribution
def reproduce_learner(
    config: LearnerConfig,
    out: str | Path,
    *,
    data_root: str | Path | None = None,
    layout: str = "lus_inhouse",
    pocus_root: str | Path | None = None,
    resume: bool = False,
    verbose: int = 0,
) -> LearnerResult:
    """Run paper 02 on phantoms (or ``data_root`` in ``layout``) and the real POCUS proxy."""
    # a new model per row retraces predict: TensorFlow's retracing warnings are noise here
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    kind = f"learner-{config.preset}"
    stored = {
        **dataclasses.asdict(config),
        "data_root": None if data_root is None else str(data_root),
        "layout": layout,
        "pocus_root": None if pocus_root is None else str(pocus_root),
    }
    if resume:
        run = RunFolder.resume(out, kind, config=stored)
    else:
        run = RunFolder.create(out, kind, config=stored, seed=config.seed)
    data = phantom_data(config) if data_root is None else inhouse_data(config, data_root, layout)
    sources = {"longitudinal": data.source}
    skipped = {f"unreadable {p}": why for p, why in data.skipped.items()}
    rows, preds, embeddings, severity = [], {}, {}, None
    split = _longitudinal(data, config, run, verbose, rows, preds, embeddings)

    pocus_dir = Path(pocus_root) if pocus_root else kconfig.data_root() / "lus_pocus"
    if not config.pocus:
        skipped["POCUS proxy"] = "pocus=False in the configuration"
    elif not pocus_dir.is_dir():
        skipped["POCUS proxy"] = f"{pocus_dir} is absent (set {kconfig.DATA_ENV})"
    else:
        pdata = pocus_data(config, pocus_dir)
        sources["POCUS"] = pdata.source
        skipped.update({f"unreadable {p}": why for p, why in pdata.skipped.items()})
        _pocus(pdata, config, run, verbose, rows, preds)
        if config.severity:
            severity = run_severity(pdata, config, run, verbose=verbose)
        else:
            skipped["POCUS severity"] = "severity=False in the configuration"

    hs = data.table["hs"].to_numpy(float)
    distances = {
        ROWS[r][0]: figures.embedding_distances(embeddings[r], hs, split["test"])
        for r in FIG1_ROWS
        if r in embeddings
    }
    result = LearnerResult(
        run, config, pd.DataFrame(rows), figures.distance_summary(distances) if distances else pd.DataFrame(),
        sources, skipped, severity,
    )  # fmt: skip
    _write_outputs(result, preds, distances, data.hs_name)
    exports = severity.exports if severity is not None else {}
    run.mark_complete(table=result.table.to_dict("records"), skipped=skipped, exports=exports)
    return result


def _write_outputs(result: LearnerResult, preds, distances, hs_name: str) -> None:
    run = result.run
    run.set_aside(*OUTPUTS)  # partial outputs of an interrupted attempt
    write_table(result.table, run.subdir("tables"), "learner_table")
    if not result.fig1.empty:
        write_table(result.fig1, run.subdir("tables"), "fig1_distance_spread")
        fig = figures.fig1(distances, hs_name)
        save_figure(
            fig,
            run.path / "figures" / "fig1_cosine_distance.png",
            "Fig. 1 (ours): cosine distance between test-clip embeddings against |label "
            f"difference|, MSE-only vs MSE+CL pre-training. {result.caption}",
        )
        plt.close(fig)
    for name, df in preds.items():
        df.to_csv(run.new_file("predictions", f"{name}.csv"), index=False)
    if result.severity is not None:
        sev = result.severity
        write_table(sev.table, run.subdir("tables"), "severity_table")
        write_table(sev.per_fold, run.subdir("tables"), "severity_per_fold")
        write_table(sev.tests, run.subdir("tables"), "severity_paired_tests")
        sev.oof.to_csv(run.new_file("predictions", "severity_oof.csv"), index=False)
    run.new_file("REPORT.md").write_text(result.report() + "\n", encoding="utf-8")
