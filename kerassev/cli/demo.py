"""``kerassev demo``: the main job on built-in data (paper 01's smoke reproduction on phantoms)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="paper 01 smoke reproduction on synthetic phantoms (what `make demo` runs)"
    )
    p.add_argument(
        "--out", default="runs", help="parent folder for the new run folder (default runs)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the latest unfinished demo run (default: a new run)",
    )
    p.set_defaults(func=run_demo)


def demo_argv(args: argparse.Namespace) -> list[str]:
    """The equivalent ``kerassev reproduce mrale`` command line (one parser, no drift)."""
    argv = ["reproduce", "mrale", "--preset", "smoke", "--out", str(args.out), "-v"]
    return [*argv, "--resume"] if args.resume else argv


def run_demo(args: argparse.Namespace) -> int:
    from kerassev.cli import build_parser

    print("kerassev", " ".join(demo_argv(args)))
    inner = build_parser().parse_args(demo_argv(args))
    return inner.func(inner)
