"""``kerassev data``: ``check MANIFEST ROOT`` (data against its manifest) and ``list``."""

from __future__ import annotations

import argparse
from pathlib import Path

from kerassev.cli import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="check data sets against their manifests")
    sub = parser.add_subparsers(dest="data_command", required=True)
    check = sub.add_parser("check", help="check a data folder against a manifest")
    check.add_argument("manifest", help="manifest name (e.g. covid_chestxray) or YAML path")
    check.add_argument("root", help="folder holding the data set")
    check.set_defaults(func=_check)
    listing = sub.add_parser("list", help="list the available manifests")
    listing.set_defaults(func=_list)
    parser.set_defaults(func=_list)


def _check(args: argparse.Namespace) -> int:
    from kerassev.data.manifest import ManifestError, check_dataset, load_manifest

    try:
        manifest = load_manifest(args.manifest)
    except ManifestError as err:
        raise UserError(str(err)) from err
    root = Path(args.root)
    if not root.is_dir():
        raise UserError(f"data root {root} does not exist or is not a folder")
    try:
        report = check_dataset(manifest, root)
    except ManifestError as err:
        raise UserError(str(err)) from err
    print(report.format())
    return 0 if report.ok else 1


def _list(args: argparse.Namespace) -> int:
    from kerassev.data.manifest import available_manifests, load_manifest

    for name in available_manifests():
        try:
            m = load_manifest(name)
            kind = " (template: data not shipped)" if m.template else f" [folder {m.folder}]"
            print(f"{name:28s} {m.title}{kind}")
        except Exception as err:  # a broken manifest is listed, not fatal
            print(f"{name:28s} BROKEN: {err}")
    return 0
