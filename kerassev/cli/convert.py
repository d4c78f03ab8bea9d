"""``kerassev convert xrv CHECKPOINT OUT.weights.h5``: TorchXRayVision -> Keras weights (SPEC 03)."""

from __future__ import annotations

import argparse

from kerassev.cli import UserError


def _convert_xrv(args: argparse.Namespace) -> int:
    from kerassev.convert.xrv import ConversionError, convert_checkpoint

    try:
        out = convert_checkpoint(
            args.checkpoint, args.out, overwrite=args.overwrite, allow_pickle=args.allow_pickle
        )
    except (ConversionError, FileNotFoundError, FileExistsError, ImportError) as err:
        raise UserError(" ".join(str(err).split())) from err  # one line
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    """Add the ``convert`` command group."""
    parser = subparsers.add_parser("convert", help="convert third-party weights to Keras")
    groups = parser.add_subparsers(dest="source", required=True)
    xrv = groups.add_parser(
        "xrv",
        help="TorchXRayVision DenseNet-121 ('all' weights) -> .weights.h5",
        description=(
            "Convert a TorchXRayVision DenseNet-121 checkpoint (a saved state_dict) to Keras "
            "weights for kerassev.models.xrv_densenet.build_xrv_densenet(weights=OUT)."
        ),
    )
    xrv.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="PyTorch checkpoint: a saved model.state_dict() (.pt/.pth)",
    )
    xrv.add_argument("out", metavar="OUT.weights.h5", help="output file, must end in .weights.h5")
    xrv.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    xrv.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also accept a pickled torch module (TorchXRayVision's released .pt files); runs "
        "pickle code, so only for trusted files; needs torchxrayvision importable",
    )
    xrv.set_defaults(func=_convert_xrv)
