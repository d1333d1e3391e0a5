"""Approve or reject model packages with an append-only approval history, and list a group's packages.

Each decision adds entries to the package's CustomerMetadataProperties under its own key, numbered by the microsecond
it was taken (`Approved<n>By`/`Approved<n>At`/`Approved<n>Reason`, `Rejected<n>By`, ...): entries already there are
never rewritten, and two reviewers deciding at the same moment from two clients both stay (UpdateModelPackage merges
keys; a shared counter would let the later one replace the earlier). It also updates the latest decision of its
kind (`ApprovedBy`/`ApprovedAt`/`ApprovedReason`, or the Rejected* ones) and the ApprovalDescription, so the SageMaker
Model Registry keeps who decided, when and why with the model for as long as the model exists. A reason is at most
REASON_LIMIT characters (SageMaker's limit for one metadata value; never cut). Rejecting the package an endpoint
serves is refused unless the caller rolls the endpoint back to the newest other Approved package of the line
(`roll_back=True`; the caller starts the deployment of `RollbackTo`). The boto3 client is passed in.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
import time
from typing import Any

DECISIONS = {"approve": "Approved", "reject": "Rejected"}
REASON_LIMIT = 256  # a CustomerMetadataProperties value (SageMaker's limit)
NAME_LIMIT = 256
METADATA_LIMIT = 50  # CustomerMetadataProperties entries per package (SageMaker's limit)
_NUMBERED = re.compile(r"(Approved|Rejected)(\d+)By")


class ApprovalError(ValueError):
    pass


def decision_count(props: dict[str, str]) -> int:
    return sum(1 for key in props if _NUMBERED.fullmatch(key))


def serving_endpoint(sagemaker: Any, package: dict[str, Any]) -> str | None:
    """The endpoint this package is live on (its recorded deployment is the endpoint's current config), if any."""
    props = package.get("CustomerMetadataProperties") or {}
    endpoint, config = props.get("DeployedEndpoint"), props.get("DeployedEndpointConfig")
    if not endpoint or not config:
        return None
    try:
        current = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    except sagemaker.exceptions.ClientError:
        return None
    return endpoint if current == config else None


def newest_other_approved(sagemaker: Any, group: str, package_arn: str) -> str | None:
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "ModelApprovalStatus": "Approved",
                              "SortBy": "CreationTime", "SortOrder": "Descending"}
    while True:
        page = sagemaker.list_model_packages(**kwargs)
        for summary in page.get("ModelPackageSummaryList", []):
            if summary["ModelPackageArn"] != package_arn:
                return str(summary["ModelPackageArn"])
        if not page.get("NextToken"):
            return None
        kwargs["NextToken"] = page["NextToken"]


def decide(sagemaker: Any, package_arn: str, decision: str, by: str, reason: str, at: dt.datetime | None = None,
           roll_back: bool = False) -> dict[str, Any]:
    if decision not in DECISIONS:
        raise ApprovalError(f"decision must be one of {sorted(DECISIONS)}, got {decision!r}")
    if not by.strip():
        raise ApprovalError("--by must name the person deciding (regulators ask who approved a model)")
    if len(by) > NAME_LIMIT:
        raise ApprovalError(f"--by is {len(by)} characters; at most {NAME_LIMIT} are kept with the package: shorten it")
    if not reason.strip():
        raise ApprovalError("--reason must say why (it is kept with the model package)")
    if len(reason) > REASON_LIMIT:
        raise ApprovalError(f"--reason is {len(reason)} characters; the registry keeps at most {REASON_LIMIT}: shorten it "
                            "(put a longer review in a document and name it in the reason)")
    status = DECISIONS[decision]
    stamp = (at or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        package = sagemaker.describe_model_package(ModelPackageName=package_arn)
    except sagemaker.exceptions.ClientError as exc:
        raise ApprovalError(f"{package_arn}: no such model package ({exc.response['Error']['Message']}); see `sagestep models list`") from exc
    props = package.get("CustomerMetadataProperties") or {}
    number = time.time_ns() // 1000  # unique per decision, in time order (see the module's docstring)
    entries = {f"{status}{number}By": by, f"{status}{number}At": stamp, f"{status}{number}Reason": reason,
               f"{status}By": by, f"{status}At": stamp, f"{status}Reason": reason}
    if len(set(props) | set(entries)) > METADATA_LIMIT:
        raise ApprovalError(f"{package_arn}: its approval history is full ({decision_count(props)} decisions; SageMaker keeps at most "
                            f"{METADATA_LIMIT} metadata entries per package): register a new package version to decide again")
    rollback_to = None
    endpoint = serving_endpoint(sagemaker, package) if status == "Rejected" else None
    if endpoint:
        rollback_to = newest_other_approved(sagemaker, package["ModelPackageGroupName"], package_arn)
        if rollback_to is None:
            raise ApprovalError(
                f"{package_arn} is live on endpoint {endpoint} and no other package of its line is Approved to roll back "
                "to: approve an earlier package first (`sagestep models approve <arn> --by ... --reason ...`), then reject this one")
        if not roll_back:
            raise ApprovalError(
                f"{package_arn} is live on endpoint {endpoint}: rejecting it alone would leave a Rejected model serving. "
                f"To reject it and roll {endpoint} back to {rollback_to} (the newest other Approved package), run: "
                f"sagestep models reject {package_arn} --by {shlex.quote(by)} --reason {shlex.quote(reason)} --roll-back")
    sagemaker.update_model_package(
        ModelPackageArn=package_arn,
        ModelApprovalStatus=status,
        ApprovalDescription=f"{status} by {by} at {stamp}: {reason}"[:1024],
        CustomerMetadataProperties=entries,
    )
    described = sagemaker.describe_model_package(ModelPackageName=package_arn)
    return {
        "ModelPackageArn": package_arn,
        "ModelApprovalStatus": described["ModelApprovalStatus"],
        "ApprovalDescription": described.get("ApprovalDescription"),
        "Decision": decision_count(described.get("CustomerMetadataProperties") or {}),
        "Endpoint": endpoint,
        "RollbackTo": rollback_to,
    }


def history(package: dict[str, Any]) -> list[dict[str, str]]:
    """The package's decisions, oldest first (numbered entries only: the append-only record)."""
    props = package.get("CustomerMetadataProperties") or {}
    found = []
    for key in props:
        match = _NUMBERED.fullmatch(key)
        if match:
            kind, n = match[1], match[2]
            found.append((int(n), {"Status": kind, "By": props[key], "At": props.get(f"{kind}{n}At", ""),
                                   "Reason": props.get(f"{kind}{n}Reason", "")}))
    return [{"Decision": i, **row} for i, (_, row) in enumerate(sorted(found, key=lambda item: item[0]), start=1)]


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
