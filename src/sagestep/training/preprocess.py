"""Data checks, cleaning, preparation and splitting for a dataset described by a `DatasetConfig`.

Pure functions on DataFrames, plus small file helpers (reading raw tables, SHA-256 of files). `check_and_clean`
applies the config's cleaning (`sagestep.training.cleaning`) to each raw table and checks the result; its report
is written as `report/validation_report.json`; each check is `{"name", "passed", "detail", "columns", "files",
"fix"}` (`fix` only when it failed), and `cleaning` records what the transform did (rows without a label dropped,
columns dropped, numbers and dates read).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sagestep.training.cleaning import CleaningReport, clean_frame, looks_like_two_digit_year
from sagestep.training.config import DatasetConfig, label_text

DATA_SUFFIXES = (".csv", ".parquet", ".pq")
REPORT_VERSION = 2  # 2: cleaning added
MIN_ROWS_PER_CLASS = 10
_EXAMPLES = 3


class DataError(ValueError):
    """Input data cannot be read or split; the message names the file or column and the fix."""


# --------------------------------------------------------------------------------------------- files


def list_data_files(data_dir: str | Path) -> list[Path]:
    """The raw data files (CSV or Parquet) of a directory, recursively, in name order."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data directory not found; pass the directory holding the raw CSV/Parquet files")
    files = sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    if not files:
        raise DataError(
            f"{data_dir}: no data file ({', '.join(DATA_SUFFIXES)}) found; put the raw data there "
            f"(other files are ignored)"
        )
    return files


def _cut_off_last_line(path: Path) -> str | None:
    """Why the CSV looks cut off (its last line has fewer fields than its header and no line end), else None."""
    with open(path, "rb") as handle:
        header = handle.readline()
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 65536))
        tail = handle.read()
    if not tail or tail.endswith(b"\n") or b"\n" not in tail:
        return None
    last = tail.rsplit(b"\n", 1)[1]
    lines = tail.count(b"\n") if size <= 65536 else None
    wanted, got = header.count(b",") + 1, last.count(b",") + 1
    if got >= wanted:
        return None
    where = f"line {lines + 1}" if lines is not None else "the last line"
    return (f"{path}: {where} has {got} of {wanted} fields and no line end: the file looks cut off (an interrupted "
            f"upload or copy?); upload the whole file again")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one CSV or Parquet file; a read failure names the file."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        cut = _cut_off_last_line(path)
        if cut:
            raise DataError(cut)
    try:
        if path.suffix.lower() == ".csv":
            # low_memory=False: each column's type from the whole column (no DtypeWarning on mixed columns)
            return pd.read_csv(path, low_memory=False)
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as exc:  # noqa: BLE001 - any parser error becomes a message naming the file
        kind = "CSV" if path.suffix.lower() == ".csv" else "Parquet"
        raise DataError(f"{path}: cannot be read as {kind} ({type(exc).__name__}: {exc}); fix or replace the file") from None


def write_prepared(frame: pd.DataFrame, path: str | Path) -> None:
    """Write prepared rows as CSV with pyarrow's writer (a million rows in about a second, where DataFrame.to_csv
    takes tens); dates whose times are all midnight are written as YYYY-MM-DD. Falls back to pandas for columns
    pyarrow cannot type (mixed objects)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    out = frame.copy(deep=False)
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col].dtype):
            values = out[col]
            if bool((values.dropna() == values.dropna().dt.normalize()).all()):
                out[col] = values.dt.strftime("%Y-%m-%d")
    try:
        table = pa.Table.from_pandas(out, preserve_index=False)
        pacsv.write_csv(table, str(path), pacsv.WriteOptions(include_header=True, quoting_style="needed"))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        out.to_csv(path, index=False)


def read_prepared_csv(path: str | Path) -> pd.DataFrame:
    """A prepared CSV (our own output) with pyarrow's reader: several times faster than the default parser."""
    try:
        return pd.read_csv(path, engine="pyarrow")
    except Exception:  # noqa: BLE001 - anything pyarrow refuses, the default parser reads or reports by file
        return read_table(path)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: str | Path, base: str | Path | None = None, rows: int | None = None) -> dict[str, Any]:
    """`{"path", "sha256", "size_bytes", "rows"}` of one file (path relative to `base` when given)."""
    path = Path(path)
    shown = path.relative_to(base).as_posix() if base is not None else path.name
    record: dict[str, Any] = {"path": shown, "sha256": sha256_file(path), "size_bytes": path.stat().st_size}
    if rows is not None:
        record["rows"] = int(rows)
    return record


