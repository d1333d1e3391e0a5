"""The error names Step Functions gives a failed Task, per integration kind, as AWS documents and records them.

One table for the local engine (which names its failures with it) and for `sagestep validate` (which reports an
`ErrorEquals` name the state's integration can never raise). Sources (see /work/notes/aws_errors_and_rules.md):

- AWS SDK integrations (`arn:aws:states:::aws-sdk:<service>:<action>`): `<Prefix>.<ErrorName>`, the prefix from the
  "exception prefix" column of the supported-services table (SageMaker, S3, CloudWatch, Sfn, DynamoDb, Sns, ...),
  the name the modeled exception of the service's API model, always ending in `Exception` (Step Functions adds it:
  S3 `NoSuchKey` -> `S3.NoSuchKeyException`). An error code the model does not declare becomes the generic
  `<Prefix>.<Prefix>Exception` (recorded on AWS: DynamoDB's ValidationException -> `DynamoDb.DynamoDbException`).
  (Step Functions developer guide, "Learning to use AWS service SDK integrations"; LocalStack's snapshots
  recorded against AWS.)
- Optimized integrations (`arn:aws:states:::sagemaker:...`, `lambda:invoke`, `sns:publish`, `states:startExecution`):
  `<Prefix>.<ModeledException>` with the integration's own prefix (SageMaker, Lambda, SNS, StepFunctions), and
  the AWS Java SDK v1 base class for an undeclared code: `SageMaker.AmazonSageMakerException` (documented in AWS's
  SageMaker example), `Lambda.AWSLambdaException` (documented), `SNS.AmazonSNSException`,
  `StepFunctions.AWSStepFunctionsException` (by the same rule; recorded for DynamoDB and SQS). The wire code
  (e.g. ValidationException) is then only in the Cause: `... (Service: AmazonSageMaker; Status Code: 400; Error
  Code: ValidationException; Request ID: ...; Proxy: null)`.
- A failure to reach the service: `<Prefix>.SdkClientException`.
- Lambda function errors: the payload's `errorType` (the exception class), `Lambda.Unknown` for timeouts and
  out-of-memory as the Step Functions guide documents ("Handling errors": unhandled errors such as timeouts).
- `.sync` jobs and child executions that end Failed/Stopped: `States.TaskFailed`, the final Describe* as Cause.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from sagestep.aws import service_model as awsmodel

# "Exception prefix" of the AWS SDK integrations (the ARN token -> the prefix); the services this project and its
# tests call, and a few common neighbours. Anything else: the ARN token with its first letter upper-cased.
SDK_PREFIXES = {
    "sagemaker": "SageMaker",
    "sagemakerruntime": "SageMakerRuntime",
    "s3": "S3",
    "cloudwatch": "CloudWatch",
    "cloudwatchlogs": "CloudWatchLogs",
    "sfn": "Sfn",
    "lambda": "Lambda",
    "sns": "Sns",
    "sqs": "Sqs",
    "dynamodb": "DynamoDb",
    "eventbridge": "EventBridge",
    "iam": "Iam",
    "kms": "Kms",
    "secretsmanager": "SecretsManager",
    "ssm": "Ssm",
    "ecs": "Ecs",
    "glue": "Glue",
    "athena": "Athena",
    "acmpca": "AcmPca",
}

# Optimized integrations: the prefix, and the generic name an undeclared error code takes.
OPTIMIZED = {
    "sagemaker": ("SageMaker", "SageMaker.AmazonSageMakerException"),
    "lambda": ("Lambda", "Lambda.AWSLambdaException"),
    "sns": ("SNS", "SNS.AmazonSNSException"),
    "states": ("StepFunctions", "StepFunctions.AWSStepFunctionsException"),
    "sqs": ("SQS", "SQS.AmazonSQSException"),
    "dynamodb": ("DynamoDB", "DynamoDB.AmazonDynamoDBException"),
}

# Names any Task may end with, whatever it calls (Step Functions developer guide, "Error names").
TASK_STATES_ERRORS = {
    "States.ALL", "States.TaskFailed", "States.Timeout", "States.Permissions", "States.ResultPathMatchFailure",
    "States.ParameterPathFailure", "States.IntrinsicFailure", "States.DataLimitExceeded",
}
# Lambda: documented transient names, the unhandled-error name, and Lambda's own name for a timeout.
LAMBDA_EXTRA = {"Lambda.ClientExecutionTimeoutException", "Lambda.SdkClientException", "Lambda.Unknown", "Sandbox.Timedout"}


def sdk_prefix(api_name: str) -> str:
    return SDK_PREFIXES.get(api_name.lower(), api_name[:1].upper() + api_name[1:])


@functools.lru_cache(maxsize=None)
def modeled_errors(boto_service: str) -> dict[str, str]:
    """Wire error code -> exception shape name, for every exception the service's API model declares."""
    model = awsmodel._session().get_service_model(awsmodel.SFN_TO_BOTO_SERVICE.get(boto_service, boto_service))
    codes: dict[str, str] = {}
    for shape in model.error_shapes:
        code = (shape.metadata.get("error") or {}).get("code") or shape.name
        codes.setdefault(code, shape.name)
        codes.setdefault(shape.name, shape.name)
    return codes


