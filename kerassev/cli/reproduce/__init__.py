"""``kerassev reproduce <paper>``: run a paper end to end into a new run folder.

One module per paper in this package, each defining ``register(papers)`` for its sub-command;
the options every paper shares come from :func:`add_common_arguments`, so they read alike.
"""

from __future__ import annotations

import argparse
import importlib

from kerassev.distribute import DISTRIBUTIONS
from kerassev.precision import PRECISIONS

#: What each preset is for, in --preset's help (a paper offers some of them).
PRESET_HELP = {
    "smoke": "smoke = tiny and fast, for CI and a first try",
    "cpu": "cpu = sized for a real result on a few CPU cores",
    "paper": "paper = the paper's protocol and sizes",
}

# Sub-command modules, in help order (paper 01, 03, then the papers still to come).
PAPER_MODULES = ["mrale", "learner", "cohen", "covid_ssl", "ct_lesions", "affinity"]


def register(subparsers) -> None:
    parser = subparsers.add_parser("reproduce", help="reproduce a paper end to end")
    papers = parser.add_subparsers(dest="paper", required=True)
    for name in PAPER_MODULES:
        importlib.import_module(f"kerassev.cli.reproduce.{name}").register(papers)


def finish_run(run_path) -> None:
    """Print where the run folder is; in a SageMaker training job, copy its exports and report
    to ``SM_MODEL_DIR`` (see :mod:`kerassev.sagemaker`)."""
    from kerassev.sagemaker import deliver_model

    print(f"\nrun folder: {run_path}")
    model_dir = deliver_model(run_path)
    if model_dir is not None:
        print(f"model, exports and report copied to {model_dir}")


def add_common_arguments(
    p: argparse.ArgumentParser, presets: tuple[str, ...] = ("smoke", "paper")
) -> None:
    """--preset, --out, --resume, --seed, --set and -v, the same for every paper."""
    p.add_argument(
        "--preset",
        choices=presets,
        default=presets[0],
        help=f"configuration preset (default {presets[0]}): "
        + "; ".join(PRESET_HELP[name] for name in presets),
    )
    p.add_argument(
        "--out", required=True, help="parent folder (required); each run gets a new sub-folder"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the latest unfinished run of the same configuration in --out "
        "(default: start a new run folder)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed of splits, initialisation and augmentation (default 0)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override preset values, typed from the config's fields (none, true/false, "
        "comma-separated tuples; dotted keys for nested settings), e.g. --set image_size=128 "
        "(default: none; the preset as it is)",
    )
    p.add_argument(
        "--precision",
        dest="overrides",
        action=_AppendSetting,
        setting="precision",
        choices=PRECISIONS,
        help="numeric precision (default: the preset's; auto = bf16 on AMX/AVX512-BF16 CPUs, "
        "mixed float16 on tensor-core GPUs, else float32); same as --set precision=...",
    )
    p.add_argument(
        "--distribution",
        dest="overrides",
        action=_AppendSetting,
        setting="distribution",
        choices=DISTRIBUTIONS,
        help="tf.distribute strategy (default auto: MultiWorkerMirrored under a multi-task "
        "TF_CONFIG, Mirrored on 2+ GPUs, else one device); batch sizes stay global",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: one progress bar per training stage; -vv: Keras' line per epoch "
        "(default 0: no training progress output)",
    )


def preset_config(args: argparse.Namespace, config_cls, **fields):
    """``config_cls.from_preset(args.preset, **fields)`` with ``--set`` / ``--precision`` /
    ``--distribution`` applied; a bad value becomes one line and exit status 2."""
    from kerassev.cli import UserError
    from kerassev.recipes.overrides import apply_overrides

    try:
        config = apply_overrides(config_cls.from_preset(args.preset, **fields), args.overrides)
    except ValueError as err:
        raise UserError(str(err)) from err
    # --set precision=... / distribution=... bypass argparse's choices: check them before a run
    for name, allowed in (("precision", PRECISIONS), ("distribution", DISTRIBUTIONS)):
        value = getattr(config, name, allowed[0])
        if value not in allowed:
            raise UserError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return config


class _AppendSetting(argparse.Action):
    """``--precision X`` as shorthand for ``--set precision=X`` (one path into the config)."""

    def __init__(self, option_strings, dest, setting: str, **kwargs):
        self.setting = setting
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, value, option_string=None):
        current = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, [*current, f"{self.setting}={value}"])