def tree_sha256(root: str | Path, patterns: Iterable[str] = ("ml/**/*.py", "src/sagestep/**/*.py")) -> str:
    """One hash over the files matching `patterns` under `root` (relative path and content), e.g. a code bundle."""
    root = Path(root)
    digest = hashlib.sha256()
    files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts})
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------- checks


def _check(name: str, passed: bool, detail: str, columns: Iterable[str] = (), files: Iterable[str] = (),
           fix: str | None = None) -> dict[str, Any]:
    check: dict[str, Any] = {"name": name, "passed": bool(passed), "detail": detail, "columns": list(columns),
                             "files": list(files)}
    if not passed and fix:
        check["fix"] = fix
    return check


def _examples(values: pd.Series) -> list[str]:
    return [str(v) for v in pd.unique(values)[:_EXAMPLES]]


def validate_data(tables: Mapping[str, pd.DataFrame], config: DatasetConfig) -> dict[str, Any]:
    """Schema and data-quality checks of the raw tables (file name → rows) against the config, after its cleaning.
    See `check_and_clean`."""
    return check_and_clean(tables, config)[0]


def check_and_clean(tables: Mapping[str, pd.DataFrame], config: DatasetConfig) -> tuple[dict[str, Any], pd.DataFrame]:
    """Clean every raw table (file name → rows) with the config's cleaning, check the result, and return
    (report, the cleaned rows of all files). The report is `{"version", "dataset", "passed", "n_rows" (rows read),
    "n_rows_used" (after dropping rows without a label), "files", "cleaning", "checks": [...]}`; `passed` is true
    only when every check passed. Category caps are not applied here (they are fitted on the training split)."""
    checks: list[dict[str, Any]] = []
    names = list(tables)
    cfg = config.source

    # Empty data
    empty = [n for n, t in tables.items() if len(t) == 0]
    total = sum(len(t) for t in tables.values())
    checks.append(_check(
        "non_empty", total > 0 and not empty,
        f"{total} rows in {len(names)} file(s)" + (f"; empty: {empty}" if empty else ""),
        files=empty or names,
        fix="remove empty files from the data location and provide rows to train on",
    ))

    # Required columns, per file (of the raw data: date columns, not their derived features)
    missing_by_file = {n: [c for c in config.required_columns if c not in t.columns] for n, t in tables.items()}
    missing_by_file = {n: m for n, m in missing_by_file.items() if m}
    missing_cols = sorted({c for m in missing_by_file.values() for c in m})
    def _delimiter_hint(name: str) -> str:
        columns = list(tables[name].columns)
        odd = next((d for d in (";", "\t", "|") if len(columns) == 1 and d in str(columns[0])), None)
        return f" (its header is one field holding {odd!r}: save the file comma-separated)" if odd else ""

    detail = "; ".join(f"{n} has no column {m}{_delimiter_hint(n)}" for n, m in missing_by_file.items()) or (
        f"all {len(config.required_columns)} configured columns present"
    )
    checks.append(_check(
        "required_columns", not missing_by_file, detail, columns=missing_cols, files=list(missing_by_file),
        fix=f"add the columns to the data or correct their names in {cfg} (target, id_column, event_time_column, "
            f"features, protected_attributes)",
    ))

    cleaned: dict[str, pd.DataFrame] = {}
    reports: dict[str, CleaningReport] = {}
    for file_name, table in tables.items():
        cleaned[file_name], reports[file_name] = clean_frame(table, config, caps=False)
    cleaning = CleaningReport()
    for report in reports.values():
        cleaning = cleaning.merge(report)

    present = [t for t in cleaned.values() if len(t.columns)]
    data = pd.concat(present, ignore_index=True) if len(present) > 1 else (
        present[0].reset_index(drop=True) if present else pd.DataFrame())
    has = set(data.columns)

    # Numeric columns hold numbers (numeric features, and protected attributes grouped by min/max)
    numeric_cols = list(config.features.numeric) + [
        a.name for a in config.protected_attributes
        if a.privileged.is_numeric and a.name not in config.features.numeric
    ]
    bad_detail, bad_cols, bad_files = [], [], set()
    for col in numeric_cols:
        for file_name, table in cleaned.items():
            problem = reports[file_name].bad_numbers.get(col)
            if problem is not None:
                bad_detail.append(f"{file_name}: {problem.describe('numbers')} (after cleaning.numbers)")
            elif col in table.columns:
                values = table[col]
                if values.dtype.kind in "fiub":
                    infinite = np.isinf(values.to_numpy(dtype=float))
                    if not infinite.any():
                        continue
                    bad_detail.append(f"{file_name}: {col} has {int(infinite.sum())} infinite value(s) (inf/-inf), "
                                      f"first on data row {int(infinite.nonzero()[0][0]) + 1}")
                else:
                    parsed = pd.to_numeric(values, errors="coerce")
                    bad = parsed.isna() & values.notna()
                    if bool(bad.any()):
                        bad &= values.astype(str).str.strip().ne("")
                    if not bool(bad.any()):
                        continue
                    bad_detail.append(f"{file_name}: {col} has {int(bad.sum())} non-numeric value(s), e.g. "
                                      f"{_examples(values[bad])}")
            else:
                continue
            if col not in bad_cols:
                bad_cols.append(col)
            bad_files.add(file_name)
    in_numbers = [c for c in bad_cols if c in config.cleaning.number_columns]
    checks.append(_check(
        "numeric_types", not bad_cols,
        "; ".join(bad_detail) or f"{len([c for c in numeric_cols if c in has])} numeric column(s) hold numbers",
        columns=bad_cols, files=sorted(bad_files),
        fix=(f"fix the values or their format in cleaning.numbers of {cfg} (currency symbols, spaces and the "
             f"thousands separator are removed; the rest must be a number)" if in_numbers else
             f"clean the values (finite numbers, or empty for missing): text such as \"$1,234.00\" is read when the column "
             f"is listed in cleaning.numbers.columns of {cfg}; if the column is categorical, move it to "
             f"features.categorical"),
    ))

    # Dates read with their configured format
    if config.cleaning.dates:
        date_problems = [(f, p) for f, r in reports.items() for p in r.bad_dates.values()]
        date_detail = "; ".join(f"{f}: {p.describe('dates in ' + repr(config.cleaning.date(p.column).format))}"
                                for f, p in date_problems)  # type: ignore[union-attr]
        ranges = "; ".join(f"{c} spans {lo} to {hi}" for c, (lo, hi) in sorted(cleaning.date_ranges.items()))
        checks.append(_check(
            "date_values", not date_problems, date_detail or ranges or "no date values",
            columns=sorted({p.column for _, p in date_problems}), files=sorted({f for f, _ in date_problems}),
            fix=f"fix the values or the format in cleaning.dates of {cfg} (strptime codes, e.g. %d-%b-%y)",
        ))

    # All-null columns
    checked_cols = [c for c in (*config.features.all, *(a.name for a in config.protected_attributes)) if c in has]
    all_null = [c for c in dict.fromkeys(checked_cols) if len(data) and bool(data[c].isna().all())]
    checks.append(_check(
        "all_null_columns", not all_null,
        f"columns with no value at all: {all_null}" if all_null else "every feature has values",
        columns=all_null, files=names,
        fix=f"fill the column in the data or remove it from the features in {cfg}",
    ))

    if config.cleaning.drops_unlabeled and config.target in has:
        checks.append(_check(
            "unlabeled_rows", True,
            f"{cleaning.dropped_unlabeled} of {cleaning.rows_in} row(s) have no {config.target} and were dropped "
            f"(cleaning.unlabeled_rows: drop)", columns=[config.target], files=names,
        ))
    checks.append(_target_check(data, config, names, cleaning))

    # Duplicate ids
    if config.id_column is not None:
        if config.id_column in has:
            ids = data[config.id_column]
            duplicated = ids[ids.duplicated(keep=False) & ids.notna()]
            missing_ids = int(ids.isna().sum())
            ok = duplicated.empty and missing_ids == 0
            parts = []
            if not duplicated.empty:
                parts.append(f"{duplicated.nunique()} id value(s) repeat ({len(duplicated)} rows), e.g. "
                             f"{_examples(duplicated)}")
            if missing_ids:
                parts.append(f"{missing_ids} row(s) without an id")
            checks.append(_check(
                "duplicate_ids", ok, "; ".join(parts) or f"{len(ids)} unique ids", columns=[config.id_column],
                files=names, fix=f"deduplicate the rows or give each row a unique {config.id_column}",
            ))
        else:
            checks.append(_check("duplicate_ids", False, f"id column {config.id_column!r} is missing",
                                 columns=[config.id_column], files=names,
                                 fix=f"add the column or set id_column: null in {cfg}"))

    # Event time parses (with cleaning.dates: its format; without: ISO 8601 only, two-digit years never guessed)
    if config.event_time_column is not None:
        col = config.event_time_column
        if col in has:
            checks.append(_event_time_check(data[col], config, names))
        else:
            checks.append(_check("event_time_values", False, f"event time column {col!r} is missing",
                                 columns=[col], files=names,
                                 fix=f"add the column or set event_time_column: null in {cfg}"))

    report = {
        "version": REPORT_VERSION,
        "dataset": config.name,
        "passed": all(c["passed"] for c in checks),
        "n_rows": int(total),
        "n_rows_used": int(len(data)),
        "files": names,
        "cleaning": cleaning.to_dict(),
        "checks": checks,
    }
    return report, data