def _with_suffix(name: str) -> str:
    return name if name.endswith("Exception") else f"{name}Exception"


def sdk_error_name(api_name: str, boto_service: str, code: str) -> str:
    """`aws-sdk:<api_name>:*` failing with wire error `code`."""
    prefix = sdk_prefix(api_name)
    shape = modeled_errors(boto_service).get(code)
    return f"{prefix}.{_with_suffix(shape)}" if shape else f"{prefix}.{prefix}Exception"


def optimized_error_name(service: str, code: str) -> str:
    """An optimized integration (`sagemaker`, `lambda`, `sns`, `states`, ...) failing with wire error `code`."""
    prefix, generic = OPTIMIZED[service]
    shape = modeled_errors({"states": "stepfunctions"}.get(service, service)).get(code)
    return f"{prefix}.{_with_suffix(shape)}" if shape else generic


def optimized_cause(service: str, message: str, status: int, code: str, request_id: str = "local") -> str:
    label = {"sagemaker": "AmazonSageMaker", "lambda": "AWSLambda", "sns": "AmazonSNS", "states": "AWSStepFunctions",
             "sqs": "AmazonSQS", "dynamodb": "AmazonDynamoDBv2"}.get(service, service)
    return f"{message} (Service: {label}; Status Code: {status}; Error Code: {code}; Request ID: {request_id}; Proxy: null)"


def sdk_cause(api_name: str, message: str, status: int, request_id: str = "local") -> str:
    return f"{message} (Service: {sdk_prefix(api_name)}, Status Code: {status}, Request ID: {request_id})"


# ------------------------------------------------------------------------------------------------ what can occur

_RESOURCE = re.compile(r"^arn:[^:]+:states:::(?:(aws-sdk):)?([a-z0-9-]+):([A-Za-z0-9]+)(?:\.(\w+(?::\d)?))?$")


def integration_of(resource: Any) -> tuple[str, str, str, str | None] | None:
    """(kind 'aws-sdk'|'optimized', service, action, pattern) of a Task Resource, or None (a bare Lambda ARN,
    an activity, an unresolved substitution)."""
    if not isinstance(resource, str):
        return None
    resource = re.sub(r"^arn:\$\{[^}]+\}:", "arn:aws:", resource)
    match = _RESOURCE.match(resource)
    if not match:
        return None
    sdk, service, action, pattern = match.groups()
    return ("aws-sdk" if sdk else "optimized", service, action, pattern)


def service_names(kind: str, service: str) -> set[str] | None:
    """Every service error name a Task of this integration can fail with; None when unknown (no model)."""
    if kind == "aws-sdk":
        prefix = sdk_prefix(service)
        boto = {"sfn": "stepfunctions", "cloudwatchlogs": "logs", "eventbridge": "events",
                "sagemakerruntime": "sagemaker-runtime"}.get(service, service)
        try:
            codes = modeled_errors(boto)
        except Exception:  # noqa: BLE001 - botocore has no such service
            return None
        return {f"{prefix}.{_with_suffix(s)}" for s in codes.values()} | {f"{prefix}.{prefix}Exception", f"{prefix}.SdkClientException"}
    if service not in OPTIMIZED:
        return None
    prefix, generic = OPTIMIZED[service]
    codes = modeled_errors({"states": "stepfunctions"}.get(service, service))
    names = {f"{prefix}.{_with_suffix(s)}" for s in codes.values()} | {generic, f"{prefix}.SdkClientException"}
    if service == "lambda":
        names |= LAMBDA_EXTRA
    return names
