"""``kerassev reproduce ct-lesions``: issue 9, Mask R-CNN lesion segmentation on real CT slices.

:func:`run_ct_lesions` runs :func:`kerassev.recipes.ct_lesions.reproduce`.
"""

from __future__ import annotations

import argparse

from kerassev.cli import UserError
from kerassev.cli.reproduce import add_common_arguments, preset_config


def register(papers) -> argparse.ArgumentParser:
    """Add the ``ct-lesions`` sub-command to the sub-parsers of ``kerassev reproduce``."""
    p = papers.add_parser(
        "ct-lesions",
        help="paper 05's detector: Mask R-CNN (ResNet-50-FPN) lesion segmentation on CT slices",
        description=(
            "Train Mask R-CNN (ResNet-50-FPN) on the 50 real ct_lesions training slices (paper "
            "05's one-class 'lesion' variant by default), evaluate COCO segmentation and box AP "
            "and union-mask Dice / IoU on the 48 test slices, draw the best and worst slices and "
            "export a segmenter for `kerassev segment`."
        ),
    )
    add_common_arguments(p, presets=("smoke", "cpu", "paper"))
    p.add_argument("--data", help="ct_lesions folder (default: $KERASSEV_DATA/ct_lesions)")
    p.add_argument(
        "--variant",
        choices=("lesion", "ggo_consolidation"),
        help="one merged 'lesion' class (paper) or GGO and consolidation (default: the "
        "preset's, lesion)",
    )
    p.add_argument(
        "--weights",
        help="ResNet-50 backbone: 'imagenet' (downloads once), 'none' (random init) or a local "
        "notop .h5 file (default: the preset's)",
    )
    p.set_defaults(func=run_ct_lesions)
    return p


def config_from_args(args: argparse.Namespace):
    from kerassev.recipes.ct_lesions import CtLesionsConfig

    overrides = {"seed": args.seed, "data_root": args.data}
    if args.variant:
        overrides["variant"] = args.variant
    if args.weights:
        w = args.weights
        overrides["backbone_weights"] = None if w.lower() == "none" else w
    return preset_config(args, CtLesionsConfig, **overrides)


def run_ct_lesions(args: argparse.Namespace) -> int:
    from kerassev.config import DataNotFoundError
    from kerassev.models.backbones import BackboneWeightsError
    from kerassev.recipes.ct_lesions import reproduce
    from kerassev.recipes.ct_lesions.data import UnreadableSliceError
    from kerassev.runs import RunError
    from kerassev.stats.tables import to_markdown

    config = config_from_args(args)
    try:
        result = reproduce(config, args.out, resume=args.resume, verbose=min(args.verbose, 2))
    except (
        DataNotFoundError,
        BackboneWeightsError,
        RunError,
        FileNotFoundError,
        UnreadableSliceError,
    ) as err:
        raise UserError(str(err)) from err
    print(result["caption"])
    print()
    print(to_markdown(result["ap_table"]))
    print()
    print(to_markdown(result["overlap_table"]))
    if "dice_table" in result:  # the U-Net comparator (issue 19)
        print()
        print(to_markdown(result["dice_table"]))
    print(f"\nfigure: {result['figure']}")
    print(f"export: {result['export']}")
    print(f"run folder: {result['run'].path}")
    return 0
