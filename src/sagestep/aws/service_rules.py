"""AWS's cross-field rules: requests in which every field is valid alone but which SageMaker (or Step Functions)
rejects. One catalogue, read by `sagestep validate` (on every Task's evaluated request) and by the local runtime
(at the call: `local/engine.py` for Task parameters, `local/sagemaker_backend.py` for the rules that need the
state of the account, such as an endpoint's status).

Each rule names its source; "UNCONFIRMED" marks a rule whose exact AWS behaviour (the message, or whether the
API rejects rather than ignores) is not documented, only implied by the documented feature exclusions. Rules the
botocore API model already carries (lengths, counts, ranges: checked by `service_model.validate`) are listed with
`check=None` so the catalogue is complete in one place; their tests exercise the model check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

Request = dict[str, Any]
Check = Callable[[Request], list[str]]

_SLS_DOC = "SageMaker developer guide, Serverless Inference, \"Feature exclusions\""
_API = "SageMaker API reference (= botocore 1.44.5 model)"


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    service: str  # botocore service name, or "states" for Step Functions itself
    actions: tuple[str, ...]  # PascalCase operations the rule applies to ("" for a state-machine rule)
    summary: str
    source: str
    where: str  # who enforces it locally
    check: Check | None = None


def _variants(request: Request) -> list[dict[str, Any]]:
    return [v for v in request.get("ProductionVariants") or [] if isinstance(v, dict)]


def _shadows(request: Request) -> list[dict[str, Any]]:
    return [v for v in request.get("ShadowProductionVariants") or [] if isinstance(v, dict)]


def _serverless(request: Request) -> bool:
    return any("ServerlessConfig" in v for v in _variants(request) + _shadows(request))


def _serverless_no_capture(request: Request) -> list[str]:
    if _serverless(request) and "DataCaptureConfig" in request:
        return ["DataCaptureConfig: a serverless endpoint config cannot capture data (Serverless Inference does not "
                "support data capture); remove DataCaptureConfig or use instances (InstanceType, InitialInstanceCount)"]
    return []


def _serverless_one_variant(request: Request) -> list[str]:
    if _serverless(request) and len(_variants(request)) > 1:
        return [f"ProductionVariants: {len(_variants(request))} variants with ServerlessConfig; Serverless Inference "
                "supports one production variant (no A/B testing): use instances for several variants"]
    return []


def _serverless_no_shadow(request: Request) -> list[str]:
    if _serverless(request) and _shadows(request):
        return ["ShadowProductionVariants: a serverless endpoint config cannot have shadow variants (Serverless "
                "Inference supports a single variant); use instances for shadow tests"]
    return []


def _shadow_one_and_one(request: Request) -> list[str]:
    if _shadows(request) and (len(_variants(request)) != 1 or len(_shadows(request)) != 1):
        return [f"ShadowProductionVariants: with shadow variants an endpoint config takes exactly one production "
                f"variant and one shadow variant (got {len(_variants(request))} and {len(_shadows(request))})"]
    return []


def _capacity_of_each_variant(request: Request) -> list[str]:
    errors = []
    for field, variants in (("ProductionVariants", _variants(request)), ("ShadowProductionVariants", _shadows(request))):
        for index, variant in enumerate(variants):
            instance = [k for k in ("InstanceType", "InitialInstanceCount") if k in variant]
            if "ServerlessConfig" in variant and instance:
                errors.append(f"{field}[{index}]: ServerlessConfig and {' and '.join(instance)} are exclusive: a variant "
                              "is serverless or runs on instances")
            elif "ServerlessConfig" not in variant and len(instance) < 2 and "ManagedInstanceScaling" not in variant:
                missing = {"InstanceType", "InitialInstanceCount"} - set(instance)
                errors.append(f"{field}[{index}]: {' and '.join(sorted(missing))} required for an instance-based "
                              "variant (or give ServerlessConfig)")
    return errors


def _serverless_concurrency(request: Request) -> list[str]:
    errors = []
    for index, variant in enumerate(_variants(request)):
        config = variant.get("ServerlessConfig")
        if not isinstance(config, dict):
            continue
        memory, provisioned, maximum = config.get("MemorySizeInMB"), config.get("ProvisionedConcurrency"), config.get("MaxConcurrency")
        if isinstance(memory, int) and memory % 1024:
            errors.append(f"ProductionVariants[{index}].ServerlessConfig.MemorySizeInMB: {memory} is not one of 1024, 2048, "
                          "3072, 4096, 5120, 6144 (1 GB steps)")
        if isinstance(provisioned, int) and isinstance(maximum, int) and provisioned > maximum:
            errors.append(f"ProductionVariants[{index}].ServerlessConfig.ProvisionedConcurrency: {provisioned} exceeds "
                          f"MaxConcurrency {maximum}")
    return errors


def _unique_variant_names(request: Request) -> list[str]:
    names = [v.get("VariantName") for v in _variants(request) + _shadows(request)]
    duplicates = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
    return [f"ProductionVariants: variant name {n!r} is used twice; variant names are unique in a config" for n in duplicates]


def _one_update_policy(request: Request) -> list[str]:
    config = request.get("DeploymentConfig")
    if isinstance(config, dict) and "BlueGreenUpdatePolicy" in config and "RollingUpdatePolicy" in config:
        return ["DeploymentConfig: BlueGreenUpdatePolicy and RollingUpdatePolicy are exclusive (only one update policy)"]
    return []


def _traffic_routing(request: Request) -> list[str]:
    policy = (request.get("DeploymentConfig") or {}).get("BlueGreenUpdatePolicy")
    if not isinstance(policy, dict):
        return []
    routing = policy.get("TrafficRoutingConfiguration") or {}
    where = "DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration"
    errors = []
    kind = routing.get("Type")
    for field, wanted, low, high in (("CanarySize", "CANARY", 1, 50), ("LinearStepSize", "LINEAR", 10, 50)):
        size = routing.get(field)
        if kind == wanted and size is None:
            errors.append(f"{where}.{field}: required when Type is {wanted}")
        if size is not None and kind != wanted:
            errors.append(f"{where}.{field}: only applies when Type is {wanted} (Type is {kind})")
        if isinstance(size, dict) and size.get("Type") == "CAPACITY_PERCENT" and isinstance(size.get("Value"), int):
            if not low <= size["Value"] <= high:
                errors.append(f"{where}.{field}.Value: {size['Value']}% is outside {low}-{high}% of the variant's capacity")
    total = policy.get("MaximumExecutionTimeoutInSeconds")
    waited = (policy.get("TerminationWaitInSeconds") or 0) + (routing.get("WaitIntervalInSeconds") or 0)
    if isinstance(total, int) and isinstance(waited, int) and total <= waited:
        errors.append(f"DeploymentConfig.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: {total} s must exceed "
                      f"TerminationWaitInSeconds + WaitIntervalInSeconds ({waited} s)")
    return errors


def _rolling_batch(request: Request) -> list[str]:
    policy = (request.get("DeploymentConfig") or {}).get("RollingUpdatePolicy")
    size = (policy or {}).get("MaximumBatchSize") if isinstance(policy, dict) else None
    if isinstance(size, dict) and size.get("Type") == "CAPACITY_PERCENT" and isinstance(size.get("Value"), int):
        if not 5 <= size["Value"] <= 50:
            return [f"DeploymentConfig.RollingUpdatePolicy.MaximumBatchSize.Value: {size['Value']}% is outside 5-50%"]
    return []


def _training_runtime(request: Request) -> list[str]:
    stopping = request.get("StoppingCondition") or {}
    errors = []
    runtime, wait = stopping.get("MaxRuntimeInSeconds"), stopping.get("MaxWaitTimeInSeconds")
    if isinstance(runtime, int) and runtime > 28 * 86400:
        errors.append(f"StoppingCondition.MaxRuntimeInSeconds: {runtime} exceeds 28 days (2419200 s)")
    if wait is not None and not request.get("EnableManagedSpotTraining"):
        errors.append("StoppingCondition.MaxWaitTimeInSeconds: only for managed spot training (EnableManagedSpotTraining)")
    if isinstance(runtime, int) and isinstance(wait, int) and wait < runtime:
        errors.append(f"StoppingCondition.MaxWaitTimeInSeconds: {wait} is less than MaxRuntimeInSeconds {runtime}")
    return errors


def _versioned_package(request: Request) -> list[str]:
    errors = []
    if request.get("ModelPackageGroupName") is not None:
        if request.get("ModelPackageName") is not None:
            errors.append("ModelPackageName: not applicable to a versioned package (ModelPackageGroupName given): "
                          "SageMaker names versions itself")
    elif request.get("ModelPackageName") is not None and request.get("ModelApprovalStatus") is not None:
        errors.append("ModelApprovalStatus: not applicable to an unversioned package (no ModelPackageGroupName)")
    return errors


RULES: tuple[Rule, ...] = (
    Rule("serverless-without-data-capture", "sagemaker", ("CreateEndpointConfig",),
         "A serverless endpoint config cannot have DataCaptureConfig.", _SLS_DOC, "validate + engine", _serverless_no_capture),
    Rule("serverless-single-variant", "sagemaker", ("CreateEndpointConfig",),
         "A serverless endpoint config has one production variant (no A/B).", _SLS_DOC, "validate + engine", _serverless_one_variant),
    Rule("serverless-without-shadow", "sagemaker", ("CreateEndpointConfig",),
         "A serverless endpoint config has no shadow variants.",
         f"{_SLS_DOC} (multiple variants excluded); UNCONFIRMED message", "validate + engine", _serverless_no_shadow),
    Rule("shadow-one-and-one", "sagemaker", ("CreateEndpointConfig",),
         "With ShadowProductionVariants: exactly one production and one shadow variant.",
         f"{_API}, CreateEndpointConfig.ShadowProductionVariants", "validate + engine", _shadow_one_and_one),
    Rule("variant-instance-or-serverless", "sagemaker", ("CreateEndpointConfig",),
         "Each variant is serverless (ServerlessConfig) or instance-based (InstanceType + InitialInstanceCount), not both.",
         f"{_API}, ProductionVariant.ServerlessConfig (\"instead of an instance-based\"); UNCONFIRMED message",
         "validate + engine", _capacity_of_each_variant),
    Rule("serverless-memory-and-concurrency", "sagemaker", ("CreateEndpointConfig",),
         "ServerlessConfig: memory in 1 GB steps; ProvisionedConcurrency <= MaxConcurrency.",
         f"{_API}, ProductionVariantServerlessConfig", "validate + engine", _serverless_concurrency),
    Rule("unique-variant-names", "sagemaker", ("CreateEndpointConfig",),
         "Variant names are unique within a config (production and shadow).",
         f"{_API}, ProductionVariant.VariantName; UNCONFIRMED message", "validate + engine", _unique_variant_names),
    Rule("one-update-policy", "sagemaker", ("CreateEndpoint", "UpdateEndpoint"),
         "DeploymentConfig takes BlueGreenUpdatePolicy or RollingUpdatePolicy, not both.",
         f"{_API}, DeploymentConfig (\"only one update policy should be used\")", "validate + engine", _one_update_policy),
    Rule("blue-green-traffic-routing", "sagemaker", ("CreateEndpoint", "UpdateEndpoint"),
         "CANARY needs CanarySize (<= 50%), LINEAR needs LinearStepSize (10-50%); the maximum execution timeout exceeds "
         "the termination wait plus the wait interval.",
         f"{_API}, TrafficRoutingConfig, CapacitySize, BlueGreenUpdatePolicy", "validate + engine", _traffic_routing),
    Rule("rolling-batch-size", "sagemaker", ("CreateEndpoint", "UpdateEndpoint"),
         "RollingUpdatePolicy.MaximumBatchSize is 5-50% of the capacity.",
         f"{_API}, RollingUpdatePolicy.MaximumBatchSize", "validate + engine", _rolling_batch),
    Rule("training-stopping-condition", "sagemaker", ("CreateTrainingJob",),
         "MaxRuntimeInSeconds <= 28 days; MaxWaitTimeInSeconds only with managed spot and >= MaxRuntimeInSeconds.",
         f"{_API}, StoppingCondition", "validate + engine", _training_runtime),
    Rule("versioned-model-package", "sagemaker", ("CreateModelPackage",),
         "A versioned package (ModelPackageGroupName) takes no ModelPackageName; an unversioned one no ModelApprovalStatus.",
         f"{_API}, CreateModelPackage", "validate + engine", _versioned_package),
    Rule("hyperparameter-limits", "sagemaker", ("CreateTrainingJob",),
         "At most 100 hyperparameters; key <= 256, value <= 2500 characters.",
         f"{_API}, HyperParameters (the CreateTrainingJob prose says 256 per value; the model's 2500 is what the API takes)",
         "API model: validate + engine"),
    Rule("customer-metadata-limits", "sagemaker", ("CreateModelPackage", "UpdateModelPackage"),
         "CustomerMetadataProperties: 1-50 entries, key 1-128, value 1-256 characters, letters, digits, spaces and "
         "_.:/=+-@ only.", f"{_API}, CustomerMetadataMap", "API model: validate + engine"),
    Rule("update-endpoint-in-progress", "sagemaker", ("UpdateEndpoint", "UpdateEndpointWeightsAndCapacities"),
         "An endpoint that is Creating, Updating, SystemUpdating or RollingBack cannot be updated "
         "(ValidationException \"Cannot update in-progress endpoint\").",
         "AWS-maintained SageMaker operator for Kubernetes (message constants) and reports of real API output",
         "local runtime (sagemaker_backend)"),
    Rule("no-update-to-serverless", "sagemaker", ("UpdateEndpoint",),
         "An instance-based endpoint cannot be updated to a serverless config.", _SLS_DOC, "local runtime (sagemaker_backend)"),
    Rule("serverless-without-network-isolation", "sagemaker", ("CreateEndpointConfig",),
         "A serverless variant cannot serve a model with EnableNetworkIsolation or VpcConfig.",
         f"{_SLS_DOC}; UNCONFIRMED message", "local runtime (sagemaker_backend)"),
    Rule("existing-name", "sagemaker", ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"),
         "A model, endpoint config or endpoint name that exists cannot be created again (\"Cannot create already "
         "existing ...\").", "Real API output quoted in public issue threads (notes §3a)", "local runtime (sagemaker_backend)"),
    Rule("state-payload-256kb", "states", ("",),
         "A state's input, output or a task's result over 262,144 bytes fails the execution with "
         "States.DataLimitExceeded (not caught by States.ALL).",
         "Step Functions developer guide, \"Service quotas\" and \"Error handling\"", "engine"),
    Rule("inline-map-concurrency", "states", ("",),
         "An Inline Map runs at most 40 iterations at once whatever MaxConcurrency says; a Distributed Map at most 10,000.",
         "Step Functions developer guide, \"Inline Map state\" / \"Distributed Map state\"", "validate + engine"),
    Rule("heartbeat-below-timeout", "states", ("",),
         "HeartbeatSeconds must be smaller than TimeoutSeconds.", "Step Functions developer guide, \"Task state\"", "validate"),
    Rule("lambda-payload-and-limits", "lambda", ("Invoke",),
         "A synchronous invocation's request and response are at most 6 MB; the function stops at its Timeout "
         "(Lambda.Unknown / Sandbox.Timedout) and at its MemorySize (out of memory: Lambda.Unknown); through Step "
         "Functions the result is further limited to 256 KB (States.DataLimitExceeded).",
         "Lambda developer guide, \"Lambda quotas\"; Step Functions \"Error handling\"", "engine (Lambda workers)"),
)


def rules_for(service: str, action: str) -> list[Rule]:
    name = action[:1].upper() + action[1:]
    return [r for r in RULES if r.service == service and name in r.actions and r.check is not None]


def check(service: str, action: str, request: Any) -> list[str]:
    """Violations of the request-level rules for this call, as 'Field.Path: problem (rule id)'."""
    if not isinstance(request, dict):
        return []
    return [f"{message} [{rule.id}]" for rule in rules_for(service, action) for message in rule.check(request)]  # type: ignore[misc]
