"""``kerassev predict MODEL FILES... [--out preds.csv]``: apply an exported classifier or
regressor of the suite to image files or folders (PNG, JPEG, DICOM)."""

from __future__ import annotations

import argparse
import sys

from kerassev.cli import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="apply an exported model to image files or folders",
        description=(
            "Apply a kerassev export (.keras file or SavedModel folder) to PNG/JPEG/DICOM files "
            "or folders. The export carries its input size, preprocessing and class or target "
            "names. Unreadable files are listed with the reason and skipped."
        ),
    )
    p.add_argument("model", help=".keras file or SavedModel folder written by kerassev")
    p.add_argument("files", nargs="+", help="image files and/or folders (searched recursively)")
    p.add_argument("--out", help="CSV to write (default: print to stdout)")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kerassev.inference import predict_files

    if args.out and Path(args.out).exists():
        raise UserError(f"--out {args.out} exists; refusing to overwrite it")
    try:
        table, skipped = predict_files(args.model, args.files, batch_size=args.batch_size)
    except (ValueError, OSError) as err:
        raise UserError(str(err)) from err
    for path, why in skipped.items():
        print(f"skipped {path}: {why}", file=sys.stderr)
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"{len(table)} image(s) -> {args.out}; {len(skipped)} skipped", file=sys.stderr)
    else:
        table.to_csv(sys.stdout, index=False)
    return 0 if len(table) else 1
