"""Approve or reject model packages with an audit trail, and list a group's packages.

Who approved, when and why is written to the package itself (ApprovalDescription and CustomerMetadataProperties
`ApprovedBy`/`ApprovedAt`/`ApprovedReason`, or the Rejected* equivalents), so the SageMaker Model Registry keeps
the record with the model for as long as the model exists. The boto3 client is passed in.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

DECISIONS = {"approve": "Approved", "reject": "Rejected"}


class ApprovalError(ValueError):
    pass


def decide(sagemaker: Any, package_arn: str, decision: str, by: str, reason: str, at: dt.datetime | None = None) -> dict[str, Any]:
    if decision not in DECISIONS:
        raise ApprovalError(f"decision must be one of {sorted(DECISIONS)}, got {decision!r}")
    if not by.strip():
        raise ApprovalError("--by must name the person deciding (regulators ask who approved a model)")
    if not reason.strip():
        raise ApprovalError("--reason must say why (it is kept with the model package)")
    status = DECISIONS[decision]
    stamp = (at or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    prefix = "Approved" if status == "Approved" else "Rejected"
    try:
        sagemaker.describe_model_package(ModelPackageName=package_arn)
    except sagemaker.exceptions.ClientError as exc:
        raise ApprovalError(f"{package_arn}: no such model package ({exc.response['Error']['Message']}); see `sagestep models list`") from exc
    sagemaker.update_model_package(
        ModelPackageArn=package_arn,
        ModelApprovalStatus=status,
        ApprovalDescription=f"{status} by {by} at {stamp}: {reason}"[:1024],
        CustomerMetadataProperties={f"{prefix}By": by[:256], f"{prefix}At": stamp, f"{prefix}Reason": reason[:256]},
    )
    described = sagemaker.describe_model_package(ModelPackageName=package_arn)
    return {
        "ModelPackageArn": package_arn,
        "ModelApprovalStatus": described["ModelApprovalStatus"],
        "ApprovalDescription": described.get("ApprovalDescription"),
    }


def model_line_groups(sagemaker: Any, prefix: str) -> list[str]:
    """The package groups of the stack's model lines (named <prefix><line>), by name."""
    groups: list[str] = []
    kwargs: dict[str, Any] = {"NameContains": prefix, "MaxResults": 100}
    while True:
        page = sagemaker.list_model_package_groups(**kwargs)
        groups += [g["ModelPackageGroupName"] for g in page.get("ModelPackageGroupSummaryList", [])
                   if g["ModelPackageGroupName"].startswith(prefix)]
        if not page.get("NextToken"):
            return sorted(groups)
        kwargs["NextToken"] = page["NextToken"]


def list_lines(sagemaker: Any, prefix: str, groups: list[str] | None = None) -> list[dict[str, Any]]:
    """Every model line's packages, newest first within a line; each row names its `Line`."""
    rows: list[dict[str, Any]] = []
    for group in groups if groups is not None else model_line_groups(sagemaker, prefix):
        line = group[len(prefix):] if group.startswith(prefix) else group
        rows += [{"Line": line, "Group": group, **row} for row in list_packages(sagemaker, group)]
    return rows


def list_packages(sagemaker: Any, group: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Descending"}
    while True:
        page = sagemaker.list_model_packages(**kwargs)
        for summary in page.get("ModelPackageSummaryList", []):
            described = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            props = described.get("CustomerMetadataProperties") or {}
            rows.append(
                {
                    "ModelPackageArn": summary["ModelPackageArn"],
                    "Version": summary.get("ModelPackageVersion"),
                    "Status": summary["ModelApprovalStatus"],
                    "Created": str(summary.get("CreationTime", ""))[:19],
                    "TestAuc": props.get("TestAuc"),
                    "Algorithm": props.get("Algorithm"),
                    "DecidedBy": props.get("ApprovedBy") or props.get("RejectedBy"),
                    "Dataset": props.get("DatasetName"),
                    "DeployedEndpoint": props.get("DeployedEndpoint"),
                    "ApprovalDescription": described.get("ApprovalDescription"),
                }
            )
        if not page.get("NextToken"):
            return rows
        kwargs["NextToken"] = page["NextToken"]
