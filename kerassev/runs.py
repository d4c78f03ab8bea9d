"""Run folders: every reproduction writes into a fresh folder that is never overwritten.

A run folder holds ``run.json`` (config, seed, package versions, command line), per-stage
checkpoints and logs, out-of-fold predictions, tables and figures. ``--resume`` reopens the
latest unfinished run of the same kind instead of creating a new one.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
RUN_FILE = "run.json"
_VERSIONED_PACKAGES = (
    "kerassev",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "pydicom",
)


class RunError(RuntimeError):
    """A run folder cannot be created or resumed as asked."""


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (absent ones omitted)."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@dataclasses.dataclass
class RunFolder:
    """A run's folder. Use :meth:`create` or :meth:`resume`, not the constructor."""

    path: Path
    info: dict

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, parent: str | Path, kind: str, *, config: Any, seed: int) -> RunFolder:
        """Make ``parent/<timestamp>_<kind>``; a clash gets a numeric suffix, never reuse."""
        parent = Path(parent)
        parent.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = parent / f"{stamp}_{kind}"
        suffix = 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                suffix += 1
                path = parent / f"{stamp}_{kind}-{suffix}"
        info = {
            "kind": kind,
            "seed": seed,
            "config": _jsonable(config),
            "versions": package_versions(),
            "precision": [_active_precision()],
            "distribution": [_active_distribution()],
            "git_commit": _git_commit(),
            "command": sys.argv,
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "completed": None,
            "stages_done": [],
        }
        run = cls(path, info)
        run.save()
        return run

    @classmethod
    def resume(cls, parent_or_run: str | Path, kind: str, *, config: Any) -> RunFolder:
        """Reopen a run: ``parent_or_run`` is a run folder, or a parent whose latest
        unfinished ``kind`` run is taken. The stored config must equal ``config``."""
        target = Path(parent_or_run)
        if (target / RUN_FILE).is_file():
            candidates = [target]
        else:
            candidates = sorted(
                (p for p in target.glob(f"*_{kind}*") if (p / RUN_FILE).is_file()),
                key=lambda p: p.name,
            )
            candidates = [p for p in candidates if not cls._load_info(p).get("completed")]
        if not candidates:
            raise RunError(f"--resume: no unfinished '{kind}' run found in {target}")
        path = candidates[-1]
        info = cls._load_info(path)
        if info.get("kind") != kind:
            raise RunError(f"--resume: {path} is a '{info.get('kind')}' run, not '{kind}'")
        stored, wanted = info.get("config"), _jsonable(config)
        if stored != wanted:
            diff = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
            raise RunError(
                f"--resume: {path} was started with a different configuration "
                f"(differs in: {', '.join(diff)}); start a new run instead"
            )
        if info.get("completed"):
            raise RunError(f"--resume: {path} already completed at {info['completed']}")
        info.setdefault("resumed", []).append(_dt.datetime.now().isoformat(timespec="seconds"))
        info.setdefault("precision", []).append(_active_precision())  # another machine may differ
        info.setdefault("distribution", []).append(_active_distribution())
        run = cls(path, info)
        run.save()
        return run

    @staticmethod
    def _load_info(path: Path) -> dict:
        try:
            return json.loads((path / RUN_FILE).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise RunError(f"{path / RUN_FILE}: unreadable run record ({err})") from err

    def save(self) -> None:
        """Write ``run.json`` (atomically)."""
        tmp = self.path / (RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(self.info, indent=2, default=str))
        tmp.replace(self.path / RUN_FILE)

    # ------------------------------------------------------------------ contents
    def subdir(self, *parts: str) -> Path:
        path = self.path.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def new_file(self, *parts: str) -> Path:
        """Path for an output that must not exist yet (results are never overwritten)."""
        path = self.path.joinpath(*parts)
        if path.exists():
            raise FileExistsError(f"{path} already exists; refusing to overwrite a result")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def set_aside(self, *names: str) -> Path | None:
        """Move existing ``names`` (left by an attempt killed while writing them) into
        ``incomplete-<timestamp>/``: a resumed run rewrites them without losing the old copies."""
        present = [self.path / n for n in names if (self.path / n).exists()]
        if not present:
            return None
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        target = self.path / f"incomplete-{stamp}"
        target.mkdir()
        for path in present:
            path.rename(target / path.name)
        log.warning("moved partial outputs of an interrupted attempt to %s", target)
        return target

    def stage_done(self, stage: str) -> bool:
        return stage in self.info["stages_done"]

    def mark_stage_done(self, stage: str, *, seconds: float | None = None) -> None:
        """Record a finished stage (and its wall time in this session, when given)."""
        if stage not in self.info["stages_done"]:
            self.info["stages_done"].append(stage)
            if seconds is not None:
                self.info.setdefault("stage_seconds", {})[stage] = round(seconds, 1)
            self.save()

    def mark_complete(self, **summary: Any) -> None:
        self.info["completed"] = _dt.datetime.now().isoformat(timespec="seconds")
        self.info["summary"] = _jsonable(summary)
        self.save()

    def describe(self) -> str:
        """One line naming the run, for captions of every printed table and figure."""
        return f"run {self.path.name} (kind={self.info['kind']}, seed={self.info['seed']})"


def _active_distribution() -> dict[str, object]:
    from kerassev.distribute import active_distribution  # lazy: importing TensorFlow is slow

    return active_distribution()


def _active_precision() -> dict[str, str]:
    from kerassev.precision import active_precision  # lazy: importing Keras is slow

    return active_precision()
