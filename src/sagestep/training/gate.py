"""The quality gate: may a trained candidate be registered? Pure functions (no AWS, no pandas).

`decide` checks the data validation report, the test AUC, the disparate impact of every protected attribute and,
when an approved champion exists, the candidate's AUC against the champion's. `registry_metadata` builds the
lineage map stored as the model package's `CustomerMetadataProperties`.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sagestep.training.config import DatasetConfig

# CustomerMetadataProperties limits (SageMaker API): at most 50 entries, keys 1–128 and values 1–256 characters
# of letters, numbers, spaces and _.:/=+-@
MAX_ENTRIES = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
_ALLOWED_PUNCTUATION = set("_.:/=+-@")
_EPSILON = 1e-12  # AUC equal to a threshold up to float rounding counts as reaching it

# Files the gate reads, relative to the preprocess / evaluation output prefixes.
VALIDATION_REPORT = "report/validation_report.json"
MANIFEST = "report/manifest.json"
DATASET_CONFIG = "config/dataset_config.json"
SUMMARY = "summary.json"
EVALUATION_MANIFEST = "manifest.json"
# Written under the run prefix: the gate's decision (for the report step) and the report step's outputs.
GATE_RECORD = "gate/gate.json"
REPORT = "report/report.html"
RUN_SUMMARY = "summary.json"  # beside report.html


def fairness_key(metric: str, attribute: str) -> str:
    """Key of a per-attribute fairness measure in summary.json, e.g. `disparate_impact[Age]`."""
    return f"{metric}[{attribute}]"


def _check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"Name": name, "Passed": bool(passed), "Detail": detail}


def finite_number(value: Any) -> float | None:
    """A finite float from a JSON value, or None (missing, boolean, text, NaN or infinite)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def decide(
    summary: Mapping[str, Any],
    validation_report: Mapping[str, Any],
    config: DatasetConfig,
    champion: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Gate decision: `{"Passed", "Reasons" (every failing reason), "Checks": [{"Name", "Passed", "Detail"}]}`.

    `champion` is None or `{"ModelPackageArn": str, "TestAuc": float | str | None}`.
    """
    th = config.thresholds
    checks: list[dict[str, Any]] = []
    if config.is_regression:
        checks.append(_data_check(validation_report))
        checks.extend(_regression_checks(summary, config, champion))
        reasons = [c["Detail"] for c in checks if not c["Passed"]]
        return {"Passed": not reasons, "Reasons": reasons, "Checks": checks}

    failed_data = [c.get("name", "?") for c in validation_report.get("checks", []) if not c.get("passed")]
    data_ok = bool(validation_report.get("passed")) and not failed_data
    checks.append(_check(
        "Data checks", data_ok,
        f"all {len(validation_report.get('checks', []))} data checks passed" if data_ok
        else f"data checks failed: {failed_data or ['report not passed']} (see report/validation_report.json)",
    ))

    auc = finite_number(summary.get("auc"))
    if auc is None:
        checks.append(_check("Test AUC", False, "summary.json has no numeric auc; re-run the evaluation step"))
    else:
        ok = auc >= th.min_auc - _EPSILON
        checks.append(_check("Test AUC", ok, f"test AUC {auc:.4f} {'>=' if ok else '<'} min_auc {th.min_auc:.4f}"))

    low, high = th.disparate_impact
    for attr in config.protected_attributes:
        name = f"Disparate impact {attr.name}"
        di = finite_number(summary.get(fairness_key("disparate_impact", attr.name)))
        if di is None:
            checks.append(_check(name, False, f"disparate impact of {attr.name} is undefined (a group is empty or "
                                              f"no privileged applicant is approved); see bias.json"))
        else:
            ok = low <= di <= high
            checks.append(_check(name, ok, f"disparate impact of {attr.name} is {di:.3f}, "
                                           f"{'within' if ok else 'outside'} [{low:g}, {high:g}]"))

    if champion is not None:
        arn = champion.get("ModelPackageArn", "?")
        champion_auc = finite_number(champion.get("TestAuc"))
        if champion_auc is None:
            checks.append(_check("Champion comparison", True,
                                 f"champion {arn} has no numeric TestAuc; comparison skipped"))
        elif auc is None:
            checks.append(_check("Champion comparison", False, "candidate has no test AUC to compare"))
        else:
            floor = champion_auc - th.champion_margin
            ok = auc >= floor - _EPSILON
            checks.append(_check(
                "Champion comparison", ok,
                f"candidate AUC {auc:.4f} {'>=' if ok else '<'} champion AUC {champion_auc:.4f} − margin "
                f"{th.champion_margin:g} = {floor:.4f} (champion {arn})",
            ))

    reasons = [c["Detail"] for c in checks if not c["Passed"]]
    return {"Passed": not reasons, "Reasons": reasons, "Checks": checks}


def _data_check(validation_report: Mapping[str, Any]) -> dict[str, Any]:
    failed = [c.get("name", "?") for c in validation_report.get("checks", []) if not c.get("passed")]
    ok = bool(validation_report.get("passed")) and not failed
    return _check("Data checks", ok, f"all {len(validation_report.get('checks', []))} data checks passed" if ok
                  else f"data checks failed: {failed or ['report not passed']} (see report/validation_report.json)")


def _regression_checks(summary: Mapping[str, Any], config: DatasetConfig,
                       champion: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A regressor's gate: its test RMSE no worse than the naive seasonal forecast's (times the allowed ratio) on
    the rows the naive forecast covers, and no worse than the champion's by more than `champion_margin` (a
    fraction of the champion's RMSE)."""
    th = config.thresholds
    checks = []
    rmse = finite_number(summary.get("rmse"))
    ratio = finite_number(summary.get("error_ratio_to_naive"))
    if ratio is None:
        checks.append(_check("Naive forecast", False,
                             f"no naive seasonal forecast to compare with (no test row has a target "
                             f"{th.naive_lag_days} days earlier); provide more history or lower naive_lag_days"))
    else:
        ok = ratio <= th.max_error_ratio_to_naive + _EPSILON
        checks.append(_check("Naive forecast", ok,
                             f"test RMSE {finite_number(summary.get('rmse_on_naive_rows')):.4f} is {ratio:.3f} x the "
                             f"naive seasonal forecast's {finite_number(summary.get('naive_rmse')):.4f} (lag "
                             f"{th.naive_lag_days} days), {'within' if ok else 'above'} max_error_ratio_to_naive "
                             f"{th.max_error_ratio_to_naive:g}"))
    if champion is not None:
        arn = champion.get("ModelPackageArn", "?")
        champion_rmse = finite_number((champion.get("CustomerMetadataProperties") or {}).get("TestRmse"))
        if champion_rmse is None:
            checks.append(_check("Champion comparison", True, f"champion {arn} has no numeric TestRmse; "
                                                              f"comparison skipped"))
        elif rmse is None:
            checks.append(_check("Champion comparison", False, "candidate has no test RMSE to compare"))
        else:
            ceiling = champion_rmse * (1 + th.champion_margin)
            ok = rmse <= ceiling + _EPSILON
            checks.append(_check("Champion comparison", ok,
                                 f"candidate RMSE {rmse:.4f} {'<=' if ok else '>'} champion RMSE {champion_rmse:.4f} "
                                 f"x (1 + margin {th.champion_margin:g}) = {ceiling:.4f} (champion {arn})"))
    return checks


# --------------------------------------------------------------------------------------------- registry metadata


def _allowed(text: str) -> bool:
    return all(ch.isalnum() or ch in _ALLOWED_PUNCTUATION or unicodedata.category(ch).startswith("Z") for ch in text)


def _key_safe(text: str) -> str:
    return "".join(ch if _allowed(ch) else "_" for ch in text)


def _hash_key(prefix: str, name: str) -> str:
    key = f"{prefix}:{_key_safe(name)}"
    return key if len(key) <= MAX_KEY_LENGTH else prefix + ":" + key[-(MAX_KEY_LENGTH - len(prefix) - 1):]


def format_hyperparameters(hyperparameters: Mapping[str, Any]) -> str:
    """`name=value` pairs sorted by name, space separated: the registry's value pattern has no room for JSON
    (no braces, quotes or commas)."""
    return " ".join(f"{k}={hyperparameters[k]}" for k in sorted(hyperparameters))


def registry_metadata(
    *,
    execution_arn: str,
    dataset_name: str,
    data_s3_uri: str,
    code_s3_uri: str,
    algorithm: str,
    hyperparameters: Mapping[str, Any],
    hyperparameters_uri: str,
    manifest: Mapping[str, Any],
    summary: Mapping[str, Any],
    gate_result: Mapping[str, Any],
    training_job_name: str | None = None,
    model_data_url: str | None = None,
    code_version: str | None = None,
    dataset_config_s3_uri: str | None = None,
    model_line: str | None = None,
    report_s3_uri: str | None = None,
    problem_type: str | None = None,
) -> dict[str, str]:
    """The flat lineage map for the model package's `CustomerMetadataProperties` (limits enforced).

    Hashes come from the preprocess manifest: each input file (as many as fit in 50 entries; `InputSha256` covers
    them all), the train/validation/test files and the config. Hyperparameters are stored as `name=value` pairs,
    or as `hyperparameters_uri` when they do not fit in 256 characters or the value pattern.
    Raises ValueError naming the entry when a required value breaks the limits.
    """
    required: dict[str, str] = {
        "ExecutionArn": execution_arn,
        "DatasetName": dataset_name,
        "DataS3Uri": data_s3_uri,
        "CodeS3Uri": code_s3_uri,
        "CodeVersion": code_version or str(manifest.get("code", {}).get("version", "unknown")),
        "Algorithm": algorithm,
        "QualityGate": "Passed" if gate_result.get("Passed") else "Failed",
    }
    if problem_type:
        required["ProblemType"] = problem_type  # monitoring reads it: which model-quality metrics apply
    auc = finite_number(summary.get("auc"))
    if auc is not None:
        required["TestAuc"] = f"{auc:.6f}"
    for key, summary_key in (("TestKs", "ks"), ("TestGini", "gini"), ("TestRmse", "rmse"), ("TestMae", "mae"),
                             ("TestR2", "r2")):
        value = finite_number(summary.get(summary_key))
        if value is not None:
            required[key] = f"{value:.6f}"
    if dataset_config_s3_uri:
        required["DatasetConfigS3Uri"] = dataset_config_s3_uri
    if model_line:
        required["ModelLine"] = model_line
    if report_s3_uri:  # the run's report.html and its summary.json beside it (written by the pipeline's report step)
        required["ReportS3Uri"] = report_s3_uri
        required["RunSummaryS3Uri"] = report_s3_uri.rsplit("/", 1)[0] + "/" + RUN_SUMMARY
    if training_job_name:
        required["TrainingJobName"] = training_job_name
    if model_data_url:
        required["ModelDataUrl"] = model_data_url
    code_sha = manifest.get("code", {}).get("sha256")
    if code_sha:
        required["CodeSha256"] = str(code_sha)
    config_sha = manifest.get("config", {}).get("sha256")
    if config_sha:
        required["ConfigSha256"] = str(config_sha)

    pairs = format_hyperparameters(hyperparameters)
    fits = 0 < len(pairs) <= MAX_VALUE_LENGTH and _allowed(pairs)
    required["HyperParameters" if fits else "HyperParametersUri"] = pairs if fits else hyperparameters_uri

    for split in ("train", "validation", "test"):
        sha = manifest.get("outputs", {}).get(split, {}).get("sha256")
        if sha:
            required[f"DataSha256:{split}"] = str(sha)
    inputs = [i for i in manifest.get("inputs", []) if i.get("sha256")]
    if inputs:
        combined = hashlib.sha256("".join(f"{i['path']}\0{i['sha256']}\n" for i in inputs).encode()).hexdigest()
        required["InputSha256"] = combined
        required["InputFileCount"] = str(len(inputs))

    for key, value in required.items():
        _validate_entry(key, value)
    if len(required) > MAX_ENTRIES:
        raise ValueError(f"CustomerMetadataProperties would hold {len(required)} entries (max {MAX_ENTRIES})")

    metadata = dict(required)
    for item in inputs:  # per-file hashes while room remains; InputSha256 already covers every file
        if len(metadata) >= MAX_ENTRIES:
            break
        metadata[_hash_key("InputSha256", str(item["path"]))] = str(item["sha256"])
    return metadata


def _validate_entry(key: str, value: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not _allowed(key):
        raise ValueError(f"CustomerMetadataProperties key {key!r} must be 1–{MAX_KEY_LENGTH} characters of letters, "
                         f"numbers, spaces and _.:/=+-@")
    if not 1 <= len(value) <= MAX_VALUE_LENGTH or not _allowed(value):
        raise ValueError(
            f"CustomerMetadataProperties[{key}] = {value[:80]!r}... must be 1–{MAX_VALUE_LENGTH} characters of "
            f"letters, numbers, spaces and _.:/=+-@ (got {len(value)}); shorten the name or URI it comes from"
        )


# --------------------------------------------------------------------------------------------- the Lambda's event


class GateEventError(ValueError):
    """The quality gate's input event is malformed; the message names the field and the fix."""


@dataclass(frozen=True)
class QualityGateEvent:
    evaluation_s3_uri: str
    preprocess_s3_uri: str
    training_job_name: str
    hyperparameters: dict[str, str]
    model_data_url: str
    execution_arn: str
    data_s3_uri: str
    dataset_config_s3_uri: str
    code_s3_uri: str
    run_s3_uri: str
    tuning_job_arn: str | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> QualityGateEvent:
        fields = {
            "EvaluationS3Uri": "evaluation_s3_uri", "PreprocessS3Uri": "preprocess_s3_uri",
            "TrainingJobName": "training_job_name", "ModelDataUrl": "model_data_url",
            "ExecutionArn": "execution_arn", "DataS3Uri": "data_s3_uri",
            "DatasetConfigS3Uri": "dataset_config_s3_uri", "CodeS3Uri": "code_s3_uri", "RunS3Uri": "run_s3_uri",
        }
        if not isinstance(event, Mapping):
            raise GateEventError(f"quality gate event must be a JSON object, got {type(event).__name__}")
        values: dict[str, Any] = {}
        for key, attr in fields.items():
            value = event.get(key)
            if not isinstance(value, str) or not value:
                raise GateEventError(f"quality gate event: {key} is required (a non-empty string), got {value!r}; "
                                     f"set it in the state's Parameters")
            values[attr] = value
        for key in ("EvaluationS3Uri", "PreprocessS3Uri", "DataS3Uri", "DatasetConfigS3Uri", "CodeS3Uri",
                    "ModelDataUrl", "RunS3Uri"):
            if not event[key].startswith("s3://"):
                raise GateEventError(f"quality gate event: {key} must be an s3:// URI, got {event[key]!r}")
        hp = event.get("HyperParameters")
        if not isinstance(hp, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in hp.items()):
            raise GateEventError(f"quality gate event: HyperParameters must be an object of strings, got {hp!r}")
        values["hyperparameters"] = dict(hp)
        training = event.get("Training")
        if isinstance(training, Mapping) and isinstance(training.get("TuningJobArn"), str):
            values["tuning_job_arn"] = training["TuningJobArn"]
        return cls(**values)

    def input_uris(self) -> dict[str, str]:
        """The documents the gate reads, by name."""
        pre, ev = _prefix(self.preprocess_s3_uri), _prefix(self.evaluation_s3_uri)
        return {
            "validation_report": pre + VALIDATION_REPORT,
            "manifest": pre + MANIFEST,
            "dataset_config": pre + DATASET_CONFIG,
            "summary": ev + SUMMARY,
        }

    @property
    def gate_record_uri(self) -> str:
        return _prefix(self.run_s3_uri) + GATE_RECORD

    @property
    def report_uri(self) -> str:
        return _prefix(self.run_s3_uri) + REPORT


def model_line_of(documents: Mapping[str, Mapping[str, Any]], source: str = "dataset_config.json") -> str:
    """The model line the run trains: its dataset config's `model_line`."""
    from sagestep.training.config import dataset_config_from_dict

    return dataset_config_from_dict(documents["dataset_config"], source=source).model_line


def _prefix(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def quality_gate(
    event: QualityGateEvent,
    documents: Mapping[str, Mapping[str, Any]],
    champion: Mapping[str, Any] | None,
    code_version: str | None = None,
    *,
    model_line_prefix: str = "",
    model_line_exists: bool = True,
) -> dict[str, Any]:
    """The gate's answer to the state machine, from the documents named by `event.input_uris()`: the decision,
    the lineage for the registry, and the model line the package registers into (`ModelPackageGroupName` =
    prefix + line; `ModelLineExists` False when the pipeline must create the group first)."""
    from sagestep.training import model_card
    from sagestep.training.config import dataset_config_from_dict

    config = dataset_config_from_dict(documents["dataset_config"], source=event.input_uris()["dataset_config"])
    result = decide(documents["summary"], documents["validation_report"], config, champion)
    metadata = registry_metadata(
        execution_arn=event.execution_arn,
        dataset_name=config.name,
        data_s3_uri=event.data_s3_uri,
        code_s3_uri=event.code_s3_uri,
        algorithm=event.hyperparameters.get("algorithm", "unknown").strip('"'),
        hyperparameters={k: v for k, v in event.hyperparameters.items() if not k.startswith(("sagemaker_", "_"))},
        hyperparameters_uri=_prefix(event.evaluation_s3_uri) + EVALUATION_MANIFEST,
        manifest=documents["manifest"],
        summary=documents["summary"],
        gate_result=result,
        training_job_name=event.training_job_name,
        model_data_url=event.model_data_url,
        code_version=code_version,
        dataset_config_s3_uri=event.dataset_config_s3_uri,
        model_line=config.model_line,
        report_s3_uri=event.report_uri,
        problem_type=config.problem_type,
    )
    if event.tuning_job_arn:  # the model is a tuning job's best trial: which tuning job chose its hyperparameters
        metadata["TuningJobArn"] = event.tuning_job_arn
    card = model_card.content(
        summary=documents["summary"], gate=result, model_line=config.model_line, dataset_name=config.name,
        algorithm=metadata["Algorithm"], hyperparameters=event.hyperparameters,
        training_job_arn=model_card.training_job_arn(event.execution_arn, event.training_job_name),
        data_s3_uri=event.data_s3_uri, model_data_url=event.model_data_url, execution_arn=event.execution_arn,
        evaluation_s3_uri=event.evaluation_s3_uri, report_s3_uri=event.report_uri, lineage=metadata,
    )
    return {
        **result,
        "Headline": headline(documents["summary"], config),
        "ChampionModelPackageArn": champion.get("ModelPackageArn") if champion else None,
        "CustomerMetadataProperties": metadata,
        "ModelCard": card,
        "ModelLine": config.model_line,
        "ModelPackageGroupName": model_line_prefix + config.model_line,
        "ModelLineExists": bool(model_line_exists),
        "ReportS3Uri": event.report_uri,
    }


def headline(summary: Mapping[str, Any], config: DatasetConfig) -> str:
    """The candidate's main test metric in words, for the registration notice."""
    def shown(key: str) -> str:
        value = finite_number(summary.get(key))
        return f"{value:.4f}" if value is not None else "n/a"

    if config.is_regression:
        return f"Test RMSE {shown('rmse')} (naive seasonal forecast {shown('naive_rmse')}), MAE {shown('mae')}"
    return f"Test AUC {shown('auc')}"


def gate_record(event: QualityGateEvent, answer: Mapping[str, Any],
                tuning_trials: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """gate.json: the decision and what it was made from, for the run's report (written before it renders, so
    the report needs no execution history); a tuned run's trials (`registry.packages.tuning_trials`) too."""
    return {
        **({"Tuning": {"TuningJobArn": event.tuning_job_arn, "Trials": tuning_trials}} if tuning_trials is not None else {}),
        "version": 1,
        "Gate": dict(answer),
        "ExecutionArn": event.execution_arn,
        "DataS3Uri": event.data_s3_uri,
        "DatasetConfigS3Uri": event.dataset_config_s3_uri,
        "TrainingJobName": event.training_job_name,
        "ModelDataUrl": event.model_data_url,
        "HyperParameters": event.hyperparameters,
        "TuningJobArn": event.tuning_job_arn,
        "CodeS3Uri": event.code_s3_uri,
        "RunS3Uri": event.run_s3_uri,
    }
