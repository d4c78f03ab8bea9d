"""``kerassev predict EXPORT INPUTS... [--out preds.csv|preds.json]``: apply an exported
classifier or regressor of the suite to images (PNG, JPEG, DICOM) or, for a video export, to
videos (MP4, AVI, MOV, GIF...), files or folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kerassev.cli import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="apply an exported model to image or video files or folders",
        description=(
            "Apply a kerassev export (its .keras file, SavedModel folder, .tflite file or the "
            "run's export folder) to PNG/JPEG/DICOM images, or to videos for a video export. "
            "The export carries its input recipe and class or target names. One row an image "
            "or video; unreadable files are listed with the reason and skipped."
        ),
    )
    p.add_argument("model", help="a kerassev export: .keras, SavedModel folder, .tflite or folder")
    p.add_argument("files", nargs="+", help="image/video files and/or folders (recursive)")
    p.add_argument("--out", help="CSV (or .json: records) to write (default: CSV on stdout)")
    p.add_argument("--batch-size", type=int, default=32, help="images (or clips) a batch (32)")
    p.set_defaults(func=run_predict)


def write_table(table, out: str | None) -> None:
    """``table`` as CSV (or JSON records for a ``.json`` path), or CSV on stdout."""
    if not out:
        table.to_csv(sys.stdout, index=False)
    elif Path(out).suffix.lower() == ".json":
        Path(out).write_text(table.to_json(orient="records", indent=1))
    else:
        table.to_csv(out, index=False)


def refuse_existing_out(out: str | None) -> None:
    if out and Path(out).exists():
        raise UserError(f"--out {out} exists; refusing to overwrite it")
    if out and not Path(out).parent.is_dir():
        raise UserError(f"--out {out}: folder {Path(out).parent} does not exist")


def run_predict(args: argparse.Namespace) -> int:
    from kerassev.inference import predict_files

    refuse_existing_out(args.out)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    try:
        table, skipped = predict_files(args.model, args.files, batch_size=args.batch_size)
    except (ValueError, OSError) as err:
        raise UserError(str(err).splitlines()[0]) from err
    for path, why in skipped.items():
        print(f"skipped {path}: {why}", file=sys.stderr)
    if not len(table):
        raise UserError(f"nothing to predict: all {len(skipped)} input(s) skipped")
    write_table(table, args.out)
    if args.out:
        print(f"{len(table)} row(s) -> {args.out}; {len(skipped)} skipped", file=sys.stderr)
    return 0
