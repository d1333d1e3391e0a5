"""The SageMaker Model Card of a trained candidate: overview, intended uses, training details, evaluation with
fairness, lineage — built by the quality gate from the run's documents, in the card schema's terms.

`content(...)` follows AWS's model card JSON schema (the model-package variant, vendored with its source in
src/sagestep/validate/data/model_card_schema.json). The training state machine adds `model_package_details` (the link
to the registered package) and creates the card with `aws-sdk:sagemaker:createModelCard`. Limits the schema file
cannot express under draft-07 are enforced here: at most 15 artifacts/datasets/images, 50 metrics, 100 hyperparameters,
10 evaluation datasets, and CreateModelCard's 100000-character Content.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX_CONTENT_CHARS = 100_000
_FAIRNESS = ("disparate_impact", "statistical_parity_difference", "equal_opportunity_difference")
_SCALARS = ("auc", "ks", "gini", "accuracy", "precision", "recall", "f1", "brier", "positive_rate", "decision_threshold")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def content(*, summary: Mapping[str, Any], gate: Mapping[str, Any], model_line: str, dataset_name: str,
            algorithm: str, hyperparameters: Mapping[str, Any], training_job_arn: str, data_s3_uri: str,
            model_data_url: str, execution_arn: str, evaluation_s3_uri: str, report_s3_uri: str,
            lineage: Mapping[str, str]) -> dict[str, Any]:
    metrics = [{"name": k, "type": "number", "value": v} for k in _SCALARS if (v := _number(summary.get(k))) is not None]
    fairness = [{"name": key[:255], "type": "number", "value": v} for key, raw in sorted(summary.items())
                if key.split("[", 1)[0] in _FAIRNESS and (v := _number(raw)) is not None]
    checks = gate.get("Checks") or []
    card: dict[str, Any] = {
        "model_overview": {
            "model_description": f"{algorithm} credit-risk classifier of model line {model_line}, trained by "
                                 f"{execution_arn.rsplit(':', 1)[-1]} on {dataset_name}"[:1024],
            "model_creator": "sagestep training pipeline",
            "model_artifact": [model_data_url][:15],
            "algorithm_type": algorithm[:1024],
            "problem_type": "Binary Classification",
        },
        "intended_uses": {
            "purpose_of_model": "Score credit applications: probability of default, an approve/decline decision at "
                                "the model's threshold, and reason codes for declines.",
            "intended_uses": "Real-time scoring on the model line's SageMaker endpoint and batch scoring; every "
                             "decision is captured (data capture, kept 7 years) and explainable with sagestep "
                             "explain-decision.",
            "factors_affecting_model_efficiency": "Drift of the applicant population from the training data "
                                                  "(monitored hourly against the registered baselines).",
            "risk_rating": "High",
            "explanations_for_risk_rating": "Credit decisions affect applicants; regulators require traceability, "
                                            "fairness audits and explanations of declines.",
        },
        "training_details": {
            "training_observations": f"Quality gate: {'passed' if gate.get('Passed') else 'refused'}; "
                                     + "; ".join(str(r) for r in gate.get("Reasons") or [])[:900],
            "training_job_details": {
                "training_arn": training_job_arn[:1024],
                "training_datasets": [data_s3_uri][:15],
                "training_metrics": [{"name": m["name"], "value": m["value"]} for m in metrics][:50],
                "hyper_parameters": [{"name": str(k)[:255], "value": str(v)[:255]}
                                     for k, v in sorted(hyperparameters.items())][:100],
            },
        },
        "evaluation_details": [{
            "name": "held-out test set"[:63],
            "evaluation_observation": "Test-set metrics and per-attribute fairness of the decisions at the model's "
                                      "threshold (ml/evaluate.py).",
            "datasets": [evaluation_s3_uri][:10],
            "metadata": {str(c.get("Name"))[:1024]: f"{'passed' if c.get('Passed') else 'failed'}: {c.get('Detail', '')}"[:1024]
                         for c in checks if isinstance(c, Mapping)},
            "metric_groups": [g for g in ({"name": "performance", "metric_data": metrics},
                                          {"name": "fairness", "metric_data": fairness}) if g["metric_data"]],
        }],
        "additional_information": {
            "ethical_considerations": "Protected attributes are not model inputs where the dataset config excludes "
                                      "them; fairness is measured per attribute at every training and monitored.",
            "caveats_and_recommendations": "Approve only after reviewing the run's report (fairness, explainability, "
                                           "data validation); retrain when drift alarms fire.",
            "custom_details": {k: str(v)[:1024] for k, v in {**lineage, "ReportS3Uri": report_s3_uri}.items() if v},
        },
    }
    size = len(json.dumps(card))
    if size > MAX_CONTENT_CHARS:
        raise ValueError(f"model card content is {size} characters; CreateModelCard takes at most {MAX_CONTENT_CHARS}")
    return card


def training_job_arn(execution_arn: str, training_job_name: str) -> str:
    """The training job's ARN in the execution's partition, region and account (SageMaker lowercases job names)."""
    parts = execution_arn.split(":")
    if len(parts) < 5 or parts[0] != "arn":
        raise ValueError(f"ExecutionArn {execution_arn!r} is not an ARN; the state machine passes $$.Execution.Id")
    return f"arn:{parts[1]}:sagemaker:{parts[3]}:{parts[4]}:training-job/{training_job_name.lower()}"
