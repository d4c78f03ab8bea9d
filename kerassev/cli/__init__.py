"""The ``kerassev`` command. Each sub-command group lives in its own module and registers
itself through ``register(subparsers)``; errors in user input print one line, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Sub-command modules, in help order.
_COMMAND_MODULES = ["demo", "dicom", "data", "reproduce", "predict", "segment", "convert"]
# Commands that train or convert models: TensorFlow is imported quietly before they start.
_TENSORFLOW_COMMANDS = {"demo", "reproduce", "predict", "segment", "convert"}


class UserError(Exception):
    """Bad input from the user: printed as one line and exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    from kerassev import __version__

    parser = argparse.ArgumentParser(prog="kerassev", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", action="version", version=f"kerassev {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(f"kerassev.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) >= 2 and argv[0] == "reproduce":
        from kerassev import sagemaker

        if sagemaker.in_training_job():  # a SageMaker training job: its layout fills the gaps
            try:
                argv = [*argv[:2], *sagemaker.reproduce_argv(argv[1], argv[2:])]
            except sagemaker.TrainingJobError as err:
                print(f"kerassev reproduce: error: {err}", file=sys.stderr)
                return 2
    args = build_parser().parse_args(argv)
    if args.command in _TENSORFLOW_COMMANDS:
        from kerassev.quiet import quiet_tensorflow

        quiet_tensorflow()
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"kerassev {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # ``kerassev data list | head``: the reader left early, no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(
            "interrupted; rerun with --resume to continue from the last checkpoint", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
