"""``kerassev reproduce covid-ssl``: paper 04 (Li et al.), self-supervised transfer learning for
COVID-19 detection; :func:`run_covid_ssl` runs :func:`kerassev.recipes.covid_ssl.reproduce_covid_ssl`."""

from __future__ import annotations

import argparse

from kerassev.cli import UserError
from kerassev.cli.reproduce import add_common_arguments, preset_config


def register(papers) -> argparse.ArgumentParser:
    p = papers.add_parser(
        "covid-ssl",
        help="paper 04: COVID-19 detection, SSL family (Cross, BYOL, SimSiam, SimCLR, PIRL)",
        description=(
            "Paper 04 (Li et al.): self-supervised pre-training of every method on the unlabelled "
            "radiographs (test look-alikes excluded), fine-tuning at 1/10/50/100 % of the "
            "training split, Table 2 (Sen/Spe/HM/AUC/Acc with CIs, 'paper:' columns), the "
            "low-shot curve, a linear probe against random init, and an export for "
            "'kerassev predict'. Transfer and Ours need --weights (ImageNet ResNet-50) offline."
        ),
    )
    add_common_arguments(p, presets=("smoke", "cpu", "paper"))
    p.add_argument(
        "--data", help="covid_radiography folder (default: $KERASSEV_DATA/covid_radiography)"
    )
    p.add_argument(
        "--pool",
        help="covid_chestxray folder for the extra unlabelled pre-training images "
        "(default: $KERASSEV_DATA/covid_chestxray)",
    )
    p.add_argument(
        "--weights",
        help="local ImageNet ResNet-50 notop weights file (.h5) for Transfer and Ours (default: "
        "the Keras cache file; without one those rows are skipped)",
    )
    p.add_argument(
        "--no-export", action="store_true", help="skip the classifier export (default: export)"
    )
    p.set_defaults(func=run_covid_ssl)
    return p


def config_from_args(args: argparse.Namespace):
    from kerassev.recipes.covid_ssl import CovidSSLConfig

    overrides = {"seed": args.seed}
    for key, value in (
        ("data_root", args.data),
        ("pool_root", args.pool),
        ("imagenet_weights", args.weights),
    ):
        if value:
            overrides[key] = value
    return preset_config(args, CovidSSLConfig, **overrides)


def run_covid_ssl(args: argparse.Namespace) -> int:
    from kerassev.config import DataNotFoundError
    from kerassev.models.backbones import BackboneWeightsError
    from kerassev.recipes.covid_ssl import reproduce_covid_ssl
    from kerassev.runs import RunError

    config = config_from_args(args)
    try:
        result = reproduce_covid_ssl(
            config,
            args.out,
            resume=args.resume,
            verbose=min(args.verbose, 2),
            export=not args.no_export,
        )
    except (DataNotFoundError, BackboneWeightsError, RunError, FileNotFoundError) as err:
        raise UserError(str(err)) from err
    print(result.report())
    for name, path in sorted(result.figures.items()):
        print(f"{name}: {path}")
    if result.exports:
        print(f"export ({result.exports['row']}): {result.exports['keras']}")
    print(f"\nrun folder: {result.run.path}")
    return 0
