"""``kerassev reproduce affinity``: paper 05 (Ter-Sarkisov 2021), the affinity model on CT.

:func:`run_affinity` runs :func:`kerassev.recipes.ct_affinity.reproduce`.
"""

from __future__ import annotations

import argparse

from kerassev.cli import UserError
from kerassev.cli.reproduce import add_common_arguments, finish_run, preset_config


def register(papers) -> argparse.ArgumentParser:
    """Add the ``affinity`` sub-command to the sub-parsers of ``kerassev reproduce``."""
    p = papers.add_parser(
        "affinity",
        help="paper 05: COVID / CP / Normal from the affinity among lesion-mask features (CT)",
        description=(
            "Paper 05 (Ter-Sarkisov 2021): train the affinity model (Mask R-CNN + RoI batch "
            "selection + mask sieve + affinity matrix / vector) on class-balanced CT phantoms and "
            "the real ct_lesions slices (segmentation only), then write the classification table "
            "(per-class sensitivity, TNR, weighted F1 with CIs, confusion matrix, majority-class "
            "control), the segmentation AP table (phantoms and real slices), X2 heat maps after "
            "epoch 1 and the last epoch, the 2-class generalisation step and the A sweep."
        ),
    )
    add_common_arguments(p, presets=("smoke", "cpu", "paper"))
    p.add_argument("--data", help="ct_lesions folder (default: $KERASSEV_DATA/ct_lesions)")
    p.add_argument(
        "--cncb",
        help="your CNCB image folder (<CLASS>/<patient>/<scan>/<slice>.png|jpg): classify the "
        "COVIDx CT-1 slices (1,000 per class for training, the full test split) instead of phantoms "
        "(default: CT phantoms)",
    )
    p.add_argument("--covidx", help="COVIDx CT-1 split files (default: $KERASSEV_DATA/covidx_ct)")
    p.set_defaults(func=run_affinity)
    return p


def config_from_args(args: argparse.Namespace):
    from kerassev.recipes.ct_affinity import CtAffinityConfig

    fields = {"seed": args.seed, "data_root": args.data}
    if args.cncb:
        fields.update(cncb_root=args.cncb, covidx_root=args.covidx)
    return preset_config(args, CtAffinityConfig, **fields)


def run_affinity(args: argparse.Namespace) -> int:
    from kerassev.config import DataNotFoundError
    from kerassev.models.backbones import BackboneWeightsError
    from kerassev.recipes.ct_affinity import reproduce
    from kerassev.runs import RunError
    from kerassev.stats.tables import to_markdown

    config = config_from_args(args)
    try:
        result = reproduce(config, args.out, resume=args.resume, verbose=min(args.verbose, 2))
    except (DataNotFoundError, BackboneWeightsError, RunError, FileNotFoundError) as err:
        raise UserError(str(err)) from err
    for name in ("classification_table", "confusion_matrix", "ap_table", "generalisation_table",
                 "sweep_table"):  # fmt: skip
        if result[name] is not None:
            print(f"## {name}\n{result['captions'][name]}\n")
            print(to_markdown(result[name]))
    for name, path in result["figures"].items():
        print(f"{name}: {path}")
    finish_run(result["run"].path)
    return 0
