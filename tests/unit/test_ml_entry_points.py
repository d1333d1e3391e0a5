"""End to end: ml/preprocess.py → ml/train.py → ml/evaluate.py as subprocesses under the SageMaker contract."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sagestep.training.config import load_dataset_config
from sagestep.training.preprocess import sha256_file

REPO_ROOT = Path(__file__).resolve().parents[2]
EVALUATION_FILES = {"evaluation.json", "model_quality_constraints.json", "bias.json", "explainability.json",
                    "scores.csv", "summary.json", "manifest.json", "sample_payload.tar.gz"}


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), **(env or {})}
    return subprocess.run([sys.executable, str(REPO_ROOT / "ml" / script), *args], env=full_env,
                          capture_output=True, text=True, timeout=300)


def preprocess(work: Path, data_csv: Path, config_yaml: Path) -> subprocess.CompletedProcess:
    (work / "data").mkdir(parents=True)
    (work / "config").mkdir()
    shutil.copy(data_csv, work / "data")
    shutil.copy(config_yaml, work / "config")
    return run("preprocess.py", "--data-dir", str(work / "data"), "--config-dir", str(work / "config"),
               "--output-dir", str(work / "pre"))


def train(work: Path, hyperparameters: dict[str, str], name: str) -> subprocess.CompletedProcess:
    job = work / name
    (job / "input" / "config").mkdir(parents=True)
    (job / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    env = {
        "SM_MODEL_DIR": str(job / "model"),
        "SM_CHANNEL_TRAIN": str(work / "pre" / "train"),
        "SM_CHANNEL_VALIDATION": str(work / "pre" / "validation"),
        "SM_CHANNEL_CONFIG": str(work / "pre" / "config"),
        "SM_INPUT_CONFIG_DIR": str(job / "input" / "config"),
        "SM_OUTPUT_DATA_DIR": str(job / "output" / "data"),
        "SM_OUTPUT_DIR": str(job / "output"),
    }
    return run("train.py", env=env)


def evaluate(work: Path, name: str) -> subprocess.CompletedProcess:
    """Pack the model as the platform does (model.tar.gz) and evaluate it."""
    job = work / name
    (job / "artifact").mkdir()
    with tarfile.open(job / "artifact" / "model.tar.gz", "w:gz") as tar:
        for path in (job / "model").iterdir():
            tar.add(path, arcname=path.name)
    return run("evaluate.py", "--model-dir", str(job / "artifact"), "--test-dir", str(work / "pre" / "test"),
               "--config-dir", str(work / "pre" / "config"), "--output-dir", str(job / "evaluation"))


def pipeline(work: Path, data_csv: Path, config_yaml: Path, runs: dict[str, dict[str, str]]) -> dict:
    steps = {"preprocess": preprocess(work, data_csv, config_yaml)}
    assert steps["preprocess"].returncode == 0, steps["preprocess"].stderr
    with ThreadPoolExecutor(max_workers=2) as pool:
        trained = dict(zip(runs, pool.map(lambda item: train(work, item[1], item[0]), runs.items())))
    for name, proc in trained.items():
        assert proc.returncode == 0, proc.stderr
        steps[f"train_{name}"] = proc
    with ThreadPoolExecutor(max_workers=2) as pool:
        evaluated = dict(zip(runs, pool.map(lambda name: evaluate(work, name), runs)))
    for name, proc in evaluated.items():
        assert proc.returncode == 0, proc.stderr
        steps[f"evaluate_{name}"] = proc
    return steps


@pytest.fixture(scope="module")
def credit_run(tmp_path_factory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("credit")
    steps = pipeline(work, REPO_ROOT / "data" / "credit_data" / "credit_data.csv",
                     REPO_ROOT / "ml" / "config" / "credit_data.yaml",
                     {"lightgbm": {"algorithm": "lightgbm"}, "xgboost": {"algorithm": "xgboost"}})
    return work, steps


def summary(work: Path, name: str) -> dict:
    return json.loads((work / name / "evaluation" / "summary.json").read_text())


def test_preprocess_writes_splits_report_config_and_manifest(credit_run):
    # GIVEN the preprocess output of credit_data
    work, _ = credit_run
    pre = work / "pre"
    # THEN each split, the report, the resolved config and the manifest exist, and the manifest's hashes are right
    manifest = json.loads((pre / "report" / "manifest.json").read_text())
    assert json.loads((pre / "report" / "validation_report.json").read_text())["passed"] is True
    assert load_dataset_config(pre / "config" / "dataset_config.json").name == "credit_data"
    for split, rows in (("train", 2895), ("validation", 668), ("test", 891)):
        path = pre / split / f"{split}.csv"
        assert manifest["outputs"][split]["sha256"] == sha256_file(path)
        assert manifest["outputs"][split]["rows"] == rows == len(pd.read_csv(path))
    assert manifest["inputs"] == [{"path": "credit_data.csv", "rows": 4454, "size_bytes": 312658,
                                   "sha256": sha256_file(REPO_ROOT / "data" / "credit_data" / "credit_data.csv")}]
    assert manifest["config"]["sha256"] == sha256_file(REPO_ROOT / "ml" / "config" / "credit_data.yaml")
    assert len(manifest["code"]["sha256"]) == 64


def test_lightgbm_on_credit_data_reaches_the_expected_auc(credit_run):
    # GIVEN LightGBM trained and evaluated through the scripts
    work, steps = credit_run
    # THEN the training log holds the metric lines and the test AUC is in the published range
    stdout = steps["train_lightgbm"].stdout
    assert "validation:auc=" in stdout and "train:auc=" in stdout and "validation:logloss=" in stdout
    assert sorted(p.name for p in (work / "lightgbm" / "model").iterdir()) == ["model.txt", "model_meta.json"]
    assert summary(work, "lightgbm")["auc"] >= 0.80


def test_xgboost_on_credit_data_trains_and_evaluates(credit_run):
    work, _ = credit_run
    assert sorted(p.name for p in (work / "xgboost" / "model").iterdir()) == ["model.json", "model_meta.json"]
    assert summary(work, "xgboost")["auc"] >= 0.80


def test_evaluation_writes_every_report_consistently(credit_run):
    # GIVEN the LightGBM evaluation output
    work, _ = credit_run
    out = work / "lightgbm" / "evaluation"
    assert {p.name for p in out.iterdir()} == EVALUATION_FILES
    # THEN scores.csv reproduces the AUC of evaluation.json and summary.json
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == ["id", "label", "score"] and len(scores) == 891
    evaluation = json.loads((out / "evaluation.json").read_text())
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    assert auc == pytest.approx(roc_auc_score(scores["label"], scores["score"])) == summary(work, "lightgbm")["auc"]
    s = summary(work, "lightgbm")
    # and the gate's summary has the per-attribute fairness numbers of bias.json
    bias = json.loads((out / "bias.json").read_text())
    assert s["disparate_impact[Age]"] == bias["attributes"][0]["disparate_impact"]
    assert {"ks", "gini", "brier", "n_test", "decision_threshold", "min_auc", "equal_opportunity_difference[Marital]"} <= set(s)
    constraints = json.loads((out / "model_quality_constraints.json").read_text())
    assert constraints["binary_classification_constraints"]["auc"]["threshold"] == 0.80
    assert json.loads((out / "manifest.json").read_text())["hyperparameters"]["algorithm"] == "lightgbm"


def test_german_credit_runs_end_to_end_by_changing_only_the_config(tmp_path):
    # GIVEN the German credit data and its config, and nothing else changed
    steps = pipeline(tmp_path, REPO_ROOT / "data" / "german_credit" / "german_credit.csv",
                     REPO_ROOT / "ml" / "config" / "german_credit.yaml", {"lightgbm": {"algorithm": "lightgbm"}})
    # THEN the pipeline runs and the model ranks applicants usefully
    assert summary(tmp_path, "lightgbm")["auc"] >= 0.70
    assert "german_credit" in steps["evaluate_lightgbm"].stdout


def load_script(name: str):
    """Import an ml/ entry point in-process (for error paths: no subprocess start-up cost)."""
    spec = importlib.util.spec_from_file_location(f"ml_{name}", REPO_ROOT / "ml" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_bad_hyperparameter_fails_the_job_with_a_failure_file(credit_run, tmp_path, capsys):
    # GIVEN a misspelt hyperparameter
    work, _ = credit_run
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "hyperparameters.json").write_text('{"algorithm": "lightgbm", "num_leafs": "31"}')
    # WHEN the training entry point runs
    code = load_script("train").main([
        "--model-dir", str(tmp_path / "model"), "--train", str(work / "pre" / "train"),
        "--validation", str(work / "pre" / "validation"), "--config", str(work / "pre" / "config"),
        "--input-config-dir", str(tmp_path / "config"), "--output-data-dir", str(tmp_path / "output" / "data"),
        "--output-dir", str(tmp_path / "output"),
    ])
    # THEN the job fails, and the reason is in <SM_OUTPUT_DIR>/failure and on stderr
    failure = (tmp_path / "output" / "failure").read_text()
    assert code == 1
    assert failure.startswith("unknown hyperparameter 'num_leafs' for algorithm lightgbm; allowed:")
    assert failure in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def test_failed_data_check_writes_the_report_and_explains_on_stderr(tmp_path, credit_data, capsys):
    # GIVEN raw data without the Income column
    (tmp_path / "data").mkdir()
    (tmp_path / "config").mkdir()
    credit_data.drop(columns=["Income"]).to_csv(tmp_path / "data" / "applications.csv", index=False)
    shutil.copy(REPO_ROOT / "ml" / "config" / "credit_data.yaml", tmp_path / "config")
    # WHEN preprocessed
    code = load_script("preprocess").main(["--data-dir", str(tmp_path / "data"), "--config-dir",
                                           str(tmp_path / "config"), "--output-dir", str(tmp_path / "pre")])
    # THEN the step fails, the report is written, and stderr names file, column and fix
    assert code == 1
    report = json.loads((tmp_path / "pre" / "report" / "validation_report.json").read_text())
    assert report["passed"] is False
    err = capsys.readouterr().err
    assert "applications.csv has no column ['Income']" in err and "fix:" in err
    assert not (tmp_path / "pre" / "train").exists()


def test_evaluate_without_a_model_artifact_says_where_to_point(credit_run, tmp_path, capsys):
    work, _ = credit_run
    code = load_script("evaluate").main([
        "--model-dir", str(tmp_path), "--test-dir", str(work / "pre" / "test"),
        "--config-dir", str(work / "pre" / "config"), "--output-dir", str(tmp_path / "out")])
    assert code == 1
    assert "no model.tar.gz" in capsys.readouterr().err


def test_train_defaults_to_the_standard_sagemaker_paths(monkeypatch):
    # GIVEN no SM_ variable set
    for name in list(os.environ):
        if name.startswith("SM_"):
            monkeypatch.delenv(name)
    # WHEN the arguments are parsed THEN the /opt/ml defaults apply
    args, unknown = load_script("train").parse_args([])
    assert unknown == []
    assert (args.model_dir, args.train, args.config, args.input_config_dir, args.output_dir) == (
        Path("/opt/ml/model"), Path("/opt/ml/input/data/train"), Path("/opt/ml/input/data/config"),
        Path("/opt/ml/input/config"), Path("/opt/ml/output"))
