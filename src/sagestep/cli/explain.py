"""`sagestep explain-decision INFERENCE_ID [--aws]`: the record of one past credit decision, for a regulator or the
applicant — the captured request and response, the endpoint variant and model package that served it, the inputs,
score, decision and reason codes, the model's lineage (data, code, hyperparameters, training run, report, card) and
every approval or rejection of that package from the audit trail.

Where things are: data capture under s3://<artifacts>/capture/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl, records
with `eventMetadata.inferenceId` (the InferenceId the caller passed to InvokeEndpoint); the package that served a
variant at the time is the line's package whose `DeployedAt` (recorded by the deployment pipeline on the endpoint)
is the latest before the inference, else the model of the variant in the endpoint's current config (A/B variants);
approvals come from the audit bucket (audit/v1/approval|rejection/).
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import tarfile
from typing import Any

from sagestep.audit import records as audit
from sagestep.cli import UserError
from sagestep.cli.local import add_runtime_arguments, open_runtime


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("explain-decision", help="explain one past scoring decision by its inference id")
    parser.add_argument("inference_id", help="the InferenceId the application passed to InvokeEndpoint")
    parser.add_argument("--endpoint", help="look only in this endpoint's capture (default: every endpoint)")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    parser.add_argument("--aws", action="store_true", help="use the AWS account of your credentials (needs --stack)")
    parser.add_argument("--stack", help="with --aws: the CloudFormation stack (its ArtifactsBucketName and AuditBucketName outputs)")
    parser.add_argument("--region", help="AWS region with --aws")
    add_runtime_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.aws:
        import boto3

        if not args.stack:
            raise UserError("--stack NAME is required with --aws (the stack whose buckets hold the capture and the audit trail)")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in
                   boto3.client("cloudformation", region_name=args.region).describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])}
        record = explain(boto3.client("s3", region_name=args.region), boto3.client("sagemaker", region_name=args.region),
                         outputs["ArtifactsBucketName"], outputs["AuditBucketName"], args.inference_id, args.endpoint)
    else:
        with open_runtime(args) as runtime:
            record = explain(runtime.client("s3"), runtime.client("sagemaker"), runtime.bucket("ArtifactsBucket"),
                             runtime.bucket("AuditBucket"), args.inference_id, args.endpoint)
    print(json.dumps(record, indent=2, default=str) if args.json else render(record))
    return 0


# ------------------------------------------------------------------------------------------------ finding


def find_capture(s3: Any, bucket: str, inference_id: str, endpoint: str | None = None) -> tuple[str, dict[str, Any]]:
    """(capture object key, capture record) of the inference, newest files first."""
    prefix = f"capture/{endpoint}/" if endpoint else "capture/"
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")]
    for key in sorted(keys, reverse=True):
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace").splitlines():
            if inference_id in line:
                try:
                    capture = json.loads(line)
                except ValueError:
                    continue
                if (capture.get("eventMetadata") or {}).get("inferenceId") == inference_id:
                    return key, capture
    where = f"s3://{bucket}/{prefix}"
    raise UserError(f"inference id {inference_id!r}: no captured request under {where} (was it sent with InferenceId, "
                    "and is data capture on for the endpoint?)")


def _payload(captured: dict[str, Any]) -> str:
    data = captured.get("data", "")
    return base64.b64decode(data).decode("utf-8", "replace") if captured.get("encoding") == "BASE64" else str(data)


def _inputs(request: dict[str, Any], columns: list[str]) -> list[dict[str, Any]]:
    text = _payload(request)
    if "json" in str(request.get("observedContentType", "")):
        body = json.loads(text)
        rows = body.get("instances", body) if isinstance(body, dict) else body
        rows = rows if isinstance(rows, list) else [rows]
        return [row if isinstance(row, dict) else dict(zip(columns, row)) for row in rows]
    return [dict(zip(columns, values)) for values in csv.reader(io.StringIO(text)) if values]


def _outputs(response: dict[str, Any]) -> list[dict[str, Any]]:
    text = _payload(response)
    if "json" in str(response.get("observedContentType", "")):
        return list(json.loads(text).get("predictions", []))
    rows = []
    for values in csv.reader(io.StringIO(text)):
        if values:
            rows.append({"score": float(values[0]), "decision": values[1],
                         "reason_codes": [r for r in (values[2] if len(values) > 2 else "").split(";") if r]})
    return rows


def serving_package(sagemaker: Any, endpoint: str, variant: str, at: str) -> str | None:
    """The model package that served `variant` of `endpoint` at time `at` (ISO 8601)."""
    group = endpoint  # a model line's endpoint has its group's name
    candidates = []
    try:
        summaries = sagemaker.list_model_packages(ModelPackageGroupName=group, MaxResults=100).get("ModelPackageSummaryList", [])
    except sagemaker.exceptions.ClientError:
        summaries = []
    for summary in summaries:
        meta = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"]).get("CustomerMetadataProperties") or {}
        if meta.get("DeployedEndpoint") == endpoint and meta.get("DeployedAt", "") <= at:
            candidates.append((meta["DeployedAt"], summary["ModelPackageArn"]))
    if variant == "Primary" and candidates:
        return max(candidates)[1]
    try:  # an A/B or shadow variant: its model in the endpoint's current config, tagged with its package
        config = sagemaker.describe_endpoint_config(EndpointConfigName=sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"])
        model = next(v["ModelName"] for v in config["ProductionVariants"] + config.get("ShadowProductionVariants", [])
                     if v["VariantName"] == variant)
        tags = sagemaker.list_tags(ResourceArn=sagemaker.describe_model(ModelName=model)["ModelArn"]).get("Tags", [])
        return next((t["Value"] for t in tags if t["Key"] == "sagestep:model-package"), None)
    except (sagemaker.exceptions.ClientError, StopIteration):
        return max(candidates)[1] if candidates else None


def _columns(s3: Any, package: dict[str, Any]) -> list[str]:
    url = package.get("SamplePayloadUrl")
    if not url:
        return []
    bucket, key = url[5:].split("/", 1)
    archive = tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    member = next((m for m in archive.getmembers() if m.isfile()), None)
    if member is None:
        return []
    return next(csv.reader(io.StringIO(archive.extractfile(member).read().decode().splitlines()[0])))


def _approvals(s3: Any, bucket: str, package_arn: str) -> list[dict[str, Any]]:
    found = []
    for kind in ("approval", "rejection"):
        for key, record in audit.read(s3, bucket, kind):
            if record.get("subject", {}).get("model_package_arn") == package_arn:
                found.append({"decision": record["decision"], "by": record["actor"]["name"], "at": record["time"],
                              "reasons": record["reasons"], "audit_record": f"s3://{bucket}/{key}"})
    return sorted(found, key=lambda r: r["at"])


_LINEAGE = ("ModelLine", "ExecutionArn", "TrainingJobName", "DatasetName", "DataS3Uri", "DatasetConfigS3Uri",
            "InputSha256", "ConfigSha256", "CodeVersion", "CodeS3Uri", "CodeSha256", "Algorithm", "HyperParameters",
            "TestAuc", "TestKs", "TestGini", "QualityGate", "ReportS3Uri", "ModelDataUrl", "DeployedAt", "DeployedEndpoint")


def explain(s3: Any, sagemaker: Any, artifacts_bucket: str, audit_bucket: str, inference_id: str,
            endpoint: str | None = None) -> dict[str, Any]:
    key, capture = find_capture(s3, artifacts_bucket, inference_id, endpoint)
    parts = key.split("/")
    endpoint_name, variant = parts[1], parts[2]
    meta = capture.get("eventMetadata") or {}
    data = capture.get("captureData") or {}
    at = str(meta.get("inferenceTime", ""))
    package_arn = serving_package(sagemaker, endpoint_name, variant, at)
    package = sagemaker.describe_model_package(ModelPackageName=package_arn) if package_arn else {}
    columns = _columns(s3, package) if package else []
    inputs = _inputs(data["endpointInput"], columns) if "endpointInput" in data else []
    outputs = _outputs(data["endpointOutput"]) if "endpointOutput" in data else []
    metadata = package.get("CustomerMetadataProperties") or {}
    return {
        "inference_id": inference_id, "inference_time": at, "event_id": meta.get("eventId"),
        "endpoint": endpoint_name, "variant": variant, "capture": f"s3://{artifacts_bucket}/{key}",
        "model_package_arn": package_arn,
        "decisions": [{"inputs": row, **out} for row, out in zip(inputs or [{}] * len(outputs), outputs)],
        "lineage": {k: metadata[k] for k in _LINEAGE if k in metadata},
        "model_approval_status": package.get("ModelApprovalStatus"),
        "approvals": _approvals(s3, audit_bucket, package_arn) if package_arn else [],
    }


def render(record: dict[str, Any]) -> str:
    lines = [f"Decision {record['inference_id']} at {record['inference_time']}",
             f"  endpoint        {record['endpoint']} (variant {record['variant']})",
             f"  model package   {record['model_package_arn'] or 'unknown (no deployment recorded before this time)'}",
             f"  captured        {record['capture']}"]
    for number, decision in enumerate(record["decisions"], 1):
        reasons = ", ".join(decision.get("reason_codes") or []) or "none (approved)"
        lines += [f"  applicant {number}: decision {decision.get('decision')}, score {decision.get('score'):.4f} "
                  f"(threshold {decision.get('threshold', '-')}), reason codes: {reasons}",
                  "    inputs: " + ", ".join(f"{k}={v}" for k, v in decision["inputs"].items())]
    lines.append("  lineage")
    lines += [f"    {k:<18} {v}" for k, v in record["lineage"].items()]
    lines.append(f"  approval status  {record['model_approval_status']}")
    for approval in record["approvals"] or [{"decision": "none recorded", "by": "-", "at": "-", "reasons": [], "audit_record": "-"}]:
        lines.append(f"    {approval['decision']} by {approval['by']} at {approval['at']}: {'; '.join(approval['reasons'])} "
                     f"({approval['audit_record']})")
    return "\n".join(lines)
