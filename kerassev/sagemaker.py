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
  copied there (uploaded as ``model.tar.gz``), with the run's ``REPORT.md`` and ``run.json``; in a
  multi-worker job only the chief delivers (the other workers' run folders are temporary);
* ``SM_HOSTS`` / ``SM_CURRENT_HOST`` -> ``TF_CONFIG`` when the container has not set it and the job
  has more than one instance (:func:`ensure_tf_config`), so ``distribution=auto`` trains with
  ``MultiWorkerMirroredStrategy``; hyper-parameters SageMaker itself adds (``sagemaker_*``, e.g.
  ``sagemaker_multi_worker_mirrored_strategy_enabled``) are not ``--set`` values.

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
#: The port every worker listens on in a TF_CONFIG built from SM_HOSTS (instances of one job share
#: a private network; each runs one worker). ``KERASSEV_WORKER_PORT`` overrides it.
WORKER_PORT = 8890
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
    hps = {
        k: v
        for k, v in hyperparameters(env).items()
        if k != "paper" and not k.startswith("sagemaker_")  # the launcher's, not the recipe's
    }
    for key in OPTION_HPS:
        if key in hps and not _given(argv, f"--{key}"):
            argv += [f"--{key}", _set_value(hps[key])]
    sets = [f"{k}={_set_value(v)}" for k, v in hps.items() if k not in OPTION_HPS]
    if sets:
        argv += ["--set", *sets]
    return argv


def tf_config_from_hosts(env: Mapping[str, str] | None = None) -> str | None:
    """``TF_CONFIG`` for a job of several instances, from ``SM_HOSTS`` (a JSON list, e.g.
    ``["algo-1", "algo-2"]``) and ``SM_CURRENT_HOST``: one worker per host, in ``SM_HOSTS``
    order, so ``algo-1`` (index 0) is the chief. None for a one-instance job or without them."""
    env = os.environ if env is None else env
    if not env.get("SM_HOSTS"):
        return None
    try:
        hosts = json.loads(env["SM_HOSTS"])
    except json.JSONDecodeError as err:
        raise TrainingJobError(
            f"SM_HOSTS is not a JSON list: {err}: {env['SM_HOSTS'][:200]}"
        ) from err
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise TrainingJobError(f"SM_HOSTS must be a JSON list of host names, got {hosts!r}")
    if len(hosts) < 2:
        return None
    current = env.get("SM_CURRENT_HOST")
    if current not in hosts:
        raise TrainingJobError(f"SM_CURRENT_HOST {current!r} is not one of SM_HOSTS {hosts}")
    port = int(env.get("KERASSEV_WORKER_PORT", WORKER_PORT))
    cluster = {"worker": [f"{h}:{port}" for h in hosts]}
    return json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": hosts.index(current)}}
    )


def ensure_tf_config(env: dict | None = None) -> str | None:
    """Set ``TF_CONFIG`` from the job's hosts (:func:`tf_config_from_hosts`) unless the container
    already did (SageMaker's TensorFlow images do when the estimator's ``distribution`` enables
    ``multi_worker_mirrored_strategy``); returns what ``TF_CONFIG`` is now."""
    env = os.environ if env is None else env
    if not env.get("TF_CONFIG"):
        built = tf_config_from_hosts(env)
        if built is not None:
            env["TF_CONFIG"] = built
    return env.get("TF_CONFIG")


def deliver_model(run_path: str | Path, env: Mapping[str, str] | None = None) -> Path | None:
    """Copy a finished run's exports, REPORT.md and run.json into ``SM_MODEL_DIR`` (None when
    that is unset, and on a multi-worker job's other workers). Refuses to overwrite files."""
    from kerassev.distributed_io import is_chief

    env = os.environ if env is None else env
    if not env.get("SM_MODEL_DIR") or not is_chief(env.get("TF_CONFIG")):
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

    ensure_tf_config()
    return cli_main(["reproduce", str(hyperparameters().get("paper", "mrale"))])


if __name__ == "__main__":
    sys.exit(main())