def _event_time_check(values: pd.Series, config: DatasetConfig, names: list[str]) -> dict[str, Any]:
    col, cfg = config.event_time_column, config.source
    parsed = _parse_times(values)
    bad = parsed.isna()
    if not bool(bad.any()):
        return _check("event_time_values", True, f"{col} spans {parsed.min()} to {parsed.max()}", columns=[col],
                      files=names)
    examples = _examples(values[bad & values.notna()]) if bool((bad & values.notna()).any()) else []
    missing = int((bad & values.isna()).sum())
    unreadable = int(bad.sum()) - missing
    parts = []
    if unreadable:
        parts.append(f"{unreadable} value(s) of {col} are not ISO 8601 dates, e.g. {examples}")
    if missing:
        parts.append(f"{missing} row(s) have no {col}")
    if config.cleaning.date(col) is not None:
        fix = f"give every row a {col} (an event time orders the train/validation/test split)"
    elif any(looks_like_two_digit_year(e) for e in examples):
        fix = (f"{col} has two-digit years such as {examples[0]!r}, which are never guessed: declare "
               f"cleaning.dates.{col} in {cfg} with its format and pivot_year (e.g. format: '%d-%b-%y', "
               f"pivot_year: 1950)")
    else:
        fix = f"give every row an ISO 8601 time in {col}, or declare its format in cleaning.dates.{col} of {cfg}"
    return _check("event_time_values", False, "; ".join(parts), columns=[col], files=names, fix=fix)


