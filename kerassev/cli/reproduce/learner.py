"""``kerassev reproduce learner``: paper 02 (LEARNER), TSM + (weighted) contrastive pre-training."""

from __future__ import annotations

import argparse
import dataclasses

from kerassev.cli import UserError
from kerassev.cli.reproduce import add_common_arguments, preset_config


def register(papers) -> None:
    p = papers.add_parser(
        "learner",
        help="paper 02: fine changes from coarse labels (TSM, MSE + CL / wCL)",
        description=(
            "Paper 02 (LEARNER). Without --data it runs on longitudinal LUS phantoms; with --data "
            "it runs on the in-house LUS layout (or --layout adni). The real POCUS videos "
            "(../shared/data/lus_pocus or --pocus) add the cross-video proxy rows and a 4-class "
            "linear probe."
        ),
    )
    add_common_arguments(p, presets=("smoke", "paper", "cpu"))
    p.add_argument(
        "--data",
        help="root of the in-house LUS (scans.csv + videos/) or ADNI layout "
        "(default: synthetic longitudinal LUS phantoms)",
    )
    p.add_argument(
        "--layout",
        choices=("lus_inhouse", "adni"),
        default="lus_inhouse",
        help="layout of --data: in-house lung ultrasound videos or ADNI MRI volumes "
        "(default lus_inhouse)",
    )
    p.add_argument("--pocus", help="lus_pocus folder (default: $KERASSEV_DATA/lus_pocus)")
    p.add_argument(
        "--no-pocus", action="store_true", help="skip the real POCUS proxy rows (default: add them)"
    )
    p.set_defaults(func=run_learner)


def run_learner(args: argparse.Namespace) -> int:
    from kerassev.config import DataNotFoundError
    from kerassev.data.table import TableError
    from kerassev.recipes.learner import LearnerConfig, reproduce_learner
    from kerassev.runs import RunError

    config = preset_config(args, LearnerConfig, seed=args.seed)
    if args.no_pocus:
        config = dataclasses.replace(config, pocus=False)
    try:
        result = reproduce_learner(
            config,
            args.out,
            data_root=args.data,
            layout=args.layout,
            pocus_root=args.pocus,
            resume=args.resume,
            verbose=min(args.verbose, 2),
        )
    except (RunError, DataNotFoundError, TableError, FileNotFoundError) as err:
        raise UserError(str(err)) from err
    print(result.report())
    print(f"\nrun folder: {result.run.path}")
    return 0
