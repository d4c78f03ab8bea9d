"""Table 2 of paper 04 from the saved test predictions, the low-shot table and the probe table.

Our cells: ``mean ± variance`` over the last K fine-tuning epochs (the paper's protocol) and the
final model's value with its 95 % interval (Wilson for Sen/Spe/Acc, bootstrap for HM/AUC).
The paper's figures sit in ``paper: <metric>`` columns, never in ours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kerassev.stats.classification import (
    DETECTION_METRICS,
    detection_metrics,
    detection_table_row,
    paired_auc_test,
)

from .config import LABELS, PAPER_TABLE2


def epoch_metrics(labels, probs_per_epoch, positive: int) -> pd.DataFrame:
    """One row of Sen/Spe/HM/AUC/Acc per saved epoch."""
    return pd.DataFrame([detection_metrics(labels, p, positive=positive) for p in probs_per_epoch])


def table2(
    preds: dict[str, np.ndarray],
    labels: np.ndarray,
    positive: int,
    *,
    skipped: dict[str, str],
    rows: tuple[str, ...],
    n_resamples: int,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """``preds``: row -> ``(K, N, C)`` test probabilities (100 % shot). Returns the table and
    the final-epoch metric dicts (with intervals) per row."""
    out, finals = [], {}
    for row in rows:
        record = {"method": LABELS[row], "key": row}
        if row in preds:
            per_epoch = epoch_metrics(labels, preds[row], positive)
            final = detection_table_row(
                labels, preds[row][-1], positive=positive, n_resamples=n_resamples, seed=seed
            )
            finals[row] = final
            for m in DETECTION_METRICS:
                record[f"{m} (last {len(per_epoch)} ep.)"] = (
                    f"{per_epoch[m].mean():.3f}±{per_epoch[m].var(ddof=0):.3f}"
                )
            for m in DETECTION_METRICS:
                record[f"{m} final [95% CI]"] = (
                    f"{final[m]:.3f} [{final[m + '_lo']:.3f}, {final[m + '_hi']:.3f}]"
                )
            record["note"] = ""
        else:
            record["note"] = f"skipped: {skipped.get(row, 'not run')}"
        for m, value in zip(DETECTION_METRICS, PAPER_TABLE2.get(row, ("",) * 5), strict=True):
            record[f"paper: {m}"] = value
        out.append(record)
    return pd.DataFrame(out), finals


def paired_tests(
    preds: dict[str, np.ndarray], labels, positive: int, *, n_resamples: int, seed: int = 0
) -> pd.DataFrame:
    """Paired bootstrap on AUC between the best row (final-model AUC) and each other row."""
    if len(preds) < 2:
        return pd.DataFrame()
    aucs = {r: detection_metrics(labels, p[-1], positive=positive)["AUC"] for r, p in preds.items()}
    best = max(aucs, key=aucs.get)
    rows = []
    for other in preds:
        if other == best:
            continue
        t = paired_auc_test(
            labels,
            preds[best][-1],
            preds[other][-1],
            positive=positive,
            n_resamples=n_resamples,
            seed=seed,
        )
        rows.append({"best": LABELS[best], "other": LABELS[other], **t})
    return pd.DataFrame(rows)


def vs_scratch_tests(
    preds: dict[str, np.ndarray], labels, positive: int, *, n_resamples: int, seed: int = 0
) -> pd.DataFrame:
    """Every pre-trained row's final model against From Scratch (the random-init control),
    paired AUC bootstrap, with Holm's adjustment over the rows compared: the paper's central
    claim is that pre-training beats random init, so each row is tested against that control."""
    from kerassev.stats.significance import holm_adjust

    if "scratch" not in preds:
        return pd.DataFrame()
    rows = [
        {
            "row": LABELS[r],
            "control": LABELS["scratch"],
            **paired_auc_test(
                labels,
                p[-1],
                preds["scratch"][-1],
                positive=positive,
                n_resamples=n_resamples,
                seed=seed,
            ),
        }  # fmt: skip
        for r, p in preds.items()
        if r != "scratch"
    ]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    df["p_holm"] = holm_adjust(df["p_value"])
    df["beats control (Holm p < 0.05)"] = np.where(
        (df["p_holm"] < 0.05) & (df["diff_lo"] > 0), "yes", "no"
    )
    return df


def low_shot_table(
    lowshot: dict[tuple[str, float], np.ndarray], labels, positive: int
) -> pd.DataFrame:
    """Mean HM / Acc / AUC over the last epochs for every (row, fraction)."""
    rows = []
    for (row, fraction), probs in sorted(lowshot.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        m = epoch_metrics(labels, probs, positive).mean()
        rows.append(
            {
                "method": LABELS[row],
                "key": row,
                "fraction": fraction,
                "HM": round(float(m["HM"]), 3),
                "Acc": round(float(m["Acc"]), 3),
                "AUC": round(float(m["AUC"]), 3),
            }
        )
    return pd.DataFrame(rows)