def _target_check(data: pd.DataFrame, config: DatasetConfig, names: list[str],
                  cleaning: CleaningReport | None = None) -> dict[str, Any]:
    target, cfg = config.target, config.source
    if target not in data.columns:
        return _check("target_values", False, f"target column {target!r} is missing", columns=[target], files=names,
                      fix=f"add the column to the data or set target in {cfg}")
    if config.is_regression:
        return _numeric_target_check(data[target], config, names)
    problems, fixes = [], []
    keys = label_keys(data[target])
    unmapped = cleaning.unmapped_labels if cleaning is not None else None
    if unmapped is not None:
        known = sorted({str(k) for k, _ in config.cleaning.target_values or ()})
        problems.append(f"{unmapped.count} row(s) have a {target} that cleaning.target_values does not map, e.g. "
                        f"{unmapped.examples} (mapped: {known})")
        fixes.append(f"map every {target} value to a class in cleaning.target_values of {cfg}")
        classes = {label_text(c) for _, c in config.cleaning.target_values or ()}
        keys = keys[keys.isna() | keys.isin(classes)]
    missing = int(keys.isna().sum())
    seen = sorted(str(k) for k in keys.dropna().unique())
    positive = label_text(config.positive_label)
    if missing:
        problems.append(f"{missing} row(s) have no {target}")
        fixes.append(f"set cleaning.unlabeled_rows: drop in {cfg} to train without them (they are counted), or "
                     f"label them")
    if positive not in seen:
        problems.append(f"positive_label {config.positive_label!r} never occurs in {target} (values seen: {seen})")
        fixes.append(f"set positive_label in {cfg} to one of {seen}")
    elif len(seen) != 2:
        problems.append(f"{target} must take exactly 2 values (positive_label and one other), found {len(seen)}: "
                        f"{seen[:10]}")
        fixes.append(f"map {target} to two classes with cleaning.target_values in {cfg}")
    else:
        counts = (keys == positive).value_counts()
        low = {("positive" if k else "negative"): int(v) for k, v in counts.items() if v < MIN_ROWS_PER_CLASS}
        if low:
            problems.append(f"too few rows per class to split: {low} (at least {MIN_ROWS_PER_CLASS} each)")
            fixes.append("provide more labelled rows of the rare class")
    if problems:
        return _check("target_values", False, "; ".join(problems), columns=[target], files=names, fix="; ".join(fixes))
    rate = float((keys == positive).mean())
    return _check("target_values", True, f"{target} values {seen}; positive {positive!r} rate {rate:.3f}",
                  columns=[target], files=names)


