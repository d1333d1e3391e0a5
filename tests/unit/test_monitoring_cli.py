"""`sagestep baseline`, `sagestep monitor data-quality`, `sagestep merge-ground-truth` and ml/baseline.py."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from sagestep.cli import main
from sagestep.training.config import load_dataset_config

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CATEGORICAL = ["Home", "Marital", "Records", "Job"]


@pytest.fixture(scope="module")
def halves(credit_data: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    shuffled = credit_data.sample(frac=1.0, random_state=21).reset_index(drop=True)
    root = tmp_path_factory.mktemp("halves")
    shuffled.iloc[:2200].to_csv(root / "reference.csv", index=False)
    shuffled.iloc[2200:].to_csv(root / "current.csv", index=False)
    return root / "reference.csv", root / "current.csv"


def _load_ml_baseline(repo_root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("ml_baseline", repo_root / "ml" / "baseline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_baseline_command_profiles_only_the_configured_features_in_order(
    halves: tuple[Path, Path], repo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the raw credit CSV (15 columns) and the credit dataset config
    reference, _ = halves
    # WHEN the baseline command runs
    code = main(["baseline", "--input", str(reference), "--output", str(tmp_path),
                 "--dataset-config", str(repo_root / "ml" / "config" / "credit_data.yaml")])
    # THEN it writes statistics and constraints over the 13 features only, numeric then categorical
    assert code == 0
    statistics = json.loads((tmp_path / "statistics.json").read_text())
    constraints = json.loads((tmp_path / "constraints.json").read_text())
    assert [f["name"] for f in statistics["features"]] == NUMERIC + CATEGORICAL
    assert [f["name"] for f in constraints["features"]] == NUMERIC + CATEGORICAL
    assert "13 features" in capsys.readouterr().out


def test_data_quality_command_writes_reports_and_exits_zero_with_violations(
    halves: tuple[Path, Path], repo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a baseline of one half and the other half with Income drifted, as capture-free CSV
    reference, current = halves
    main(["baseline", "--input", str(reference), "--output", str(tmp_path / "baseline"),
          "--dataset-config", str(repo_root / "ml" / "config" / "credit_data.yaml")])
    drifted = pd.read_csv(current)[NUMERIC + CATEGORICAL]
    drifted["Income"] = drifted["Income"] * 2
    drifted.to_csv(tmp_path / "current.csv", index=False)
    capsys.readouterr()
    # WHEN the data-quality command runs for an endpoint and schedule
    code = main(["monitor", "data-quality", "--input", str(tmp_path / "current.csv"), "--baseline-dir",
                 str(tmp_path / "baseline"), "--output", str(tmp_path / "report"), "--endpoint", "credit",
                 "--schedule", "hourly"])
    # THEN it exits 0, writes the reports, and prints a short summary naming the drifted feature
    assert code == 0
    report = tmp_path / "report"
    violations = json.loads((report / "constraint_violations.json").read_text())["violations"]
    assert {v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"} == {"Income"}
    assert json.loads((report / "drift_report.json").read_text())["flagged_features"] == ["Income"]
    assert json.loads((report / "statistics.json").read_text())["dataset"]["item_count"] == len(drifted)
    metrics = [json.loads(line) for line in (report / "cloudwatch_metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 13 and metrics[0]["Endpoint"] == "credit"
    out = capsys.readouterr().out
    assert "baseline_drift_check: 1 (Income)" in out


def test_data_quality_command_reports_bad_input_in_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a baseline directory without baseline files
    (tmp_path / "baseline").mkdir()
    (tmp_path / "current.csv").write_text("a,b\n1,2\n")
    # WHEN the data-quality command runs
    code = main(["monitor", "data-quality", "--input", str(tmp_path / "current.csv"), "--baseline-dir",
                 str(tmp_path / "baseline"), "--output", str(tmp_path / "report")])
    # THEN it exits 2 with one line naming the missing file and how to produce it
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert str(tmp_path / "baseline" / "statistics.json") in err and "sagestep baseline" in err


def test_merge_command_takes_negative_durations_as_written(
    credit_data: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN one real capture at 09:30 and its label at 10:05
    row = credit_data.iloc[0]
    data = ",".join(str(row[c]) for c in NUMERIC + CATEGORICAL)
    capture = {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": data, "encoding": "CSV"}},
               "eventMetadata": {"eventId": "e1", "inferenceId": "i1", "inferenceTime": "2024-05-01T09:30:00Z"}, "eventVersion": "0"}
    label = {"groundTruthData": {"data": "0", "encoding": "CSV"}, "eventMetadata": {"eventId": "i1"}, "eventVersion": "0"}
    (tmp_path / "cap" / "ep" / "v1" / "2024" / "05" / "01" / "09").mkdir(parents=True)
    (tmp_path / "cap" / "ep" / "v1" / "2024" / "05" / "01" / "09" / "a.jsonl").write_text(json.dumps(capture) + "\n")
    (tmp_path / "gt" / "2024" / "05" / "01" / "10").mkdir(parents=True)
    (tmp_path / "gt" / "2024" / "05" / "01" / "10" / "b.jsonl").write_text(json.dumps(label) + "\n")
    # WHEN merge-ground-truth runs with "--start-offset -PT3H --end-offset -PT1H"
    code = main(["merge-ground-truth", "--capture", str(tmp_path / "cap"), "--ground-truth", str(tmp_path / "gt"),
                 "--output", str(tmp_path / "out"), "--start-offset", "-PT3H", "--end-offset", "-PT1H",
                 "--at", "2024-05-01T12:00:00Z"])
    # THEN it merges the pair and prints a JSON report
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["merged"] == 1 and report["window_start"] == dt.datetime(2024, 5, 1, 9, tzinfo=dt.timezone.utc).isoformat()


def test_merge_command_rejects_a_bad_offset_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN existing directories and a misspelt offset
    for name in ("cap", "gt"):
        (tmp_path / name).mkdir()
    # WHEN merge-ground-truth runs
    code = main(["merge-ground-truth", "--capture", str(tmp_path / "cap"), "--ground-truth", str(tmp_path / "gt"),
                 "--output", str(tmp_path / "out"), "--start-offset", "-PT3X", "--end-offset", "-PT1H"])
    # THEN the offset is named in a one-line error
    assert code == 2
    assert "'-PT3X' is not an ISO-8601 duration" in capsys.readouterr().err


def test_ml_baseline_entry_point_writes_feature_only_documents(
    credit_data: pd.DataFrame, repo_root: Path, tmp_path: Path
) -> None:
    # GIVEN a preprocess-like train CSV (features as floats, id, 0/1 target) and dataset_config.json
    train = credit_data.copy()
    train[NUMERIC] = train[NUMERIC].astype(float)
    train["Status"] = (train["Status"] == "bad").astype(int)
    (tmp_path / "train").mkdir()
    train.to_csv(tmp_path / "train" / "train.csv", index=False)
    (tmp_path / "config").mkdir()
    config = load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml")
    (tmp_path / "config" / "dataset_config.json").write_text(config.to_json())
    ml_baseline = _load_ml_baseline(repo_root)
    # WHEN the Processing entry point runs
    code = ml_baseline.main(["--data-dir", str(tmp_path / "train"), "--config-dir", str(tmp_path / "config"),
                             "--output-dir", str(tmp_path / "out")])
    # THEN it writes statistics and constraints over the features only, in config order, with whole numbers Integral
    assert code == 0
    statistics = json.loads((tmp_path / "out" / "statistics.json").read_text())
    constraints = json.loads((tmp_path / "out" / "constraints.json").read_text())
    assert [f["name"] for f in statistics["features"]] == NUMERIC + CATEGORICAL
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] == "Robust"
    assert next(f for f in statistics["features"] if f["name"] == "Age")["inferred_type"] == "Integral"
    # AND the config travels with the baseline, for the monitors
    assert json.loads((tmp_path / "out" / "dataset_config.json").read_text()) == config.to_dict()


def test_ml_baseline_names_a_missing_feature_column(
    credit_data: pd.DataFrame, repo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a config naming a column the train data lacks
    (tmp_path / "train").mkdir()
    credit_data.to_csv(tmp_path / "train" / "train.csv", index=False)
    (tmp_path / "config").mkdir()
    config = load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml").to_dict()
    config["features"] = {"numeric": ["Age", "Salary"], "categorical": []}
    (tmp_path / "config" / "dataset_config.json").write_text(json.dumps(config))
    # WHEN the entry point runs
    code = _load_ml_baseline(repo_root).main(["--data-dir", str(tmp_path / "train"), "--config-dir",
                                              str(tmp_path / "config"), "--output-dir", str(tmp_path / "out")])
    # THEN it exits 2 naming the file and the missing column
    err = capsys.readouterr().err
    assert code == 2
    assert "train.csv" in err and "'Salary'" in err
