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
