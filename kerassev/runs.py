"""Run folders: every reproduction writes into a fresh folder that is never overwritten.

A run folder holds ``run.json`` (config, seed, package versions, command line), per-stage
checkpoints and logs, out-of-fold predictions, tables and figures. ``--resume`` reopens the
latest unfinished run of the same kind instead of creating a new one.

Under ``MultiWorkerMirroredStrategy`` only the chief writes in ``parent``; the other workers keep
a temporary run folder that :meth:`RunFolder.mark_complete` removes (:mod:`kerassev.distributed_io`).
Restarted with the same command after a failure, every worker continues the latest unfinished
run of the same kind, configuration and cluster (as Keras' ``BackupAndRestore`` continues from
its fixed folder), so the workers resume together from the chief's last finished epoch.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
RUN_FILE = "run.json"
# Packages whose version can change a result: the frameworks, numerics, and every decoder or
# evaluator a recipe reads its data or scores through (DICOM codecs, video, NIfTI, COCO AP,
# LiteRT for TFLite checks). package_versions() adds any other runtime requirement of kerassev.
_VERSIONED_PACKAGES = (
    "kerassev",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "pillow",
    "h5py",
    "pydicom",
    "pylibjpeg",
    "pylibjpeg-libjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-rle",
    "av",
    "nibabel",
    "pycocotools",
    "ai-edge-litert",
)


class RunError(RuntimeError):
    """A run folder cannot be created or resumed as asked."""


def package_versions() -> dict[str, str]:
    """Installed versions (``importlib.metadata``) of the packages a result depends on: the list
    above plus kerassev's other runtime requirements; absent ones are omitted."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in dict.fromkeys([*_VERSIONED_PACKAGES, *_runtime_requirements()]):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _runtime_requirements() -> list[str]:
    """Names in kerassev's ``Requires-Dist`` without an extra (``pip install kerassev[test]``)."""
    try:
        requires = metadata.requires("kerassev") or []
    except metadata.PackageNotFoundError:
        return []
    names = (re.match(r"[A-Za-z0-9._-]+", r) for r in requires if "extra ==" not in r)
    return [m.group(0) for m in names if m]


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
    scratch: bool = False  # a non-chief worker's temporary folder, removed when complete

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, parent: str | Path, kind: str, *, config: Any, seed: int) -> RunFolder:
        """Make ``parent/<timestamp>_<kind>``; a clash gets a numeric suffix, never reuse.

        Under multi-worker training a non-chief worker makes it in a temporary folder, and a
        restarted cluster continues its unfinished run instead (see the module docstring)."""
        parent, scratch = Path(parent), False
        if _multi_worker():
            from kerassev import distributed_io

            restart = _cluster_restart(parent, kind, config)
            if restart is not None:
                return cls.resume(restart, kind, config=config)
            if not distributed_io.is_chief():
                parent, scratch = distributed_io.scratch_parent(), True
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
        run = cls(path, info, scratch=scratch)
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
        scratch = False
        if _multi_worker():
            from kerassev import distributed_io

            if not distributed_io.is_chief():  # continue from a copy of the chief's state
                path, scratch = distributed_io.copy_for_worker(path), True
        info.setdefault("resumed", []).append(_dt.datetime.now().isoformat(timespec="seconds"))
        info.setdefault("precision", []).append(_active_precision())  # another machine may differ
        info.setdefault("distribution", []).append(_active_distribution())
        run = cls(path, info, scratch=scratch)
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
        """Record the end of the run; a non-chief worker's temporary folder is removed."""
        self.info["completed"] = _dt.datetime.now().isoformat(timespec="seconds")
        self.info["summary"] = _jsonable(summary)
        self.save()
        if self.scratch:
            from kerassev.distributed_io import remove_scratch

            remove_scratch(self.path)

    def describe(self) -> str:
        """One line naming the run, for captions of every printed table and figure."""
        return f"run {self.path.name} (kind={self.info['kind']}, seed={self.info['seed']})"


def _multi_worker() -> bool:
    from kerassev.distribute import multi_worker_active

    return multi_worker_active()


def _cluster_restart(parent: Path, kind: str, config: Any) -> Path | None:
    """The latest unfinished ``kind`` run in ``parent`` started by this same cluster with this
    configuration: a restarted multi-worker job continues it (None when there is none)."""
    from kerassev.distributed_io import cluster_workers

    wanted, cluster = _jsonable(config), cluster_workers()
    for path in sorted(parent.glob(f"*_{kind}*"), key=lambda p: p.name, reverse=True):
        if not (path / RUN_FILE).is_file():
            continue
        info = RunFolder._load_info(path)
        recorded = (info.get("distribution") or [{}])[0].get("cluster")
        same = info.get("kind") == kind and info.get("config") == wanted and recorded == cluster
        if same and not info.get("completed"):
            return path
    return None


def _active_distribution() -> dict[str, object]:
    from kerassev.distribute import active_distribution  # lazy: importing TensorFlow is slow

    return active_distribution()


def _active_precision() -> dict[str, str]:
    from kerassev.precision import active_precision  # lazy: importing Keras is slow

    return active_precision()


# Files at least this big (weights, checkpoints, exports) are hard-linked into a reopened copy,
# not copied: a finished run reloads them and never writes them again.
LINK_MIN_BYTES = 1 << 20


def reopen_copy(
    run_dir: str | Path, scratch: str | Path, *, rerun: tuple[str, ...] = ("outputs", "exports")
) -> Path:
    """A resumable copy of the finished run ``run_dir`` at ``scratch/<its name>``.

    Small files are copied, big ones hard-linked (symlinked across file systems); in the copy's
    ``run.json`` ``completed`` is cleared, the stages in ``rerun`` are dropped so a resume
    rewrites them (after :meth:`RunFolder.set_aside` moves the old ones away), and paths into
    ``run_dir`` point into the copy. The original is never written: rendering a notebook from
    a run (``make render``) reloads every trained stage and retrains none."""
    source, scratch = Path(run_dir).resolve(), Path(scratch)
    info = RunFolder._load_info(source)
    if not info.get("completed"):
        raise RunError(f"{source} is not a finished run (no 'completed' in {RUN_FILE})")
    target = scratch / source.name
    if target.exists():
        raise RunError(f"{target} already exists; refusing to overwrite it")
    target.mkdir(parents=True)
    for path in sorted(source.rglob("*")):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        elif path.name != RUN_FILE:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _copy_or_link(path, dest)
    info = _moved(info, source.name, str(target.resolve()))
    info["reopened_from"] = str(source)
    info["completed"] = None
    info["stages_done"] = [s for s in info.get("stages_done", []) if s not in rerun]
    RunFolder(target, info).save()
    return target


def _copy_or_link(path: Path, dest: Path) -> None:
    import os
    import shutil

    if path.is_symlink() or path.stat().st_size < LINK_MIN_BYTES:
        shutil.copy2(path, dest)
        return
    try:
        os.link(path, dest)
    except OSError:  # another file system, or links not allowed
        dest.symlink_to(path)


def _moved(value: Any, name: str, new: str) -> Any:
    """``value`` with each path inside run folder ``name`` (absolute or relative, as the run
    recorded it) moved to inside folder ``new``."""
    if isinstance(value, dict):
        return {k: _moved(v, name, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, name, new) for v in value]
    if isinstance(value, str):
        at = value.find(name)
        rest = value[at + len(name) :] if at >= 0 else None
        if rest is not None and (at == 0 or value[at - 1] == "/") and rest[:1] in ("", "/"):
            return new + rest
    return value