def _numeric_target_check(values: pd.Series, config: DatasetConfig, names: list[str]) -> dict[str, Any]:
    """A Regression's target: a finite number in every row."""
    target, cfg = config.target, config.source
    numbers = pd.to_numeric(values, errors="coerce")
    missing = int(values.isna().sum())
    not_numbers = int((numbers.isna() & values.notna()).sum())
    problems, fixes = [], []
    if missing:
        problems.append(f"{missing} row(s) have no {target}")
        fixes.append(f"set cleaning.unlabeled_rows: drop in {cfg} to train without them (they are counted), or "
                     f"fill them in")
    if not_numbers:
        problems.append(f"{not_numbers} row(s) have a {target} that is not a number, e.g. "
                        f"{_examples(values[numbers.isna() & values.notna()])}")
        fixes.append(f"a Regression's target must be numeric: fix those values or the target in {cfg}")
    if problems:
        return _check("target_values", False, "; ".join(problems), columns=[target], files=names, fix="; ".join(fixes))
    return _check("target_values", True, f"{target} numeric: mean {float(numbers.mean()):.4g}, "
                                         f"min {float(numbers.min()):.4g}, max {float(numbers.max()):.4g}",
                  columns=[target], files=names)


def label_keys(values: pd.Series) -> pd.Series:
    """`label_text` of every value, computed once per distinct value (a million labels hold two or three)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    keys = np.array([label_text(u) for u in uniques] + [None], dtype=object)
    return pd.Series(keys[codes], index=values.index, dtype=object)


def _parse_times(values: pd.Series) -> pd.Series:
    """Event times as datetimes: ISO 8601 text only (a cleaned date column is already datetimes). Formats such as
    28-Feb-97 are declared in cleaning.dates, never guessed: a guess reads two-digit years as 2062–2075."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")


