"""Notebooks rendered from a finished run (``make render``, ``docs/notebooks/``).

A notebook run with ``KERASSEV_RENDER_FROM=<run folder>`` calls :func:`reopen_for_render`: it
takes the run's own command-line overrides (``--set``, ``--precision``, ``--seed``), checks that
the notebook's configuration then equals the run's stored one, and resumes a copy of the run
(:func:`kerassev.runs.reopen_copy`), so every trained stage is reloaded and none retrains.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from kerassev.recipes.overrides import apply_overrides
from kerassev.runs import RunError, RunFolder, _jsonable, reopen_copy

RENDER_ENV = "KERASSEV_RENDER_FROM"


def command_overrides(command: list[str]) -> list[str]:
    """The ``KEY=VALUE`` overrides, in order, that a ``kerassev reproduce`` command line gave
    (``--set``, ``--precision``, ``--distribution``, ``--seed``); none for any other command
    (a run made by a notebook records the kernel's command line)."""
    if "reproduce" not in command:
        return []
    from kerassev.cli.reproduce import _AppendSetting  # the CLI's own --precision shorthand

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[])
    for name in ("precision", "distribution", "seed"):
        parser.add_argument(f"--{name}", dest="overrides", action=_AppendSetting, setting=name)
    args, _ = parser.parse_known_args(command[command.index("reproduce") + 1 :])
    return args.overrides


def config_for_run(config: Any, run_dir: str | Path) -> Any:
    """``config`` (a recipe's dataclass, from the same preset) with the run's command-line
    overrides applied; RunError naming each field where it still differs from what the run
    stored (a preset changed since the run, or an option this cannot replay)."""
    info = RunFolder._load_info(Path(run_dir))
    fields = {f.name for f in dataclasses.fields(config)}
    items = [i for i in command_overrides(info.get("command") or []) if i.split("=")[0] in fields]
    config = apply_overrides(config, items)
    stored, ours = info.get("config") or {}, _jsonable(config)
    differ = sorted(k for k in ours if k in stored and stored[k] != ours[k])
    missing = sorted(k for k in ours if k not in stored)
    if differ or missing:
        detail = ", ".join(f"{k} (run {stored[k]!r}, notebook {ours[k]!r})" for k in differ)
        if missing:
            detail += ("; " if detail else "") + f"not in the run: {', '.join(missing)}"
        raise RunError(
            f"{run_dir}: the notebook's configuration differs from the run's: {detail}; "
            "render from a run of the current code and preset"
        )
    return config


def reopen_for_render(run_dir: str | Path, config: Any, scratch: str | Path) -> tuple[Any, Path]:
    """``(config, run folder to resume)``: the run's configuration (see :func:`config_for_run`)
    and a copy of finished run ``run_dir`` under ``scratch``; pass both to the recipe with
    ``resume=True``. The original run is left as it is."""
    config = config_for_run(config, run_dir)
    return config, reopen_copy(run_dir, scratch)
