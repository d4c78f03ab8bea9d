""":func:`check_dataset`: a local copy of a data set against its manifest, the report behind
``kerassev data check`` (missing or unreadable files, labels out of range or not numbers,
duplicated ids, empty patient ids, checksums)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kerassev import config
from kerassev.data.manifest.schema import Manifest, ManifestError, load_manifest

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mpeg", ".mpg", ".mov"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
_MAX_PER_PROBLEM = 20  # report entries per (table, problem) before summarising the rest


@dataclass
class CheckReport:
    """Outcome of :func:`check_dataset`: ``(file, problem)`` errors and warnings, and counts."""

    name: str
    root: Path
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        lines = [f"data check {self.name} at {self.root}"]
        lines += [f"  {k}: {v}" for k, v in self.counts.items()]
        for title, items in (("warnings", self.warnings), ("errors", self.errors)):
            if items:
                lines.append(f"{len(items)} {title}:")
                lines += [f"  {f}: {p}" for f, p in items]
        lines.append("OK" if self.ok else f"FAILED: {len(self.errors)} error(s)")
        return "\n".join(lines)


class _Checker:
    def __init__(self, manifest: Manifest, root: Path):
        self.m, self.root = manifest, root
        self.report = CheckReport(manifest.name, root)
        self.to_open: dict[Path, str] = {}  # files to decode -> who referenced them

    def rel(self, p: Path) -> str:
        try:
            return str(p.relative_to(self.root))
        except ValueError:
            return str(p)

    def add(self, level: str, file: str, problem: str) -> None:
        (self.report.errors if level == "error" else self.report.warnings).append((file, problem))

    def add_rows(self, level: str, file: str, problem: str, rows: list[str]) -> None:
        """One entry per offending row, summarised beyond _MAX_PER_PROBLEM."""
        for r in rows[:_MAX_PER_PROBLEM]:
            self.add(level, file, f"{r}: {problem}")
        if len(rows) > _MAX_PER_PROBLEM:
            self.add(level, file, f"{len(rows) - _MAX_PER_PROBLEM} more rows: {problem}")

    def count(self, key: str, n: int) -> None:
        self.report.counts[key] = self.report.counts.get(key, 0) + int(n)

    # -- sections ---------------------------------------------------------------------------
    def layout(self) -> None:
        for item in self.m.layout:
            level = item.get("level", "error")
            if "path" in item:
                if not (self.root / item["path"]).exists():
                    self.add(level, item["path"], "missing")
                continue
            found = sorted(p for p in self.root.glob(item["glob"]) if p.is_file())
            self.count(f"files {item['glob']}", len(found))
            want = item.get("count")
            if not found:
                self.add(level, item["glob"], "no files match")
            elif want is not None and len(found) != want:
                self.add("warning", item["glob"], f"{len(found)} files, manifest expects {want}")
            if item.get("open", False):
                for p in found:
                    self.to_open.setdefault(p, item["glob"])

    def read_table(self, spec: dict) -> pd.DataFrame | None:
        path = self.root / spec["path"]
        if not path.is_file():
            if spec.get("required", True):
                self.add("error", spec["path"], "label/table file missing")
            return None
        try:
            df = pd.read_csv(path, **(spec.get("read") or {}))
        except (ValueError, OSError, UnicodeDecodeError) as err:
            self.add("error", spec["path"], f"unreadable table: {err}")
            return None
        for col, allowed in (spec.get("filter") or {}).items():
            if col not in df.columns:
                self.add("error", spec["path"], f"filter column '{col}' missing")
                return None
            allowed = allowed if isinstance(allowed, list) else [allowed]
            df = df[df[col].isin(allowed)]
        return df

    def table(self, spec: dict) -> None:
        df = self.read_table(spec)
        if df is None:
            return
        name, fname = spec["name"], spec["path"]
        self.count(f"{name} rows", len(df))
        key_col = spec.get("key") or next(iter(f["column"] for f in spec.get("files") or []), None)

        def row_names(mask: pd.Series) -> list[str]:
            sel = df[mask.to_numpy()]
            keys = sel[key_col].astype(str) if key_col in df.columns else [None] * len(sel)
            return [
                f"row {i}" + (f" ({k})" if k else "") for i, k in zip(sel.index, keys, strict=True)
            ]

        columns = {
            c: cs
            for c, cs in (spec.get("columns") or {}).items()
            if c in df.columns or not cs.get("optional", False)
        }
        want = [*columns, *(f["column"] for f in spec.get("files") or [])]
        if spec.get("patient_id_column"):
            want.append(spec["patient_id_column"])
        missing = [c for c in dict.fromkeys(want) if c not in df.columns]
        if missing:
            self.add("error", fname, f"missing column(s) {missing}")
            return
        if spec.get("count") is not None and len(df) != spec["count"]:
            self.add("warning", fname, f"{len(df)} rows, manifest expects {spec['count']}")

        for col, cspec in columns.items():
            self._column(fname, df, col, cspec, row_names)
        pid = spec.get("patient_id_column")
        if pid:
            empty = df[pid].isna() | (df[pid].astype(str).str.strip() == "")
            self.add_rows("error", fname, f"empty patient id '{pid}'", row_names(empty))
        for ucol in spec.get("unique") or []:
            dup = df[ucol].duplicated(keep=False) & df[ucol].notna()
            known = set(map(str, spec.get("known_duplicates") or []))
            is_known = df[ucol].astype(str).isin(known)
            self.add_rows("error", fname, f"duplicated '{ucol}'", row_names(dup & ~is_known))
            if (dup & is_known).any():
                n = int(df.loc[dup & is_known, ucol].nunique())
                self.add("warning", fname, f"{n} known duplicated '{ucol}' values (see quirks)")
        # checks see numeric columns as numbers; rows already reported as non-numeric are skipped
        num_cols = [c for c, cs in columns.items() if _is_numeric(cs)]
        typed = df.copy()
        for c in num_cols:
            typed[c] = pd.to_numeric(df[c], errors="coerce")
        skip = (typed[num_cols].isna() & df[num_cols].notna()).any(axis=1)
        for check in spec.get("checks") or []:
            try:
                result = typed.eval(check["expr"], engine="python")
                good = pd.Series(result, index=df.index).fillna(False).astype(bool) | skip
            except Exception as err:  # a broken expression is a manifest bug, report it as one
                raise ManifestError(f"{self.m.path}: tables.{name}.checks: {err}") from err
            self.add_rows("error", fname, check.get("message", check["expr"]), row_names(~good))
        for fspec in spec.get("files") or []:
            self._files(spec, df, fspec, row_names)

    def _column(self, fname, df, col, cspec, row_names) -> None:
        values = df[col]
        required = cspec.get("required", False)
        if required:
            self.add_rows("error", fname, f"'{col}' is empty", row_names(values.isna()))
        if _is_numeric(cspec):
            num = pd.to_numeric(values, errors="coerce")
            bad = num.isna() & values.notna()
            for i, r in zip(df.index[bad.to_numpy()], row_names(bad), strict=True):
                self.add("error", fname, f"{r}: '{col}' is not a number: {values[i]!r}")
            if cspec.get("type") == "int":
                frac = num.notna() & (num % 1 != 0)
                self.add_rows("error", fname, f"'{col}' is not an integer", row_names(frac))
            if cspec.get("range") is not None:
                lo, hi = cspec["range"]
                out = num.notna() & ((num < lo) | (num > hi))
                for i, r in zip(df.index[out.to_numpy()], row_names(out), strict=True):
                    self.add("error", fname, f"{r}: '{col}' = {num[i]} outside [{lo}, {hi}]")
        if cspec.get("allowed") is not None:
            allowed = set(map(str, cspec["allowed"]))
            bad = values.notna() & ~values.astype(str).isin(allowed)
            self.add_rows("error", fname, f"'{col}' not in {sorted(allowed)}", row_names(bad))

    def _files(self, spec, df, fspec, row_names) -> None:
        base = self.root / fspec.get("dir", ".")
        col, level = fspec["column"], fspec.get("missing", "error")
        names = df[col].dropna().astype(str)
        if fspec.get("match") == "stem":  # file named without its extension (lus_pocus)
            index: dict[str, Path] = {}
            for p in self.root.glob(fspec.get("search", "**/*")):
                if p.is_file():
                    index.setdefault(p.stem, p)
            paths = names.map(lambda s: index.get(s))
        else:
            paths = names.map(lambda s: base / s)
        present = paths.map(lambda p: p is not None and p.is_file())
        self.count(f"{spec['name']} files present", int(present.sum()))
        for i in present.index[~present.to_numpy()]:
            shown = self.rel(paths[i]) if paths[i] is not None else f"{names[i]}.*"
            self.add(level, shown, f"file listed in {spec['path']} (row {i}) is missing")
        if fspec.get("open", True):
            for p in paths[present]:
                self.to_open.setdefault(p, spec["path"])

    def pairs(self) -> None:
        for spec in self.m.pairs:
            for img in sorted(self.root.glob(spec["images"])):
                mask = img.parent / spec["mask"].format(stem=img.stem, name=img.name)
                self.count("pairs", 1)
                if not mask.is_file():
                    self.add("error", self.rel(img), f"mask {self.rel(mask)} missing")
                    continue
                self._pair_sizes(img, mask, spec)

    def _pair_sizes(self, img: Path, mask: Path, spec: dict) -> None:
        import numpy as np
        from PIL import Image

        try:
            with Image.open(img) as a, Image.open(mask) as b:
                if a.size != b.size:
                    self.add("error", self.rel(mask), f"size {b.size} != image size {a.size}")
                if spec.get("mask_values") is not None:
                    extra = set(np.unique(np.asarray(b)).tolist()) - set(spec["mask_values"])
                    if extra:
                        self.add("error", self.rel(mask), f"unexpected mask values {extra}")
        except OSError as err:
            self.add("error", self.rel(mask), f"unreadable: {err}")

    def checksums(self) -> None:
        for spec in self.m.checksums:
            if "sha256" in spec:
                self._sha(self.root / spec["path"], spec["sha256"])
                continue
            if not (self.root / spec["path"]).is_file():  # no reference, nothing to verify
                self.add("warning", spec["path"], "checksum list missing; checksums not verified")
                continue
            df = self.read_table({"name": "checksums", **spec})
            if df is None:
                continue
            base = self.root / spec.get("dir", ".")
            for name, digest in zip(
                df[spec["file_column"]], df[spec["sha256_column"]], strict=True
            ):
                self._sha(base / str(name), str(digest))

    def _sha(self, path: Path, expected: str) -> None:
        if not path.is_file():
            return  # already reported as missing where it matters
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self.count("checksums verified", 1)
        if digest != expected.lower():
            self.add("error", self.rel(path), f"sha256 {digest[:12]}… != expected {expected[:12]}…")

    def open_files(self) -> None:
        for path in sorted(self.to_open):
            problem = _open_problem(path)
            self.count("files opened", 1)
            if problem:
                self.add("error", self.rel(path), problem)


def _is_numeric(cspec: dict) -> bool:
    return cspec.get("type", "float") in {"int", "float"}


def _open_problem(path: Path) -> str | None:
    """None when ``path`` decodes (images fully, DICOM headers, videos non-empty)."""
    suffix = path.suffix.lower()
    try:
        if suffix in DICOM_SUFFIXES:
            from kerassev.io.dicom import read_dicom_meta

            read_dicom_meta(path)
        elif suffix in VIDEO_SUFFIXES:
            if path.stat().st_size == 0:
                return "empty video file"
        else:
            from PIL import Image

            with Image.open(path) as im:
                im.load()
    except Exception as err:  # any decoder failure is a data problem to report, not a crash
        return f"unreadable: {type(err).__name__}: {err}"
    return None


def check_dataset(manifest: Manifest | str | Path, root: str | Path) -> CheckReport:
    """Check the data at ``root`` against ``manifest``: missing files, unreadable images,
    labels out of range or not numbers, duplicated ids, empty patient ids, checksums."""
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise config.DataNotFoundError(f"data root {root} does not exist")
    checker = _Checker(manifest, root)
    checker.layout()
    for spec in manifest.tables:
        checker.table(spec)
    checker.pairs()
    checker.checksums()
    checker.open_files()
    return checker.report
