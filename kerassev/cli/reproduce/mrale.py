"""``kerassev reproduce mrale``: paper 01 (Liang et al. 2023), mRALE regression on SimSiam features."""

from __future__ import annotations

import argparse

from kerassev.cli import UserError
from kerassev.cli.reproduce import add_common_arguments, finish_run, preset_config


def register(papers) -> None:
    p = papers.add_parser(
        "mrale",
        help="paper 01: mRALE regression on a SimSiam ResNet-50 encoder",
        description=(
            "Paper 01 (Liang et al. 2023). Without --data it runs on synthetic phantoms; with "
            "--data (MIDRC DICOMs) and --labels (the MIDRC mRALE CSV) it runs the real thing."
        ),
    )
    add_common_arguments(p)
    p.add_argument(
        "--data",
        help="folder of MIDRC mRALE DICOMs (any layout; joined by StudyInstanceUID); needs "
        "--labels (default: synthetic phantoms)",
    )
    p.add_argument("--labels", help="MIDRC mRALE label CSV (required with --data)")
    p.add_argument(
        "--weights",
        help="local ImageNet ResNet-50 notop weights file (.h5) for the ImageNet comparator "
        "(default: the Keras cache file, else a download; offline without one the row is skipped)",
    )
    p.add_argument(
        "--no-export",
        action="store_true",
        help="skip the .keras/SavedModel/TFLite exports (default: export)",
    )
    p.set_defaults(func=run_mrale)


def run_mrale(args: argparse.Namespace) -> int:
    from kerassev.recipes.mrale import MraleConfig, reproduce_mrale
    from kerassev.runs import RunError

    if (args.data is None) != (args.labels is None):
        raise UserError("--data and --labels go together (MIDRC images and their label CSV)")
    config = preset_config(args, MraleConfig, seed=args.seed)
    try:
        result = reproduce_mrale(
            config,
            args.out,
            image_root=args.data,
            labels_csv=args.labels,
            weights=args.weights,
            resume=args.resume,
            verbose=min(args.verbose, 2),
            export=not args.no_export,
        )
    except (RunError, FileNotFoundError) as err:
        raise UserError(str(err)) from err
    print(result.report())
    finish_run(result.run.path)
    return 0
