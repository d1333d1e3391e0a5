"""Patches to moto's SageMaker service so that local SageMaker behaves like the real one where pipelines look.

- Create{Processing,Training,Transform}Job start a real job (`sagestep.local.jobs`) and Describe* report its live
  status; moto alone marks jobs Completed at once, drops `Environment` and overwrites `MetricDefinitions`.
- CreateHyperParameterTuningJob runs the tuning job for real (`sagestep.local.tuning`: each trial a training job of
  the same runner); DescribeHyperParameterTuningJob, ListTrainingJobsForHyperParameterTuningJob and
  StopHyperParameterTuningJob answer from it (moto only records the request).
- UpdateModelPackage merges CustomerMetadataProperties and keeps fields that the request leaves out (moto resets
  them to None).
- CreateEndpoint / UpdateEndpoint start model servers (`sagestep.local.endpoints`); UpdateEndpoint exists (moto
  has none); InvokeEndpoint (sagemaker-runtime) reaches the variant's server.
- The rules of `aws.service_rules` that need the account's state: an endpoint Creating/Updating cannot be updated
  (weights included), an instance endpoint cannot become serverless, a serverless variant cannot serve a network-
  isolated model, a model / endpoint config / endpoint name cannot be created twice (moto accepts all of these).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from sagestep.local.engine import HOOKS, PatchPointMoved, _attr, _module

_JOB_KINDS = {
    "processing": ("ProcessingJobName", "processing-job"),
    "training": ("TrainingJobName", "training-job"),
    "transform": ("TransformJobName", "transform-job"),
}

_INSTALLED = False
_LOCK = threading.Lock()
# The server answers requests on several threads: a name check and the create it guards (or a status check and the
# update) happen as one step, as in SageMaker, where the second of two racing CreateEndpoint calls is refused.
_MUTATION = threading.RLock()


def _atomic(function: Any) -> Any:
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _MUTATION:
            return function(*args, **kwargs)

    locked.__name__ = function.__name__
    return locked


def install() -> None:
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        responses = _module("moto.sagemaker.responses")
        models = _module("moto.sagemaker.models")
        core = _module("moto.core.responses")
        response_cls = _attr(responses, "SageMakerResponse")
        ActionResult = _attr(core, "ActionResult")
        EmptyResult = _attr(core, "EmptyResult")
        exceptions = _module("moto.sagemaker.exceptions")
        ValidationError = _attr(exceptions, "ValidationError")
        for kind in _JOB_KINDS:
            _patch_job_kind(response_cls, kind, ActionResult, EmptyResult, ValidationError)
        _patch_tuning(response_cls, ActionResult, EmptyResult, ValidationError)
        _patch_update_model_package(_attr(models, "SageMakerModelBackend"))
        _add_update_endpoint(response_cls, _attr(models, "SageMakerModelBackend"), ActionResult, ValidationError)
        _patch_invoke_endpoint()
        _keep_shadow_variants(response_cls, ActionResult)
        _enforce_account_rules(response_cls, _attr(models, "SageMakerModelBackend"), ValidationError)
        _INSTALLED = True


def _runner() -> Any:
    if HOOKS.job_runner is None:
        raise PatchPointMoved("a SageMaker job was created with no local runtime active")
    return HOOKS.job_runner


def _patch_job_kind(response_cls: type, kind: str, ActionResult: Any, EmptyResult: Any, ValidationError: Any) -> None:
    name_key, arn_kind = _JOB_KINDS[kind]
    create_name, describe_name, stop_name = f"create_{kind}_job", f"describe_{kind}_job", f"stop_{kind}_job"
    original_create = _attr(response_cls, create_name)
    original_describe = _attr(response_cls, describe_name)
    original_stop = getattr(response_cls, stop_name, None)

    def create(self: Any) -> Any:
        request = json.loads(self.body)
        name = request[name_key]
        if _runner().get(kind, name) is not None:
            raise ValidationError(message=f"Job name {name} already exists in this account and region; job names must be unique")
        result = original_create(self)  # keeps moto's bookkeeping (List*, tags)
        arn = f"arn:aws:sagemaker:{self.region}:{self.current_account}:{arn_kind}/{name.lower()}"
        _runner().start(kind, request, arn)
        return result

    def describe(self: Any) -> Any:
        name = self._get_param(name_key)
        job = _runner().get(kind, name)
        if job is None:
            return original_describe(self)
        return ActionResult(job.describe())

    def stop(self: Any) -> Any:
        name = self._get_param(name_key)
        job = _runner().get(kind, name)
        if job is None:
            if original_stop is None:
                raise ValidationError(message=f"Could not find {kind} job {name}")
            return original_stop(self)
        _runner().stop(kind, name)
        return EmptyResult()

    setattr(response_cls, create_name, create)
    setattr(response_cls, describe_name, describe)
    setattr(response_cls, stop_name, stop)


def _tuning_runner() -> Any:
    """The tuning runner of the active job runner (one per local runtime), made on first use."""
    from sagestep.local.engine import scaled
    from sagestep.local.tuning import TuningRunner

    runner = _runner()
    tuning = getattr(runner, "tuning_runner", None)
    if tuning is None:
        def start_training(request: dict[str, Any], arn: str) -> Any:
            return runner.start("training", request, arn)

        tuning = TuningRunner(start_training, lambda name: runner.stop("training", name), scaled)
        runner.tuning_runner = tuning
    return tuning


def _patch_tuning(response_cls: type, ActionResult: Any, EmptyResult: Any, ValidationError: Any) -> None:
    from sagestep.local.tuning import TuningSpecError

    _attr(response_cls, "create_hyper_parameter_tuning_job")
    _attr(response_cls, "describe_hyper_parameter_tuning_job")

    def create(self: Any) -> Any:
        request = json.loads(self.body)
        name = request["HyperParameterTuningJobName"]
        arn = f"arn:aws:sagemaker:{self.region}:{self.current_account}:hyper-parameter-tuning-job/{name.lower()}"
        account, region = self.current_account, self.region

        def training_arn(trial: str) -> str:
            return f"arn:aws:sagemaker:{region}:{account}:training-job/{trial.lower()}"

        try:
            _tuning_runner().start(request, arn, training_arn)
        except TuningSpecError as exc:
            raise ValidationError(message=str(exc)) from None
        return ActionResult({"HyperParameterTuningJobArn": arn})

    def _job(self: Any) -> Any:
        name = self._get_param("HyperParameterTuningJobName")
        job = _tuning_runner().get(name)
        if job is None:
            raise _module("moto.sagemaker.exceptions").ResourceNotFound(message=f"Amazon SageMaker can't find a tuning job with name {name}")
        return job

    def describe(self: Any) -> Any:
        return ActionResult(_job(self).describe())

    def list_trials(self: Any) -> Any:
        job = _job(self)
        summaries = [job.summary(t) for t in job.trials]
        status = self._get_param("StatusEquals")
        if status:
            summaries = [s for s in summaries if s["TrainingJobStatus"] == status]
        sort_by = self._get_param("SortBy") or "CreationTime"
        descending = (self._get_param("SortOrder") or "Descending") == "Descending"
        if sort_by == "FinalObjectiveMetricValue":
            scored = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
            scored.sort(key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], reverse=descending)
            summaries = scored
        else:
            key = "TrainingJobName" if sort_by == "Name" else sort_by
            summaries.sort(key=lambda s: s.get(key) or s["CreationTime"], reverse=descending)
        start = int(self._get_param("NextToken") or 0)
        size = int(self._get_param("MaxResults") or 10)
        page = summaries[start:start + size]
        result: dict[str, Any] = {"TrainingJobSummaries": page}
        if start + size < len(summaries):
            result["NextToken"] = str(start + size)
        return ActionResult(result)

    def stop(self: Any) -> Any:
        _job(self)
        _tuning_runner().stop(self._get_param("HyperParameterTuningJobName"))
        return EmptyResult()

    response_cls.create_hyper_parameter_tuning_job = create
    response_cls.describe_hyper_parameter_tuning_job = describe
    response_cls.list_training_jobs_for_hyper_parameter_tuning_job = list_trials
    response_cls.stop_hyper_parameter_tuning_job = stop


def _patch_update_model_package(backend_cls: type) -> None:
    _attr(backend_cls, "update_model_package")

    def update_model_package(
        self: Any,
        model_package_arn: str,
        model_approval_status: str | None,
        approval_description: str | None,
        customer_metadata_properties: dict[str, str] | None,
        customer_metadata_properties_to_remove: list[str],
        additional_inference_specifications_to_add: list[Any] | None,
    ) -> str:
        name = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
        package = self.model_packages.get(name)
        if package is None:
            raise _module("moto.sagemaker.exceptions").ValidationError(message=f"Model package {model_package_arn} not found")
        if model_approval_status is not None:
            package.set_model_approval_status(model_approval_status)
        if approval_description is not None:
            package.approval_description = approval_description
        if customer_metadata_properties:
            merged = dict(package.customer_metadata_properties or {})
            merged.update(customer_metadata_properties)
            package.customer_metadata_properties = merged
        if customer_metadata_properties_to_remove and package.customer_metadata_properties:
            package.remove_customer_metadata_property(customer_metadata_properties_to_remove)
        package.add_additional_inference_specifications(additional_inference_specifications_to_add)
        package.modifications_done()
        return package.arn

    backend_cls.update_model_package = update_model_package


def _manager() -> Any:
    if HOOKS.endpoint_manager is None:
        raise PatchPointMoved("an endpoint was created with no local runtime active")
    return HOOKS.endpoint_manager


def _add_update_endpoint(response_cls: type, backend_cls: type, ActionResult: Any, ValidationError: Any) -> None:
    original_create = _attr(backend_cls, "create_endpoint")

    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: list[dict[str, str]]) -> Any:
        if endpoint_name in self.endpoints:
            raise ValidationError(message=f"Cannot create already existing endpoint \"{self.endpoints[endpoint_name].arn}\".")
        endpoint = original_create(self, endpoint_name, endpoint_config_name, tags)
        endpoint.endpoint_status = "Creating"
        _manager().schedule(endpoint_name, endpoint_config_name, updating=False)
        return endpoint

    def backend_update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> Any:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise ValidationError(message=f"Could not find endpoint \"{endpoint_name}\".")
        if endpoint.endpoint_status not in ("InService", "Failed"):
            raise ValidationError(message=f"Cannot update in-progress endpoint \"{endpoint.arn}\" (status {endpoint.endpoint_status}).")
        if endpoint_config_name not in self.endpoint_configs:
            raise ValidationError(message=f"Could not find endpoint configuration \"{endpoint_config_name}\".")
        current = self.endpoint_configs.get(endpoint.endpoint_config_name)
        if _is_serverless(self.endpoint_configs[endpoint_config_name]) and current is not None and not _is_serverless(current):
            raise ValidationError(message=f"Endpoint \"{endpoint.arn}\" runs on instances and cannot be updated to the serverless "
                                          f"endpoint configuration \"{endpoint_config_name}\" [no-update-to-serverless].")
        endpoint.endpoint_status = "Updating"
        _manager().schedule(endpoint_name, endpoint_config_name, updating=True)
        return endpoint

    def update_endpoint(self: Any) -> Any:
        endpoint = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": endpoint.arn})

    original_delete = _attr(backend_cls, "delete_endpoint")

    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        original_delete(self, endpoint_name)
        _manager().stop(endpoint_name)

    backend_cls.create_endpoint = _atomic(create_endpoint)
    backend_cls.delete_endpoint = delete_endpoint
    backend_cls.update_endpoint = _atomic(backend_update_endpoint)
    response_cls.update_endpoint = update_endpoint


def _patch_invoke_endpoint() -> None:
    responses = _module("moto.sagemakerruntime.responses")
    response_cls = _attr(responses, "SageMakerRuntimeResponse")
    _attr(response_cls, "invoke_endpoint")
    from sagestep.local.endpoints import EndpointError

    def invoke_endpoint(self: Any) -> Any:
        endpoint_name = self.path.split("/")[2]
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
        try:
            status, response_headers, payload, variant = _manager().invoke(
                endpoint_name,
                body,
                headers.get("content-type", "application/json"),
                headers.get("accept", "application/json"),
                headers.get("x-amzn-sagemaker-target-variant"),
                headers.get("x-amzn-sagemaker-inference-id"),
            )
        except EndpointError as exc:
            error = json.dumps({"__type": "ValidationError", "message": str(exc)})
            return 400, {"status": 400, "x-amzn-ErrorType": "ValidationError", "Content-Type": "application/json"}, error
        if status >= 400:
            original = payload.decode("utf-8", "replace")
            error = json.dumps(
                {
                    "message": f"Received client error ({status}) from model with message \"{original}\".",
                    "OriginalStatusCode": status,
                    "OriginalMessage": original,
                    "LogStreamArn": f"local:{endpoint_name}/{variant}",
                }
            )
            return 424, {"status": 424, "x-amzn-ErrorType": "ModelError", "Content-Type": "application/json"}, error
        reply = {
            "status": 200,
            "Content-Type": response_headers.get("Content-Type", "application/json"),
            "x-Amzn-Invoked-Production-Variant": variant,
        }
        return 200, reply, payload

    response_cls.invoke_endpoint = invoke_endpoint
    original_setup = _attr(response_cls, "setup_class")

    def setup_class(self: Any, request: Any, full_url: str, headers: Any, use_raw_body: bool = False) -> None:
        # a request body is bytes for the model to judge (moto would decode it as UTF-8 and answer 500 on binary)
        original_setup(self, request, full_url, headers, use_raw_body=True)

    response_cls.setup_class = setup_class


def _keep_shadow_variants(response_cls: type, ActionResult: Any) -> None:
    """moto drops ShadowProductionVariants from CreateEndpointConfig; keep them on the config and describe them."""
    original_create = _attr(response_cls, "create_endpoint_config")
    original_describe = _attr(response_cls, "describe_endpoint_config")

    def create_endpoint_config(self: Any) -> Any:
        result = original_create(self)
        config = self.sagemaker_backend.endpoint_configs[self._get_param("EndpointConfigName")]
        config.shadow_production_variants = self._get_param("ShadowProductionVariants") or []
        return result

    def describe_endpoint_config(self: Any) -> Any:
        result = original_describe(self)
        config = self.sagemaker_backend.endpoint_configs.get(self._get_param("EndpointConfigName"))
        shadows = getattr(config, "shadow_production_variants", None)
        if shadows:
            return ActionResult({**result.result, "ShadowProductionVariants": shadows})
        return result

    response_cls.create_endpoint_config = create_endpoint_config
    response_cls.describe_endpoint_config = describe_endpoint_config


def _is_serverless(config: Any) -> bool:
    return any("ServerlessConfig" in v for v in getattr(config, "production_variants", None) or [])


def _enforce_account_rules(response_cls: type, backend_cls: type, ValidationError: Any) -> None:
    """The cross-field rules of `aws.service_rules` that depend on what exists in the account."""
    original_create_model = _attr(response_cls, "create_model")
    original_create_config = _attr(response_cls, "create_endpoint_config")
    original_weights = _attr(backend_cls, "update_endpoint_weights_and_capacities")

    def create_model(self: Any) -> Any:
        name = self._get_param("ModelName")
        backend = self.sagemaker_backend
        if name in backend._models:
            raise ValidationError(message=f"Cannot create already existing model \"{backend._models[name].arn}\". [existing-name]")
        result = original_create_model(self)
        backend._models[name].enable_network_isolation = bool(self._get_param("EnableNetworkIsolation"))
        return result

    def create_endpoint_config(self: Any) -> Any:
        name = self._get_param("EndpointConfigName")
        backend = self.sagemaker_backend
        if name in backend.endpoint_configs:
            raise ValidationError(message=f"Cannot create already existing endpoint configuration \"{backend.endpoint_configs[name].arn}\". [existing-name]")
        for variant in self._get_param("ProductionVariants") or []:
            model = backend._models.get(variant.get("ModelName"))
            if "ServerlessConfig" in variant and model is not None and (getattr(model, "enable_network_isolation", False) or model.vpc_config):
                raise ValidationError(message=f"Variant {variant.get('VariantName')}: model {model.model_name} uses network isolation or a VPC, "
                                              "which Serverless Inference does not support [serverless-without-network-isolation].")
        return original_create_config(self)

    def update_endpoint_weights_and_capacities(self: Any, endpoint_name: str, desired_weights_and_capacities: Any) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is not None and endpoint.endpoint_status != "InService":
            raise ValidationError(message=f"Cannot update in-progress endpoint \"{endpoint.arn}\" (status {endpoint.endpoint_status}). [update-endpoint-in-progress]")
        return original_weights(self, endpoint_name, desired_weights_and_capacities)

    original_describe_model = _attr(response_cls, "describe_model")

    def describe_model(self: Any) -> Any:
        result = original_describe_model(self)
        model = self.sagemaker_backend._models.get(self._get_param("ModelName"))
        if getattr(model, "enable_network_isolation", False):
            return type(result)({**result.result, "EnableNetworkIsolation": True})
        return result

    response_cls.create_model = _atomic(create_model)
    response_cls.describe_model = describe_model
    response_cls.create_endpoint_config = _atomic(create_endpoint_config)
    backend_cls.update_endpoint_weights_and_capacities = _atomic(update_endpoint_weights_and_capacities)
