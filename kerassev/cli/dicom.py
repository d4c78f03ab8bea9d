"""``kerassev dicom info FILE [--png OUT] [--frame N] [--no-voi]``: header, decode check, preview."""

from __future__ import annotations

import argparse
from pathlib import Path

from kerassev.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dicom`` command group."""
    parser = subparsers.add_parser("dicom", help="inspect DICOM files")
    sub = parser.add_subparsers(dest="dicom_command", required=True)
    info = sub.add_parser(
        "info",
        help="print metadata, shape and value ranges; optionally write an 8-bit PNG preview",
    )
    info.add_argument("file", type=Path, help="DICOM file")
    info.add_argument(
        "--png", type=Path, metavar="OUT", help="write an 8-bit PNG preview here (default: none)"
    )
    info.add_argument(
        "--frame", type=int, default=0, metavar="N", help="frame to decode (default 0)"
    )
    info.add_argument(
        "--no-voi", action="store_true", help="skip the VOI LUT / window (min/max scaling instead)"
    )
    info.set_defaults(func=_info)


def _fmt(value: object) -> str:
    return "-" if value in (None, "") else str(value)


def _info(args: argparse.Namespace) -> int:
    # Imported here so `kerassev --help` stays fast and free of pydicom.
    from kerassev.io.dicom import DicomReadError, read_dicom, to_uint8

    try:
        image = read_dicom(args.file, frame=args.frame, apply_voi=not args.no_voi)
    except DicomReadError as err:
        raise UserError(str(err)) from err
    meta, pixels = image.meta, image.pixels
    window = (
        f"centre {meta.window_center:g} / width {meta.window_width:g}"
        if meta.window_center is not None and meta.window_width is not None
        else "none"
    )
    if args.no_voi:
        window += " (not applied: --no-voi)"
    spacing = "-" if meta.pixel_spacing is None else "{:g} x {:g} mm".format(*meta.pixel_spacing)
    stored = "-" if image.stored_range is None else "{:g} .. {:g}".format(*image.stored_range)
    rows = [
        ("file", meta.path),
        ("patient id", _fmt(meta.patient_id)),
        ("study uid", _fmt(meta.study_instance_uid)),
        ("series uid", _fmt(meta.series_instance_uid)),
        ("sop instance uid", _fmt(meta.sop_instance_uid)),
        ("modality", _fmt(meta.modality)),
        ("view position", _fmt(meta.view_position)),
        ("photometric", _fmt(meta.photometric_interpretation)),
        ("transfer syntax", f"{meta.transfer_syntax_name} ({meta.transfer_syntax_uid})"),
        ("size", f"{meta.rows} x {meta.columns}, {meta.number_of_frames} frame(s)"),
        ("bits", f"{meta.bits_stored} stored / {meta.bits_allocated} allocated"),
        ("pixel spacing", spacing),
        ("window", window),
        ("frame", f"{args.frame} of {meta.number_of_frames}"),
        ("output shape", f"{tuple(pixels.shape)} {pixels.dtype}"),
        ("stored range", stored),
        ("output range", f"{float(pixels.min()):.4f} .. {float(pixels.max()):.4f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")

    if args.png is not None:
        from PIL import Image

        try:
            args.png.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(to_uint8(pixels)).save(args.png, format="PNG")
        except (OSError, ValueError) as err:
            raise UserError(f"{args.png}: cannot write PNG ({err})") from err
        print(f"{'png':<{width}}  {args.png}")
    return 0
