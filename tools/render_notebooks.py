"""``make render``: each paper's notebook executed at its ``cpu`` preset from a finished cpu run,
written to ``docs/notebooks/<notebook>.md`` with its figures beside it (issue 23 goal 4).

The notebook reads ``KERASSEV_RENDER_FROM`` and resumes a copy of that run
(:func:`kerassev.render.reopen_for_render`): every trained stage reloads, none retrains, and the
run itself is never written. Runs are looked up under ``RENDER_RUNS`` (default ``runs``; several
folders separated by ``:``), the latest finished one of each kind; a paper without one is
skipped with the reason. Prints each notebook's time and the total.

The notebook and the package run from the committed HEAD (``git archive`` into a scratch
folder), so the commit named at the top is the code that ran; ``--worktree`` runs the working
tree instead (the header then says so).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "notebooks"
# notebook -> (run folder glob, preset, `kerassev reproduce` paper that makes the run): the
# papers whose cpu run has a page in docs/results
RENDERS = {
    "02_learner_lus": ("*_learner-cpu*", "cpu", "learner"),
    "04_covid_ssl_transfer": ("*_covid_ssl*", "cpu", "covid-ssl"),
    "05_ct_affinity": ("*_ct_affinity*", "cpu", "affinity"),
}
EXECUTE_TIMEOUT_S = 3 * 3600  # per cell; a render reloads models, it should take minutes


def finished_run(parents: list[Path], pattern: str, preset: str) -> Path | None:
    """The latest (by name: a timestamp) finished run matching ``pattern`` at ``preset``."""
    found = []
    for parent in parents:
        for path in parent.glob(pattern):
            try:
                info = json.loads((path / "run.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if info.get("completed") and run_preset(info) == preset:
                found.append(path)
    return max(found, key=lambda p: p.name, default=None)


def run_preset(info: dict) -> str | None:
    """The preset a run was made with: its stored config's ``preset`` field, else the
    ``--preset`` of the command line that made it (configs without the field, as paper 05's)."""
    stored = (info.get("config") or {}).get("preset")
    if stored:
        return stored
    command = info.get("command") or []
    if "reproduce" not in command:
        return None
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--preset")  # none given: the paper's first preset, not known here
    return parser.parse_known_args(command[command.index("reproduce") + 1 :])[0].preset


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


def _committed_tree(dest: Path) -> Path:
    """HEAD's files (no uncommitted change) extracted into ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def _dirty() -> bool:
    """Whether the working tree's package or notebooks differ from HEAD."""
    cmd = ["git", "status", "--porcelain", "--", "kerassev", "notebooks"]
    return bool(subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout.strip())


def render(
    notebook: str, run: Path, preset: str, out_dir: Path = DOCS, *, worktree: bool = False
) -> float:
    """Execute ``notebook`` from ``run`` into ``out_dir``; returns the seconds it took."""
    from kerassev import config as kconfig

    info = json.loads((run / "run.json").read_text())
    commit = _git("rev-parse", "--short", "HEAD")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kerassev-render-") as scratch:
        staging = Path(scratch) / "out"
        source = ROOT if worktree else _committed_tree(Path(scratch) / "src")
        env = {
            **os.environ,
            "KERASSEV_PRESET": preset,
            "KERASSEV_RENDER_FROM": str(run),
            "KERASSEV_RUNS": str(Path(scratch) / "runs"),
            kconfig.DATA_ENV: str(kconfig.data_root()),  # the checkout's, wherever the code is
            # the extracted package before the editable install's (a meta-path finder, last)
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(source), os.environ.get("PYTHONPATH")])
            ),
        }
        cmd = [
            sys.executable, "-m", "nbconvert", "--execute", "--to", "markdown",
            f"--ExecutePreprocessor.timeout={EXECUTE_TIMEOUT_S}",
            "--output-dir", str(staging), "--output", notebook,
            str(source / "notebooks" / f"{notebook}.ipynb"),
        ]  # fmt: skip
        subprocess.run(cmd, env=env, check=True)
        seconds = time.perf_counter() - started
        text = (staging / f"{notebook}.md").read_text(encoding="utf-8")
        text = text.replace(str(Path(scratch) / "runs"), "<render copy>")
        header = (
            f"> Rendered from run `{run.name}` (git {info.get('git_commit') or 'unknown'}, "
            f"preset {preset}) with notebook `notebooks/{notebook}.ipynb` at git "
            f"{commit}{' plus uncommitted changes' if worktree and _dirty() else ''}, "
            f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, took {seconds:.0f} s "
            "(models reloaded from the run, none retrained). Regenerate: `make render`.\n\n"
        )
        (staging / f"{notebook}.md").write_text(header + text, encoding="utf-8")
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in staging.iterdir():  # the .md and its figures folder replace the last render
            dest = out_dir / path.name
            if dest.is_dir():
                shutil.rmtree(dest)
            shutil.move(str(path), dest)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help=f"default: all of {', '.join(RENDERS)}")
    parser.add_argument(
        "--worktree",
        action="store_true",
        help="run the working tree's notebooks and package (default: the committed HEAD)",
    )
    args = parser.parse_args(argv)
    if not args.worktree and _dirty():
        print("note: uncommitted changes in kerassev/ or notebooks/ are not rendered (--worktree)")
    parents = [Path(p) for p in os.environ.get("RENDER_RUNS", "runs").split(":") if p]
    total, failed = time.perf_counter(), []
    for notebook in args.notebooks or RENDERS:
        pattern, preset, paper = RENDERS[notebook]
        run = finished_run(parents, pattern, preset)
        if run is None:
            where = ":".join(map(str, parents))
            print(
                f"skip {notebook}: no finished {preset} run {pattern} under {where} "
                f"(RENDER_RUNS); make one with `kerassev reproduce {paper} --preset {preset} "
                f"--out {parents[0] if parents else 'runs'}`"
            )
            continue
        print(f"render {notebook} from {run} ...", flush=True)
        try:
            seconds = render(notebook, run, preset, worktree=args.worktree)
        except subprocess.CalledProcessError as err:
            print(f"FAILED {notebook}: nbconvert exited with {err.returncode}")
            failed.append(notebook)
            continue
        print(f"rendered {notebook}: docs/notebooks/{notebook}.md in {seconds:.0f} s", flush=True)
    print(
        f"make render: {time.perf_counter() - total:.0f} s in all",
        *(["failed:", *failed] * bool(failed)),
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
