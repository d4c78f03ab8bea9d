"""Paper 03 end to end: :func:`reproduce` writes Table 1 and Fig. 2-4 into a fresh run folder.

Load the tables and splits (:mod:`.data`), build the encoders and their feature rows
(:mod:`.features`), run the linear probe (:mod:`.table`), then write the tables and, with
:func:`write_figures`, the paper's Fig. 2-4 (:mod:`.figures`), each captioned with the data and
configuration that made it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kerassev.distribute import runs_under_configured_distribution
from kerassev.evaluation.linear_probe import fit_ols
from kerassev.plots import predicted_vs_true, save_figure
from kerassev.precision import runs_in_configured_precision
from kerassev.runs import RunFolder
from kerassev.stats.tables import to_markdown

from .config import PAPER_SOURCE, RUN_KIND, TARGET_BY_COLUMN, CohenConfig
from .data import ImageBank, data_description, load_tables, make_splits
from .encoders import Encoder, composed_model
from .export import export_severity, pooled_row
from .features import build_encoders, feature_rows
from .figures import pick_examples, plot_tsne, saliency_examples, tsne_embedding
from .table import (
    CohenResults,
    choose_figure_row,
    evaluate_rows,
    feature_label,
    fit_on_all_scored,
    paper_table1,
    ssl_vs_random_init,
)


@runs_in_configured_precision
@runs_under_configured_distribution
def reproduce(
    config: CohenConfig,
    out: str | Path,
    *,
    resume: bool = False,
    verbose: int = 0,
    export: bool = True,
) -> dict:
    """End-to-end paper-03 reproduction into a fresh run folder under ``out``.

    Writes ``table1.csv``/``.md`` (ours + "paper:" columns), ``table1_numeric.csv`` (means and
    stds as numbers), ``table1_paper.md``, ``per_split.csv``, ``features_<encoder>.npz`` and the
    three figures (PNG + caption). Returns ``{"run", "results", "figures", "caption", "info"}``.
    ``resume=True`` reopens the latest unfinished cohen run in ``out`` (same config): finished
    SimSiam epochs, feature files and tables are reused.
    """
    if resume:
        run = RunFolder.resume(out, RUN_KIND, config=config)
    else:
        run = RunFolder.create(out, RUN_KIND, config=config, seed=config.seed)
    frontal, scored, scored_pos = load_tables(config)
    splits = make_splits(scored, config)
    bank = ImageBank(frontal)
    encoders, info = build_encoders(config, bank, run=run, verbose=verbose)
    rows = feature_rows(encoders, bank, batch_size=config.batch_size, run=run, verbose=verbose)
    results = evaluate_rows(rows, scored, scored_pos, splits, targets=config.targets)

    caption = (
        f"Paper 03 Table 1 protocol on {data_description(scored, frontal)}. OLS on frozen "
        f"features; {config.describe()}; mean ± std over splits on the held-out half (Pearson r "
        f"of the constant no-data prediction is undefined). 'paper:' columns are "
        f"{PAPER_SOURCE}, filled only on rows with the paper's configuration. {run.describe()}."
    )
    if not run.stage_done("tables"):
        _write_tables(run, results, caption)
        run.mark_stage_done("tables")
    figures = write_figures(
        run=run,
        results=results,
        encoders={e.key: e for e in encoders},
        bank=bank,
        scored=scored,
        scored_pos=scored_pos,
        splits=splits,
        config=config,
        data=data_description(scored, frontal),
    )
    if export and not run.stage_done("exports"):
        row = pooled_row(results.rows, choose_figure_row(results, config.figure_row))
        by_key = {e.key: e for e in encoders}
        if row is not None and row.encoder in by_key:
            run.set_aside("exports")
            run.info["exports"] = export_severity(
                run, by_key[row.encoder], row, scored, scored_pos, config.targets, config.preset
            )
            run.mark_stage_done("exports")
    info["exports"] = run.info.get("exports", {})
    run.mark_complete(rows=[r.name for r in rows], figures=sorted(figures))
    return {"run": run, "results": results, "figures": figures, "caption": caption, "info": info}


def _write_tables(run: RunFolder, results: CohenResults, caption: str) -> None:
    results.table.to_csv(run.new_file("table1.csv"), index=False)
    results.numeric.to_csv(run.new_file("table1_numeric.csv"), index=False)
    run.new_file("table1.md").write_text(f"{caption}\n\n{to_markdown(results.table)}")
    run.new_file("table1_paper.md").write_text(f"{PAPER_SOURCE}\n\n{to_markdown(paper_table1())}")
    per_split = pd.concat(
        [p.per_split.assign(row=name) for name, p in results.probes.items()], ignore_index=True
    )
    per_split.to_csv(run.new_file("per_split.csv"), index=False)
    verdicts = "\n".join(ssl_vs_random_init(results))
    run.new_file("ssl_vs_random_init.md").write_text(
        f"{caption}\n\nSSL encoder vs the random-init control (OLS probes, paired over split x "
        f"held-out image; an image recurs across splits, so p-values are optimistic):\n\n{verdicts}\n"
    )


def write_figures(
    *,
    run: RunFolder,
    results: CohenResults,
    encoders: Mapping[str, Encoder],
    bank: ImageBank,
    scored: pd.DataFrame,
    scored_pos: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    config: CohenConfig,
    data: str,
    close: bool = True,
) -> dict[str, Path]:
    """Fig. 2, 3 and 4 of a reproduction run, saved into ``run``; returns ``{name: path}``."""
    row = choose_figure_row(results, config.figure_row)
    probe = results.probes[row.name]
    split = config.figure_split
    base = (
        f"Data: {data}. Features: {row.encoder_label}, "
        f"{feature_label(row.feature_set, row.features.shape[1])}; OLS. "
        f"{config.describe()}. {run.describe()}."
    )
    figures: dict[str, Path] = {}

    def done(name: str) -> bool:
        """A resumed run keeps the figures it already saved."""
        if run.stage_done(name):
            figures[name] = run.path / f"{name}.png"
            return True
        return False

    def keep(name: str, fig, caption: str) -> None:
        figures[name] = save_figure(fig, run.path / f"{name}.png", caption)
        run.mark_stage_done(name)
        if close:
            plt.close(fig)

    # Fig. 2
    panels = {}
    ranges = {}
    for t in config.targets:
        target = TARGET_BY_COLUMN[t]
        panels[target.title] = probe.split_predictions(split, t)
        ranges[target.title] = target.score_range
    n_test = len(splits[split][1])
    if not done("fig2_pred_vs_true"):
        keep(
            "fig2_pred_vs_true",
            predicted_vs_true(panels, ranges=ranges, xlabel="ground truth (raters' mean)"),
            f"Fig. 2 reproduction: predicted vs true scores on the held-out half ({n_test} images) of "
            f"split {split}. Grey dashed: perfect prediction; red: error. {base}",
        )

    # Fig. 3: t-SNE of all frontal images, coloured by predicted extent (OLS on all scored images)
    extent = "geographic_mean"
    tsne_row = (
        next((r for r in results.rows if r.name == "xrv/4"), row) if row.encoder == "xrv" else row
    )
    if not done("fig3_tsne") and tsne_row.features.shape[1] > 0:
        ols = fit_on_all_scored(row, scored, scored_pos, extent)
        predicted = ols.predict(row.features)
        emb = tsne_embedding(tsne_row.features, perplexity=config.tsne_perplexity, seed=config.seed)
        fig = plot_tsne(
            emb,
            predicted,
            bank.table["survival"].to_numpy(),
            title=f"t-SNE of {feature_label(tsne_row.feature_set, tsne_row.features.shape[1])}",
        )
        keep(
            "fig3_tsne",
            fig,
            f"Fig. 3 reproduction: t-SNE (perplexity {config.tsne_perplexity}, seed {config.seed}) of "
            f"{feature_label(tsne_row.feature_set, tsne_row.features.shape[1])} of all "
            f"{len(bank.table)} frontal images; colour = "
            f"geographic extent predicted by OLS fitted on all {len(scored)} scored images; marker = "
            f"survival from metadata. {base}",
        )

    # Fig. 4: saliency of image -> features -> OLS (fitted on the split's training half)
    enc = encoders.get(row.encoder)
    if enc is not None and row.features.shape[1] > 0 and not done("fig4_saliency"):
        train_idx, _ = splits[split]
        feats = row.features[scored_pos]
        ols = fit_ols(feats[train_idx], scored[extent].to_numpy(float)[train_idx])
        model_fn = composed_model(enc, row.feature_set, ols)
        held_out = probe.split_predictions(split, extent)
        good, bad = pick_examples(held_out, config.saliency_examples)
        chosen = pd.concat([good, bad])
        images = bank.at(enc.image_size)[scored_pos[chosen["row"].to_numpy()]]
        titles = [
            f"{'good' if i < len(good) else 'bad'}: true {r.y_true:.1f}, pred {r.y_pred:.1f}"
            for i, r in enumerate(chosen.itertuples())
        ]
        _, fig = saliency_examples(model_fn, images, titles)
        keep(
            "fig4_saliency",
            fig,
            f"Fig. 4 reproduction: |d predicted extent / d pixel| blurred 5x5 (Gaussian), for the "
            f"{len(good)} best and {len(bad)} worst held-out extent predictions of split {split}; "
            f"model = {enc.image_size}px input -> frozen encoder -> OLS fitted on the split's "
            f"training half. {base}",
        )
    return figures