def failed_checks_summary(report: Mapping[str, Any], data_location: str = "") -> str:
    """The failed checks, one line each, the first failure leading: `<check>: <files> columns [...]: <what is
    wrong>; fix: <how>`, then a line naming the dataset and data location."""
    lines = []
    for check in report.get("checks", []):
        if check["passed"]:
            continue
        where = ", ".join(check.get("files", [])) or "data"
        cols = f" columns {check['columns']}" if check.get("columns") else ""
        fix = f"; fix: {check['fix']}" if check.get("fix") else ""
        lines.append(f"data check {check['name']} failed: {where}{cols}: {check['detail']}{fix}")
    lines.append(f"(dataset {report.get('dataset')!r}" + (f", data {data_location}" if data_location else "") +
                 f"; every check is in report/validation_report.json)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- preparation


def prepare_data(data: pd.DataFrame, config: DatasetConfig) -> pd.DataFrame:
    """Keep the configured columns (id, event time, target, features, protected attributes), numeric features as
    floats, and the target as 0/1 (1 = positive_label) under its own name. Run on cleaned, validated data (raw
    data without a cleaning section is its own cleaned form)."""
    if not config.cleaning.is_empty and any(c not in data.columns for c in config.prepared_columns):
        data = clean_frame(data, config, caps=False)[0]
    out = data.loc[:, list(config.prepared_columns)].copy()
    for col in config.features.numeric:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(np.float64)
    if config.is_regression:
        out[config.target] = pd.to_numeric(out[config.target], errors="coerce").astype(np.float64)
    else:
        positive = label_text(config.positive_label)
        out[config.target] = (label_keys(out[config.target]) == positive).astype(np.int64)
    return out.reset_index(drop=True)


def load_prepared(source: str | Path, config: DatasetConfig) -> pd.DataFrame:
    """Read prepared data written by `ml/preprocess.py` (a CSV file, or every CSV of a channel directory)."""
    source = Path(source)
    files = sorted(source.glob("*.csv")) if source.is_dir() else [source]
    if not files:
        raise DataError(f"{source}: no CSV file found; point this channel at the preprocess output")
    frames = [read_prepared_csv(f) for f in files]
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    needed = [c for c in (config.target, *config.features.all) if c not in data.columns]
    if needed:
        raise DataError(f"{files[0]}: no column {needed}; this file was not written by preprocess for dataset "
                        f"{config.name!r} (config {config.source})")
    for col in config.features.numeric:
        data[col] = pd.to_numeric(data[col], errors="coerce").astype(np.float64)
    target = data[config.target]
    if config.is_regression:
        numbers = pd.to_numeric(target, errors="coerce")
        if bool(numbers.isna().any()):
            raise DataError(f"{files[0]}: {config.target} must hold a number in every row (preprocess output); "
                            f"found {_examples(target[numbers.isna()])}")
        data[config.target] = numbers.astype(np.float64)
        return data
    if not set(pd.unique(target.dropna())) <= {0, 1} or bool(target.isna().any()):
        raise DataError(f"{files[0]}: {config.target} must hold 0/1 labels (preprocess output); "
                        f"found {_examples(target)}")
    data[config.target] = target.astype(np.int64)
    return data


# --------------------------------------------------------------------------------------------- split


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    method: str  # "stratified", "time" or "random" (a Regression without event time)

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [("train", self.train), ("validation", self.validation), ("test", self.test)]


def split_data(data: pd.DataFrame, config: DatasetConfig) -> Splits:
    """Train / validation / test. With `event_time_column`: oldest rows → train, newest → test. Otherwise a
    random split stratified by the (0/1) target, reproducible from `split.seed`. Rows keep their input order."""
    n = len(data)
    vf, tf = config.split.validation_fraction, config.split.test_fraction
    n_test, n_val = int(round(n * tf)), int(round(n * vf))
    if min(n_test, n_val, n - n_test - n_val) < 2:
        raise DataError(f"{n} rows are too few to split with validation_fraction={vf} and test_fraction={tf} "
                        f"({config.source}); provide more rows")
    if config.event_time_column is not None:
        times = _parse_times(data[config.event_time_column])
        order = np.argsort(times.to_numpy(), kind="stable")
        ordered = data.iloc[order]
        train = ordered.iloc[: n - n_val - n_test]
        validation = ordered.iloc[n - n_val - n_test: n - n_test]
        test = ordered.iloc[n - n_test:]
        splits = Splits(train, validation, test, "time")
    elif config.is_regression:
        rng = np.random.default_rng(config.split.seed)
        order = rng.permutation(n)
        test_idx, val_idx = np.sort(order[:n_test]), np.sort(order[n_test:n_test + n_val])
        train_idx = np.sort(order[n_test + n_val:])
        return Splits(data.iloc[train_idx], data.iloc[val_idx], data.iloc[test_idx], "random")
    else:
        from sklearn.model_selection import train_test_split  # here: jobs that only read prepared data skip sklearn

        y = data[config.target]
        try:
            rest, test = train_test_split(data, test_size=n_test, stratify=y, random_state=config.split.seed)
            train, validation = train_test_split(rest, test_size=n_val, stratify=rest[config.target],
                                                 random_state=config.split.seed)
        except ValueError as exc:
            raise DataError(f"cannot stratify the split ({exc}); provide more rows of the rare class "
                            f"({config.source})") from None
        splits = Splits(train.sort_index(), validation.sort_index(), test.sort_index(), "stratified")
    for name, part in splits.items():
        if not config.is_regression and part[config.target].nunique() < 2:
            raise DataError(f"the {name} split holds one class only ({splits.method} split of {n} rows); provide "
                            f"more rows or change split fractions in {config.source}")
    return splits
