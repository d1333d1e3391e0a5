"""SageMaker Model Registry look-ups; the boto3 SageMaker client is passed in."""

from __future__ import annotations

from typing import Any


def latest_approved_model_package(sagemaker_client: Any, group_name: str, dataset_name: str) -> dict[str, Any] | None:
    """The champion: the most recently created Approved package of the group trained on the same dataset, or None.

    A group can hold models of several datasets (the pipeline is dataset-agnostic); comparing a candidate with a
    champion of another dataset would be meaningless, so packages whose `DatasetName` differs are skipped.
    Returns `{"ModelPackageArn", "TestAuc" (str or None), "CustomerMetadataProperties"}`.
    """
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": group_name,
        "ModelApprovalStatus": "Approved",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
    }
    while True:
        listed = sagemaker_client.list_model_packages(**kwargs)
        for summary in listed.get("ModelPackageSummaryList", []):
            arn = summary["ModelPackageArn"]
            described = sagemaker_client.describe_model_package(ModelPackageName=arn)
            properties = dict(described.get("CustomerMetadataProperties") or {})
            if properties.get("DatasetName") == dataset_name:
                return {"ModelPackageArn": arn, "TestAuc": properties.get("TestAuc"), "CustomerMetadataProperties": properties}
        if not listed.get("NextToken"):
            return None
        kwargs["NextToken"] = listed["NextToken"]


def model_line_exists(sagemaker_client: Any, group_name: str) -> bool:
    """Whether the model line's package group exists yet (a new line's first run creates it)."""
    try:
        sagemaker_client.describe_model_package_group(ModelPackageGroupName=group_name)
    except sagemaker_client.exceptions.ClientError:
        return False
    return True


def tuning_trials(sagemaker_client: Any, tuning_job_arn: str) -> list[dict[str, Any]]:
    """Every trial of a tuning job, in creation order: name, status, objective value (None when it has none) and the
    tuned hyperparameters."""
    name = tuning_job_arn.rsplit("/", 1)[-1]
    kwargs: dict[str, Any] = {"HyperParameterTuningJobName": name, "MaxResults": 100, "SortBy": "CreationTime",
                              "SortOrder": "Ascending"}
    trials: list[dict[str, Any]] = []
    while True:
        listed = sagemaker_client.list_training_jobs_for_hyper_parameter_tuning_job(**kwargs)
        for summary in listed.get("TrainingJobSummaries", []):
            objective = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
            trials.append({"TrainingJobName": summary["TrainingJobName"], "Status": summary["TrainingJobStatus"],
                           "Objective": objective.get("Value"), "MetricName": objective.get("MetricName"),
                           "TunedHyperParameters": summary.get("TunedHyperParameters") or {},
                           "FailureReason": summary.get("FailureReason")})
        if not listed.get("NextToken"):
            return trials
        kwargs["NextToken"] = listed["NextToken"]
