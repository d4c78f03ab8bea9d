"""``kerassev reproduce cohen``: paper 03 (Cohen et al. 2020) severity scores from frozen features.

:func:`run_cohen` runs :func:`kerassev.recipes.cohen.reproduce`.
"""

from __future__ import annotations

import argparse

from kerassev.cli import UserError
from kerassev.cli.reproduce import add_common_arguments, finish_run, preset_config


def register(papers) -> argparse.ArgumentParser:
    """Add the ``cohen`` sub-command to the sub-parsers of ``kerassev reproduce``."""
    p = papers.add_parser(
        "cohen",
        help="paper 03: COVID-19 severity (extent, opacity) by OLS on frozen CXR features",
        description=(
            "Paper 03 (Cohen et al. 2020): OLS on frozen image features over 50 patient-grouped "
            "~50/50 splits of the 94 scored covid-chestxray images; Table 1 with the paper's "
            "figures in 'paper:' columns, Fig. 2-4. Offline it uses a SimSiam ResNet-50 "
            "pretrained on the 558 unlabelled frontal images and a random-init control; "
            "--xrv-checkpoint adds the paper's TorchXRayVision DenseNet rows, "
            "--imagenet-weights an ImageNet ResNet-50."
        ),
    )
    add_common_arguments(p)
    p.add_argument(
        "--data", help="covid_chestxray folder (default: $KERASSEV_DATA/covid_chestxray)"
    )
    p.add_argument(
        "--xrv-checkpoint",
        help="converted TorchXRayVision DenseNet-121 'all' weights (.weights.h5 from "
        "`kerassev convert xrv`; default: no XRV rows)",
    )
    p.add_argument(
        "--imagenet-weights",
        help="local ImageNet ResNet-50 notop weights file (.h5; default: no ImageNet row)",
    )
    p.add_argument(
        "--no-ssl",
        action="store_true",
        help="skip the SimSiam substitute encoder (default: train it)",
    )
    p.add_argument(
        "--no-random",
        action="store_true",
        help="skip the random-init control (default: include it)",
    )
    p.add_argument("--splits", type=int, help="number of splits (default 50, as the paper)")
    p.set_defaults(func=run_cohen)
    return p


def config_from_args(args: argparse.Namespace):
    """The :class:`~kerassev.recipes.cohen.CohenConfig` the command line asks for."""
    from kerassev.recipes.cohen import CohenConfig

    overrides = {
        "seed": args.seed,
        "data_root": args.data,
        "xrv_checkpoint": args.xrv_checkpoint,
        "imagenet_weights": args.imagenet_weights,
        "random_control": not args.no_random,
    }
    if args.no_ssl:
        overrides["ssl"] = None
    if args.splits is not None:
        if args.splits < 1:
            raise UserError(f"--splits must be >= 1, got {args.splits}")
        overrides["n_splits"] = args.splits
    return preset_config(args, CohenConfig, **overrides)


def run_cohen(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kerassev.config import DataNotFoundError
    from kerassev.models.backbones import BackboneWeightsError
    from kerassev.recipes.cohen import reproduce
    from kerassev.runs import RunError
    from kerassev.stats.tables import to_markdown

    for flag, value in (
        ("--xrv-checkpoint", args.xrv_checkpoint),
        ("--imagenet-weights", args.imagenet_weights),
    ):
        if value and not Path(value).is_file():
            raise UserError(f"{flag}: file not found: {value}")
    config = config_from_args(args)
    try:
        result = reproduce(config, args.out, resume=args.resume, verbose=min(args.verbose, 2))
    except (DataNotFoundError, BackboneWeightsError, RunError, FileNotFoundError) as err:
        raise UserError(str(err)) from err
    print(result["caption"])
    print()
    print(to_markdown(result["results"].table))
    for name, path in sorted(result["figures"].items()):
        print(f"{name}: {path}")
    finish_run(result["run"].path)
    return 0
