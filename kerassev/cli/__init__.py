"""The ``kerassev`` command. Each sub-command group lives in its own module and registers
itself through ``register(subparsers)``; errors in user input print one line, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Sub-command modules, in help order.
_COMMAND_MODULES = ["demo", "dicom", "data", "reproduce", "convert", "segment"]


class UserError(Exception):
    """Bad input from the user: printed as one line and exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kerassev", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(f"kerassev.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"kerassev {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; rerun with --resume to continue from the last checkpoint", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
