"""``kerassev demo``: the main job on built-in data (paper 01's smoke reproduction on phantoms)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="paper 01 smoke reproduction on synthetic phantoms (what `make demo` runs)"
    )
    p.add_argument("--out", default="runs", help="parent folder for the new run folder")
    p.add_argument("--resume", action="store_true", help="continue the latest unfinished demo run")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from kerassev.cli.reproduce import run_mrale

    ns = argparse.Namespace(
        preset="smoke",
        data=None,
        labels=None,
        weights=None,
        out=args.out,
        resume=args.resume,
        seed=0,
        no_export=False,
        verbose=1,
    )
    return run_mrale(ns)
