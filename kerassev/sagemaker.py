"""SageMaker training jobs: ``kerassev reproduce <paper>`` inside one, driven by the job's variables.

When a training job's variables are set, the job's layout fills in what the command line leaves
out (an explicit option always wins):

* ``SM_CHANNEL_TRAINING`` (or ``SM_CHANNEL_DATA``) -> ``--data``: the paper's data folder
  (paper 01: MIDRC DICOMs; paper 03: a covid_chestxray copy);
* ``SM_CHANNEL_LABELS`` -> ``--labels`` (paper 01): the one ``.csv`` in that channel;
* ``SM_CHANNEL_WEIGHTS`` -> ``--weights`` (paper 01) / ``--imagenet-weights`` (paper 03): the one
  ``.h5`` in that channel; ``SM_CHANNEL_XRV`` -> ``--xrv-checkpoint`` (paper 03);
* ``SM_CHANNEL_CNCB`` / ``SM_CHANNEL_COVIDX`` -> ``--cncb`` / ``--covidx`` (paper 05): the CNCB
  image folder and the COVIDx CT-1 split files;
* ``SM_OUTPUT_DATA_DIR`` -> ``--out``: the run folder goes there (uploaded as ``output.tar.gz``);
* ``SM_HPS`` (the estimator's ``hyperparameters`` as JSON) -> ``--preset`` and ``--seed`` from
  the keys of those names, every other key as ``--set KEY=VALUE``; ``paper`` picks the paper;
* ``SM_MODEL_DIR``: after the run, its ``exports/`` (``.keras``, SavedModel, TFLite, README) is
  copied there (uploaded as ``model.tar.gz``), with the run's ``REPORT.md`` and ``run.json``.

The estimator's entry point is ``sagemaker_train.py`` at the repository root (or
``python -m kerassev.sagemaker``); see README.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

#: Hyper-parameters that are command-line options rather than ``--set`` values.
OPTION_HPS = ("preset", "seed")
#: Per paper: command-line option -> (channel names, file suffix or None for the folder itself).
CHANNEL_OPTIONS = {
    "mrale": {
        "--data": (("TRAINING", "DATA"), None),
        "--labels": (("LABELS",), ".csv"),
        "--weights": (("WEIGHTS",), ".h5"),
    },
    "cohen": {
        "--data": (("TRAINING", "DATA"), None),
        "--imagenet-weights": (("WEIGHTS",), ".h5"),
        "--xrv-checkpoint": (("XRV",), ".h5"),
    },
    "affinity": {  # paper 05: ct_lesions slices, CNCB images, COVIDx CT-1 split files
        "--data": (("TRAINING", "DATA"), None),
        "--cncb": (("CNCB",), None),
        "--covidx": (("COVIDX",), None),
    },
}


class TrainingJobError(ValueError):
    """The training job's layout does not say unambiguously what to run on."""


def in_training_job(env: Mapping[str, str] | None = None) -> bool:
    """Whether SageMaker training-job variables are set."""
    env = os.environ if env is None else env
    return any(k in env for k in ("SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR", "SM_HPS")) or any(
        k.startswith("SM_CHANNEL_") for k in env
    )


def hyperparameters(env: Mapping[str, str] | None = None) -> dict:
    """``SM_HPS`` as a dict (empty when unset)."""
    env = os.environ if env is None else env
    text = env.get("SM_HPS") or "{}"
    try:
        hps = json.loads(text)
    except json.JSONDecodeError as err:
        raise TrainingJobError(f"SM_HPS is not JSON: {err}: {text[:200]}") from err
    if not isinstance(hps, dict):
        raise TrainingJobError(f"SM_HPS must be a JSON object, got {text[:200]}")
    return hps


def _set_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _channel_file(folder: Path, suffix: str, option: str) -> str:
    found = sorted(p for p in folder.rglob(f"*{suffix}") if p.is_file())
    if len(found) != 1:
        raise TrainingJobError(
            f"{option}: channel {folder} must hold exactly one {suffix} file, found {len(found)}"
        )
    return str(found[0])


def _given(argv: list[str], option: str) -> bool:
    return any(a == option or a.startswith(option + "=") for a in argv)


def reproduce_argv(paper: str, argv: list[str], env: Mapping[str, str] | None = None) -> list[str]:
    """The ``kerassev reproduce <paper> ...`` arguments after ``paper``, completed from the
    training job's variables (options already in ``argv`` are kept as given)."""
    env = os.environ if env is None else env
    argv = list(argv)
    for option, (channels, suffix) in CHANNEL_OPTIONS.get(paper, {}).items():
        if _given(argv, option):
            continue
        folder = next((env[f"SM_CHANNEL_{c}"] for c in channels if f"SM_CHANNEL_{c}" in env), None)
        if folder is None:
            continue
        value = folder if suffix is None else _channel_file(Path(folder), suffix, option)
        argv += [option, value]
    if not _given(argv, "--out") and env.get("SM_OUTPUT_DATA_DIR"):
        argv += ["--out", env["SM_OUTPUT_DATA_DIR"]]
    hps = {k: v for k, v in hyperparameters(env).items() if k != "paper"}
    for key in OPTION_HPS:
        if key in hps and not _given(argv, f"--{key}"):
            argv += [f"--{key}", _set_value(hps[key])]
    sets = [f"{k}={_set_value(v)}" for k, v in hps.items() if k not in OPTION_HPS]
    if sets:
        argv += ["--set", *sets]
    return argv


def deliver_model(run_path: str | Path, env: Mapping[str, str] | None = None) -> Path | None:
    """Copy a finished run's exports, REPORT.md and run.json into ``SM_MODEL_DIR`` (None when
    that is unset). Refuses to overwrite files already there."""
    env = os.environ if env is None else env
    if not env.get("SM_MODEL_DIR"):
        return None
    run_path, model_dir = Path(run_path), Path(env["SM_MODEL_DIR"])
    model_dir.mkdir(parents=True, exist_ok=True)
    items = [run_path / "REPORT.md", run_path / "run.json"]
    if (run_path / "exports").is_dir():
        items += sorted((run_path / "exports").iterdir())
    for item in items:
        if not item.exists():
            continue
        target = model_dir / item.name
        if target.exists():
            raise FileExistsError(f"{target} already exists; refusing to overwrite it")
        if item.is_dir():
            shutil.copytree(item, target)
        else:
            shutil.copy2(item, target)
    return model_dir


def main() -> int:
    """Entry point of a training job: ``kerassev reproduce <SM_HPS["paper"]>`` (default mrale).

    SageMaker also passes each hyper-parameter as ``--key value`` arguments; they are ignored
    here because ``SM_HPS`` carries the same values with their JSON types."""
    from kerassev.cli import main as cli_main

    return cli_main(["reproduce", str(hyperparameters().get("paper", "mrale"))])


if __name__ == "__main__":
    sys.exit(main())
