"""Plug-ins into moto's Step Functions engine (moto 5.2.5, derived from LocalStack's ASL interpreter).

Every patch point is a private moto internal, so each is looked up by name and a moved one fails loudly
(`PatchPointMoved`) instead of silently running without the plug-in. See LOCAL_RUNTIME.md and README.

What is plugged in:
- the `sagemaker` optimized integrations (request/response and `.sync` for jobs), running jobs for real;
- Parameters of every SageMaker and aws-sdk Task validated against botocore's model (incl. enums);
- Lambda tasks (`lambda:invoke` and bare function ARNs) calling `functions/<name>/app.py` in-process;
- request/response normalisation for `states:startExecution` (and other optimized integrations);
- executions started without a name get a UUID, as in AWS, not the name "None";
- JSONata through jsonata-python;
- a time scale for Wait states, Retry back-off and `.sync` polling;
- stubbed Task results (moto's mocked-response mode, which it leaves without a configuration): a Task the stub
  answers still evaluates its Parameters (recorded in TaskScheduled) but returns the stub instead of calling out.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import importlib
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sagestep.aws import error_names, service_rules
from sagestep.aws import service_model as awsmodel
from sagestep.stack.template import FunctionSpec

MOTO_VERSION = "5.2.5"

_P = "moto.stepfunctions.parser"
_TASK = f"{_P}.asl.component.state.exec.state_task"


class PatchPointMoved(RuntimeError):
    """moto changed a private internal the local runtime plugs into: re-check LOCAL_RUNTIME.md for the new version."""


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise PatchPointMoved(f"moto module {name} is gone (pinned moto=={MOTO_VERSION})") from exc


def _attr(module: Any, name: str) -> Any:
    if not hasattr(module, name):
        raise PatchPointMoved(f"{module.__name__}.{name} is gone (pinned moto=={MOTO_VERSION})")
    return getattr(module, name)


# ------------------------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class TaskStub:
    """What a stubbed Task returns instead of calling its service: `output`, or the `error` it fails with."""

    output: Any = None
    error: str | None = None
    cause: str = ""


class RuntimeHooks:
    """Process-wide state the patches read; the LocalRuntime fills it."""

    def __init__(self) -> None:
        self.time_scale: float = 1.0
        self.functions: dict[str, FunctionSpec] = {}
        self.faults: dict[tuple[str, str], list[str]] = {}
        self.job_runner: Any = None
        self.endpoint_manager: Any = None
        self.before_lambda: Callable[[], Any] | None = None
        self.before_lambda_lock = threading.Lock()  # Map iterations and Parallel branches invoke concurrently
        self.endpoint_url: str | None = None  # the local cloud the engine's own service calls go to
        # True while real work a state machine may be waiting for is in flight (model servers starting): virtual
        # time does not pass a Wait state meanwhile, so no deadline expires because the machine is busy.
        self.busy: Callable[[], bool] | None = None
        # (state name, state input) -> the Task's stubbed result, or None to call the service
        self.task_stubs: Callable[[str, Any], TaskStub | None] | None = None

    def task_stub(self, env: Any) -> TaskStub | None:
        if self.task_stubs is None:
            return None
        if env.next_state_name is None:  # the branch was stopped (a sibling failed): its result is discarded
            return TaskStub(output={})
        return self.task_stubs(env.next_state_name, env.states.get_input())

    def function_for(self, name_or_arn: str) -> FunctionSpec:
        key = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        for spec in self.functions.values():
            if key in (spec.name, spec.logical_id) or name_or_arn == spec.arn:
                return spec
        known = ", ".join(sorted(s.name for s in self.functions.values())) or "none"
        raise LookupError(f"no function {name_or_arn!r} in template.yaml (functions: {known})")

    def take_fault(self, service: str, action: str) -> str | None:
        queue = self.faults.get((service, action.lower()))
        return queue.pop(0) if queue else None


HOOKS = RuntimeHooks()


def scaled(seconds: float) -> float:
    return max(0.0, seconds * HOOKS.time_scale)


HOLD_WHILE_BUSY_SECONDS = 120.0  # longer than a model server may take to start (endpoints.START_TIMEOUT_SECONDS)


def hold_while_busy(stop: threading.Event) -> None:
    """The virtual clock: a Wait does not end while real work is in flight (bounded; ends if the execution stops)."""
    busy = HOOKS.busy
    if busy is None:
        return
    deadline = time.monotonic() + HOLD_WHILE_BUSY_SECONDS
    while busy() and time.monotonic() < deadline and not stop.is_set():
        stop.wait(0.05)


_SYNC_JOB_KINDS = {"describe_processing_job": "processing", "describe_training_job": "training",
                   "describe_transform_job": "transform"}


def wait_for_job(describe: str, name: str) -> None:
    """The pause between two polls of a `.sync` job. A job of this cloud's runner wakes the poll as it ends, so the
    poll can be rare (a poll is a Describe call: polling every few milliseconds at small time scales cost a core)."""
    runner = HOOKS.job_runner
    job = runner.get(_SYNC_JOB_KINDS[describe], name) if runner is not None and describe in _SYNC_JOB_KINDS else None
    if job is None:
        time.sleep(max(0.02, scaled(0.5)))
    else:
        job.done.wait(max(1.0, scaled(30)))


class _ScaledTime:
    """Stands in for the `time` module inside moto modules whose sleeps should follow the time scale."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(scaled(seconds))


# ------------------------------------------------------------------------------------------- helpers


def epoch_millis(value: Any) -> Any:
    """Step Functions renders service timestamps as epoch milliseconds."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: epoch_millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [epoch_millis(v) for v in value]
    return value


def _failure(env: Any, error: str, cause: str, resource: str, resource_type: str) -> Exception:
    api = _module(f"{_P}.api")
    fe = _module(f"{_P}.asl.component.common.error_name.failure_event")
    custom = _module(f"{_P}.asl.component.common.error_name.custom_error_name")
    detail = _module(f"{_P}.asl.eval.event.event_detail")
    return fe.FailureEventException(
        fe.FailureEvent(
            env=env,
            error_name=_error_name(error, custom),
            event_type=api.HistoryEventType.TaskFailed,
            event_details=detail.EventDetails(
                taskFailedEventDetails=api.TaskFailedEventDetails(
                    error=error, cause=cause, resource=resource, resourceType=resource_type
                )
            ),
        )
    )


def _error_name(error: str, custom: Any) -> Any:
    if error.startswith("States."):
        states = _module(f"{_P}.asl.component.common.error_name.states_error_name")
        return states.StatesErrorName.from_name(error)
    return custom.CustomErrorName(error)


def _client_failure(env: Any, ex: Any, name: str, service: str, task: Any, sdk_api: str | None = None) -> Exception:
    """A service's ClientError as Step Functions reports it: the integration's error name, AWS's Cause format."""
    error, metadata = ex.response.get("Error", {}), ex.response.get("ResponseMetadata", {})
    status, request_id = metadata.get("HTTPStatusCode", 400), metadata.get("RequestId", "local")
    if sdk_api is not None:
        cause = error_names.sdk_cause(sdk_api, error.get("Message", ""), status, request_id)
    else:
        cause = error_names.optimized_cause(service, error.get("Message", ""), status, error.get("Code", ""), request_id)
    return _failure(env, name, cause, task._get_sfn_resource(), task._get_sfn_resource_type())


def _validation_cause(service: str, action: str, errors: list[str]) -> str:
    listed = "; ".join(errors)
    return (
        f"ValidationException: {len(errors)} validation error(s) detected in the {service}:{action} Parameters: "
        f"{listed}"
    )


# ------------------------------------------------------------------------------------------- SageMaker


_SAGEMAKER_ACTIONS = {
    "createprocessingjob",
    "createtrainingjob",
    "createtransformjob",
    "createmodel",
    "createendpointconfig",
    "createendpoint",
    "updateendpoint",
    "createhyperparametertuningjob",
    "createlabelingjob",
}
_SAGEMAKER_SYNC_JOBS = {
    "createprocessingjob": ("describe_processing_job", "ProcessingJobName", "ProcessingJobStatus"),
    "createtrainingjob": ("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
    "createtransformjob": ("describe_transform_job", "TransformJobName", "TransformJobStatus"),
    "createhyperparametertuningjob": (
        "describe_hyper_parameter_tuning_job", "HyperParameterTuningJobName", "HyperParameterTuningJobStatus"),
}


def sagemaker_error_name(code: str) -> str:
    """The optimized SageMaker integration's name for a wire error code (see `aws.error_names`)."""
    return error_names.optimized_error_name("sagemaker", code)


def _build_sagemaker_service_class() -> type:
    callback = _module(f"{_TASK}.service.state_task_service_callback")
    resource_mod = _module(f"{_TASK}.service.resource")
    boto_client = _module(f"{_P}.asl.utils.boto_client")
    ResourceCondition = _attr(resource_mod, "ResourceCondition")
    Base = _attr(callback, "StateTaskServiceCallback")
    from botocore.exceptions import ClientError

    class StateTaskServiceSageMaker(Base):  # type: ignore[misc, valid-type]
        """`arn:aws:states:::sagemaker:<action>[.sync]`."""

        def __init__(self) -> None:
            # WaitForTaskToken is listed only so moto's callback plumbing exists (its Sync path dereferences the
            # callback endpoint); SageMaker itself does not offer .waitForTaskToken, so it is rejected below.
            super().__init__(supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})

        def _get_supported_parameters(self) -> set[str] | None:
            action = self.resource.api_action.lower()
            if action not in _SAGEMAKER_ACTIONS:
                return None
            shape = awsmodel.operation_model("sagemaker", self.resource.api_action).input_shape
            return set(shape.members)

        def _validate_service_integration_is_supported(self) -> None:
            super()._validate_service_integration_is_supported()
            if self.resource.condition == ResourceCondition.WaitForTaskToken:
                raise ValueError(f"{self.resource.resource_arn}: SageMaker does not support .waitForTaskToken")
            if self.resource.condition == ResourceCondition.Sync and self.resource.api_action.lower() not in _SAGEMAKER_SYNC_JOBS:
                raise ValueError(
                    f"{self.resource.resource_arn}: .sync is supported for createTrainingJob, createProcessingJob, "
                    f"createTransformJob and createHyperParameterTuningJob only; poll describe* with a Wait loop for endpoints"
                )

        def _get_sfn_resource_type(self) -> str:
            return "sagemaker"

        def _from_error(self, env: Any, ex: Exception) -> Any:
            if isinstance(ex, ClientError):
                code = ex.response["Error"]["Code"]
                return _client_failure(env, ex, sagemaker_error_name(code), "sagemaker", self).failure_event
            return super()._from_error(env=env, ex=ex)

        def _eval_service_task(self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any) -> None:
            action = self.resource.api_action
            errors = awsmodel.validate("sagemaker", action, normalised_parameters)
            errors += service_rules.check("sagemaker", action, normalised_parameters)
            if errors:
                raise _failure(
                    env,
                    sagemaker_error_name("ValidationException"),
                    error_names.optimized_cause("sagemaker", _validation_cause("sagemaker", action, errors), 400, "ValidationException"),
                    self._get_sfn_resource(),
                    self._get_sfn_resource_type(),
                )
            fault = HOOKS.take_fault("sagemaker", action)
            if fault:
                raise ClientError(
                    {"Error": {"Code": fault, "Message": f"Rate exceeded (injected {fault})"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                    action,
                )
            client = boto_client.boto_client_for(
                service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials
            )
            response = getattr(client, self._get_boto_service_action())(**normalised_parameters)
            response.pop("ResponseMetadata", None)
            env.stack.append(epoch_millis(response))

        def _build_sync_resolver(self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any) -> Callable[[], Any]:
            describe, name_key, status_key = _SAGEMAKER_SYNC_JOBS[self.resource.api_action.lower()]
            client = boto_client.boto_client_for(
                service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials
            )
            env.stack.pop()  # the Create* response; .sync returns the final Describe* output instead
            job_name = normalised_parameters[name_key]

            def resolve() -> dict | None:
                output = getattr(client, describe)(**{name_key: job_name})
                output.pop("ResponseMetadata", None)
                status = output[status_key]
                if status == "Completed":
                    return epoch_millis(output)
                if status in ("Failed", "Stopped"):
                    raise _failure(
                        env,
                        "States.TaskFailed",
                        json.dumps(epoch_millis(output), separators=(",", ":")),
                        self._get_sfn_resource(),
                        self._get_sfn_resource_type(),
                    )
                wait_for_job(describe, job_name)
                return None

            return resolve

    return StateTaskServiceSageMaker


# ------------------------------------------------------------------------------------------- Lambda


def invoke_function(spec: FunctionSpec, payload: Any) -> tuple[Any, str | None]:
    """Invoke the function in one of its warm worker processes (`local/lambdas.py`); return (payload, FunctionError)."""
    from sagestep.local import lambdas

    path = spec.code_dir / f"{spec.handler.rpartition('.')[0].replace('.', '/')}.py"
    if not path.is_file():
        raise LookupError(f"{spec.logical_id}: handler file {path} does not exist (Handler: {spec.handler})")
    log_dir = HOOKS.job_runner.jobs_dir.parent / "logs" / "lambda" if HOOKS.job_runner is not None else None
    return lambdas.invoke(spec, json.loads(json.dumps(payload)), HOOKS.endpoint_url, log_dir)


def _lambda_client_error(code: str, message: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())}}, "Invoke")


def _patched_invoke_lambda_function(parameters: dict, region: str, state_credentials: Any) -> dict:
    from sagestep.local.lambdas import LambdaServiceError

    try:
        spec = HOOKS.function_for(parameters["FunctionName"])
    except LookupError as exc:  # Lambda answers 404 for a function that does not exist
        raise _lambda_client_error("ResourceNotFoundException", f"Function not found: {parameters['FunctionName']} ({exc})", 404) from None
    if HOOKS.before_lambda is not None:
        with HOOKS.before_lambda_lock:
            HOOKS.before_lambda()  # a function sees what model servers and traffic wrote, as it would in AWS
    payload = parameters.get("Payload")
    if isinstance(payload, (bytes, bytearray)):
        payload = payload.decode("utf-8")
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError:
            pass
    try:
        result, function_error = invoke_function(spec, {} if payload is None else payload)
    except LambdaServiceError as exc:
        raise _lambda_client_error(exc.code, exc.message, exc.status) from None
    response: dict[str, Any] = {"StatusCode": 200, "Payload": result, "ExecutedVersion": "$LATEST"}
    if function_error:
        response["FunctionError"] = function_error
    return response


# ------------------------------------------------------------------------------------------- install

_INSTALLED = False
_INSTALL_LOCK = threading.Lock()


def install() -> None:
    """Install every plug-in once per process. Raises PatchPointMoved if moto's internals moved."""
    global _INSTALLED
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        import moto

        if moto.__version__ != MOTO_VERSION:
            raise PatchPointMoved(f"sagestep.local is written against moto=={MOTO_VERSION}, found {moto.__version__}")
        _install_sagemaker_integration()
        _install_parameter_validation()
        _install_error_names()
        _install_heartbeat_timeout()
        _install_uncatchable_errors()
        _install_inline_map_concurrency()
        _install_result_writer_input()
        _install_item_batcher()
        _install_parser_scopes()
        _install_lambda()
        _install_normalisation()
        _install_execution_names()
        _install_jsonata()
        _install_time_scale()
        _install_branch_error_names()
        _install_service_endpoint()
        _install_task_stubs()
        _INSTALLED = True


def _install_sagemaker_integration() -> None:
    factory = _module(f"{_TASK}.service.state_task_service_factory")
    task_factory = _module(f"{_TASK}.state_task_factory")
    original = _attr(factory, "state_task_service_for")
    unsupported = _attr(factory, "_UNSUPPORTED_SERVICE_NAMES")
    service_class = _build_sagemaker_service_class()

    def state_task_service_for(service_name: str) -> Any:
        if service_name == "sagemaker":
            return service_class()
        return original(service_name)

    unsupported.discard("sagemaker")
    factory.state_task_service_for = state_task_service_for
    _attr(task_factory, "state_task_service_for")
    task_factory.state_task_service_for = state_task_service_for


def _install_parameter_validation() -> None:
    aws_sdk = _module(f"{_TASK}.service.state_task_service_aws_sdk")
    cls = _attr(aws_sdk, "StateTaskServiceAwsSdk")
    original = _attr(cls, "_eval_service_task")

    def _eval_service_task(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any) -> None:
        service = self._get_boto_service_name()
        action = self.resource.api_action
        camel_api = service in _CAMEL_CASE_APIS
        if camel_api:
            _to_api_casing(awsmodel.operation_model(service, action).input_shape, normalised_parameters)
        try:
            errors = awsmodel.validate(service, action, normalised_parameters)
            errors += service_rules.check(service, action, normalised_parameters)
        except (awsmodel.UnknownOperation, Exception) as exc:  # unknown service or operation
            errors = [str(exc)]
        if errors:
            api = self.resource.api_name
            raise _failure(
                env,
                error_names.sdk_error_name(api, service, "ValidationException"),
                error_names.sdk_cause(api, _validation_cause(service, action, errors), 400),
                self._get_sfn_resource(),
                self._get_sfn_resource_type(),
            )
        fault = HOOKS.take_fault(service, action)
        if fault:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": fault, "Message": f"injected {fault}"}, "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "local"}}, action)
        original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        result = env.stack.pop()
        if camel_api:
            self._from_boto_response(result, awsmodel.operation_model(service, action).output_shape)
        env.stack.append(epoch_millis(_read_streams(result)))

    cls._eval_service_task = _eval_service_task


def _read_streams(value: Any) -> Any:
    """A streaming member (S3 GetObject's Body) as its text, as Step Functions gives it to the state."""
    from botocore.response import StreamingBody

    if isinstance(value, StreamingBody):
        return value.read().decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: _read_streams(v) for k, v in value.items()}
    return value


# Step Functions takes and gives PascalCase (StateMachineArn, Executions) for the camelCase members of these APIs in
# aws-sdk tasks; moto passes the names through to boto3 as written.
_CAMEL_CASE_APIS = {"stepfunctions"}


def _to_api_casing(shape: Any, params: Any) -> None:
    """Rename `params`' keys in place to the API's member names, matched without regard to case."""
    if shape is None or not isinstance(params, dict) or shape.type_name != "structure":
        return
    by_lower = {name.lower(): name for name in shape.members}
    for key in list(params):
        member = by_lower.get(key.lower())
        if member is None:
            continue
        value = params.pop(key)
        member_shape = shape.members[member]
        if member_shape.type_name == "list" and isinstance(value, list):
            for item in value:
                _to_api_casing(member_shape.member, item)
        else:
            _to_api_casing(member_shape, value)
        params[member] = value


def _install_error_names() -> None:
    """Service errors named as Step Functions names them (`aws.error_names`): moto keeps the ARN's lower-case service
    for aws-sdk tasks (`sagemaker.sagemakerException`) and the wire code for SNS (`SNS.ParameterValueInvalid...`)."""
    from botocore.exceptions import ClientError

    aws_sdk = _attr(_module(f"{_TASK}.service.state_task_service_aws_sdk"), "StateTaskServiceAwsSdk")
    sns = _attr(_module(f"{_TASK}.service.state_task_service_sns"), "StateTaskServiceSns")
    sfn = _attr(_module(f"{_TASK}.service.state_task_service_sfn"), "StateTaskServiceSfn")

    def wrap(cls: Any, name_of: Callable[[Any, str], str], service: str | None) -> None:
        original = _attr(cls, "_from_error")

        def _from_error(self: Any, env: Any, ex: Exception) -> Any:
            if isinstance(ex, ClientError):
                code = ex.response.get("Error", {}).get("Code", "")
                sdk_api = self.resource.api_name if service is None else None
                return _client_failure(env, ex, name_of(self, code), service or "", self, sdk_api).failure_event
            return original(self, env, ex)

        cls._from_error = _from_error

    wrap(aws_sdk, lambda self, code: error_names.sdk_error_name(self.resource.api_name, self._get_boto_service_name(), code), None)
    wrap(sns, lambda self, code: error_names.optimized_error_name("sns", code), "sns")
    wrap(sfn, lambda self, code: error_names.optimized_error_name("states", code), "states")


_NOT_CAUGHT_BY_WILDCARDS = {"States.Runtime", "States.DataLimitExceeded"}


def _install_uncatchable_errors() -> None:
    """States.ALL (and States.TaskFailed) never match States.Runtime or States.DataLimitExceeded: both end the
    execution in AWS ("Error handling": not retriable, not caught by States.ALL); moto catches them."""
    decl = _attr(_module(f"{_P}.asl.component.common.error_name.error_equals_decl"), "ErrorEqualsDecl")
    original = _attr(decl, "_eval_body")

    def _eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        name = getattr(error_name, "error_name", None)
        if name in _NOT_CAUGHT_BY_WILDCARDS and not any(getattr(e, "error_name", None) == name for e in self.error_names):
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    decl._eval_body = _eval_body


INLINE_MAP_CONCURRENCY = 40  # Step Functions guide, "Inline Map state": up to 40 concurrent iterations


def _install_inline_map_concurrency() -> None:
    """An Inline Map runs at most 40 iterations at once, whatever MaxConcurrency says (0 = no explicit limit)."""
    inline = _attr(_module(f"{_P}.asl.component.state.exec.state_map.iteration.inline_iteration_component"),
                   "InlineIterationComponent")
    original = _attr(inline, "_eval_body")

    def _eval_body(self: Any, env: Any) -> None:
        eval_input = env.stack[-1]
        requested = eval_input.max_concurrency
        eval_input.max_concurrency = INLINE_MAP_CONCURRENCY if not requested else min(requested, INLINE_MAP_CONCURRENCY)
        original(self, env)

    inline._eval_body = _eval_body


def _install_heartbeat_timeout() -> None:
    """A task whose heartbeat stops fails with States.HeartbeatTimeout (moto reports States.Timeout)."""
    state_task = _attr(_module(f"{_TASK}.state_task"), "StateTask")
    heartbeat_error = _attr(_module(f"{_P}.asl.eval.callback.callback"), "HeartbeatTimeoutError")
    original = _attr(state_task, "_from_error")
    api = _module(f"{_P}.api")
    fe = _module(f"{_P}.asl.component.common.error_name.failure_event")
    detail = _module(f"{_P}.asl.eval.event.event_detail")
    states = _module(f"{_P}.asl.component.common.error_name.states_error_name")

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, heartbeat_error):
            resource = self._get_sfn_resource() if hasattr(self, "_get_sfn_resource") else None
            resource_type = self._get_sfn_resource_type() if hasattr(self, "_get_sfn_resource_type") else None
            return fe.FailureEvent(
                env=env, error_name=states.StatesErrorName.from_name("States.HeartbeatTimeout"),
                event_type=api.HistoryEventType.TaskTimedOut,
                event_details=detail.EventDetails(taskTimedOutEventDetails=api.TaskTimedOutEventDetails(
                    resourceType=resource_type, resource=resource, error="States.HeartbeatTimeout")),
            )
        return original(self, env, ex)

    state_task._from_error = _from_error


def _install_result_writer_input() -> None:
    """A Distributed Map's ResultWriter Parameters are evaluated against the Map state's input (moto evaluates them
    against the items), and the results are written as AWS does: manifest.json plus SUCCEEDED_0.json."""
    state_map = _attr(_module(f"{_P}.asl.component.state.exec.state_map.state_map"), "StateMap")
    writer_cls = _attr(_module(f"{_P}.asl.component.state.exec.state_map.result_writer.result_writer_decl"), "ResultWriter")
    original_execution = _attr(state_map, "_eval_execution")
    _attr(writer_cls, "_eval_body")

    def _eval_execution(self: Any, env: Any) -> None:
        if self.result_writer is not None:
            env.sagestep_map_input = copy.deepcopy(env.states.get_input())
        batcher = getattr(self, "sagestep_item_batcher", None)
        if batcher is not None:
            env.sagestep_item_batcher = _evaluate_batcher(batcher, env.states.get_input(), self.name)
        original_execution(self, env)

    def _eval_body(self: Any, env: Any) -> None:
        results = env.stack.pop()
        current = env.states.get_input()
        env.states.reset(input_value=getattr(env, "sagestep_map_input", current))
        try:
            self.parargs.eval(env=env)
        finally:
            env.states.reset(input_value=current)
        parameters = env.stack.pop()
        self.resource.eval(env=env)
        runtime_part = env.stack.pop()
        client = _module(f"{_P}.asl.utils.boto_client").boto_client_for(region=runtime_part.region, service="s3")
        record = env.map_run_record_pool_manager.get_all()[-1]
        prefix = parameters.get("Prefix", "")
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        base = f"{prefix}{record.map_run_arn.split(':')[-1]}/"
        rows = [{"Input": None, "Output": json.dumps(output), "Status": "SUCCEEDED"} for output in results or []]
        client.put_object(Bucket=parameters["Bucket"], Key=base + "SUCCEEDED_0.json", Body=json.dumps(rows).encode())
        manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": record.map_run_arn,
                    "ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": [{"Key": base + "SUCCEEDED_0.json",
                                                                                 "Size": len(json.dumps(rows))}]}}
        client.put_object(Bucket=parameters["Bucket"], Key=base + "manifest.json", Body=json.dumps(manifest, indent=2).encode())
        env.stack.append({"MapRunArn": record.map_run_arn,
                          "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": base + "manifest.json"}})

    state_map._eval_execution = _eval_execution
    writer_cls._eval_body = _eval_body


_BATCH_BYTES_LIMIT = 256 * 1024  # ItemBatcher.MaxInputBytesPerBatch: at most 256 KiB


def _evaluate_batcher(batcher: dict[str, Any], state_input: Any, map_name: str) -> dict[str, Any]:
    """ItemBatcher's fields with their `...Path` variants read from the Map's input."""
    from jsonpath_ng import parse as jsonpath  # moto's own dependency

    def value(field: str) -> Any:
        if f"{field}Path" in batcher:
            found = [m.value for m in jsonpath(batcher[f"{field}Path"]).find(state_input)]
            return found[0] if found else None
        return batcher.get(field)

    items, size = value("MaxItemsPerBatch"), value("MaxInputBytesPerBatch")
    if items is None and size is None:
        raise ValueError(f"Map {map_name!r}: ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch")
    batch_input = batcher.get("BatchInput")
    if isinstance(batch_input, dict) and any(k.endswith(".$") for k in batch_input):
        batch_input = {k.removesuffix(".$"): ([m.value for m in jsonpath(v).find(state_input)] or [None])[0] if k.endswith(".$") else v
                       for k, v in batch_input.items()}
    return {"max_items": items, "max_bytes": min(size or _BATCH_BYTES_LIMIT, _BATCH_BYTES_LIMIT), "batch_input": batch_input}


def batch_items(items: list[Any], batcher: dict[str, Any]) -> list[dict[str, Any]]:
    """Group items as ItemBatcher does: each child gets {"BatchInput": ..., "Items": [...]}, a batch holding at most
    MaxItemsPerBatch items and MaxInputBytesPerBatch bytes of JSON."""
    batches: list[dict[str, Any]] = []
    current: list[Any] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item, separators=(",", ":")).encode())
        full = (batcher["max_items"] is not None and len(current) >= batcher["max_items"]) or \
            (current and size + item_size > batcher["max_bytes"])
        if full:
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item_size
    if current:
        batches.append(current)
    out = []
    for batch in batches:
        child: dict[str, Any] = {"Items": batch}
        if batcher.get("batch_input") is not None:
            child["BatchInput"] = batcher["batch_input"]
        out.append(child)
    return out


def _strip_item_batchers(states: dict[str, Any], found: dict[str, dict[str, Any]]) -> None:
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        if state.get("Type") == "Map" and "ItemBatcher" in state:
            processor = state.get("ItemProcessor") or {}
            if (processor.get("ProcessorConfig") or {}).get("Mode") != "DISTRIBUTED":
                raise ValueError(f"Map {name!r}: ItemBatcher is only valid in a Distributed Map (ProcessorConfig.Mode DISTRIBUTED)")
            if "ItemSelector" in state:
                raise ValueError(f"Map {name!r}: ItemSelector together with ItemBatcher is not emulated by the local runtime")
            found[name] = state.pop("ItemBatcher")
        for branch in state.get("Branches") or []:
            _strip_item_batchers(branch.get("States") or {}, found)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if isinstance(processor, dict):
            _strip_item_batchers(processor.get("States") or {}, found)


def _install_parser_scopes() -> None:
    """moto's ASL Preprocessor keeps its query-language scope stack in a class attribute shared by every parse: two
    executions starting at once (an EventBridge rule and a caller) corrupt each other's stack and one crashes with
    "Unsupported declaration in QueryLanguage=JSONPath block". Each parse gets its own stack."""
    preprocessor = _attr(_module(f"{_P}.asl.parse.preprocessor"), "Preprocessor")
    _attr(preprocessor, "_query_language_per_scope")
    original_init = preprocessor.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._query_language_per_scope = []

    preprocessor.__init__ = __init__


# moto parses a state machine's definition (a pure-Python ANTLR parser: about a tenth of the test workers' samples
# in a profile of the suite) when it is created and again at every execution's start. A parsed program keeps no
# execution's state (that lives in the execution's Environment; Map iterations and Parallel branches already run one
# program concurrently), so the last 64 definitions parsed are kept, keyed by their text (`parse` below).


def _install_item_batcher() -> None:
    """moto's ASL grammar has no ItemBatcher (a definition using it fails to parse): the field is taken out before
    parsing and applied to the Distributed Map's items before the child executions start. Parsed programs are kept."""
    parser_cls = _attr(_module(f"{_P}.asl.parse.asl_parser"), "AmazonStateLanguageParser")
    original_parse = _attr(parser_cls, "parse")
    state_map_cls = _attr(_module(f"{_P}.asl.component.state.exec.state_map.state_map"), "StateMap")
    distributed = _attr(_module(f"{_P}.asl.component.state.exec.state_map.iteration.distributed_iteration_component"),
                        "DistributedIterationComponent")
    original_map_run = _attr(distributed, "_map_run")
    eval_component_cls = _attr(_module(f"{_P}.asl.component.eval_component"), "EvalComponent")

    def parse_uncached(definition: str) -> Any:
        try:
            document = json.loads(definition)
        except ValueError:
            return original_parse(definition)
        found: dict[str, dict[str, Any]] = {}
        if isinstance(document, dict):
            _strip_item_batchers(document.get("States") or {}, found)
        if not found:
            return original_parse(definition)
        program, tree = original_parse(json.dumps(document))
        for component in _components(program, state_map_cls):
            if component.name in found:
                component.sagestep_item_batcher = found[component.name]
        return program, tree

    @functools.lru_cache(maxsize=64)
    def parse(definition: str) -> Any:
        parsed = parse_uncached(definition)  # a definition that does not parse raises: nothing is kept
        for component in _components(parsed[0], eval_component_cls):
            component.heap_key  # noqa: B018 - assigned once here, not raced for by two executions' first retries
        return parsed

    def _map_run(self: Any, env: Any, eval_input: Any) -> None:
        batcher = getattr(env, "sagestep_item_batcher", None)
        if batcher is not None:
            env.sagestep_item_batcher = None
            env.stack.append(batch_items(env.stack.pop(), batcher))
        original_map_run(self, env, eval_input)

    parser_cls.parse = staticmethod(parse)
    distributed._map_run = _map_run


def _components(root: Any, wanted: type, seen: set[int] | None = None, depth: int = 0) -> list[Any]:
    """Every component of type `wanted` in a parsed program (moto's components are plain objects)."""
    seen = set() if seen is None else seen
    if id(root) in seen or depth > 40 or isinstance(root, (str, bytes, int, float, bool, type(None))):
        return []
    seen.add(id(root))
    found = [root] if isinstance(root, wanted) else []
    children = root.values() if isinstance(root, dict) else root if isinstance(root, (list, tuple, set)) else \
        vars(root).values() if hasattr(root, "__dict__") else []
    for child in children:
        found += _components(child, wanted, seen, depth + 1)
    return found


def _install_lambda() -> None:
    utils = _module(f"{_TASK}.lambda_eval_utils")
    _attr(utils, "_invoke_lambda_function")
    utils._invoke_lambda_function = _patched_invoke_lambda_function
    # An error payload without errorType (a timeout, running out of memory) is Lambda.Unknown, as the Step Functions
    # guide documents; moto names it "Exception".
    service = _attr(_module(f"{_TASK}.service.state_task_service_lambda"), "StateTaskServiceLambda")
    function_error = _attr(utils, "LambdaFunctionErrorException")
    original = _attr(service, "_from_error")

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, function_error):
            try:
                typed = "errorType" in json.loads(ex.payload)
            except (ValueError, TypeError):
                typed = False
            if not typed:
                return _failure(env, "Lambda.Unknown", ex.payload, self._get_sfn_resource(), self._get_sfn_resource_type()).failure_event
        return original(self, env, ex)

    service._from_error = _from_error


def _install_normalisation() -> None:
    service_mod = _module(f"{_TASK}.service.state_task_service")
    sfn_mod = _module(f"{_TASK}.service.state_task_service_sfn")
    base = _attr(service_mod, "StateTaskService")
    sfn = _attr(sfn_mod, "StateTaskServiceSfn")
    _attr(base, "_to_boto_request")
    _attr(base, "_from_boto_response")

    def _shapes(self: Any, boto_service_name: str | None, service_action_name: str | None) -> Any:
        service = self._get_boto_service_name(boto_service_name=boto_service_name)
        action = service_action_name or self.resource.api_action
        camel = "".join(part[:1].upper() + part[1:] for part in action.split("_"))
        return awsmodel.operation_model(service, camel)

    def _normalise_parameters(self: Any, parameters: dict, boto_service_name: str | None = None, service_action_name: str | None = None) -> None:
        shape = _shapes(self, boto_service_name, service_action_name).input_shape
        if shape is not None:
            self._to_boto_request(parameters, shape)

    def _normalise_response(self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None) -> None:
        shape = _shapes(self, boto_service_name, service_action_name).output_shape
        if shape is not None and isinstance(response, dict):
            self._from_boto_response(response, shape)
            response.update(epoch_millis(response))

    # Only the Step Functions integration needs it here: its requests are PascalCase in ASL but camelCase on the
    # wire. SageMaker and aws-sdk parameters are already in API casing.
    original_sfn_normalise = _attr(sfn, "_normalise_parameters")

    def sfn_normalise_parameters(self: Any, parameters: dict, boto_service_name: str | None = None, service_action_name: str | None = None) -> None:
        original_sfn_normalise(self, parameters, boto_service_name, service_action_name)
        _normalise_parameters(self, parameters, boto_service_name, service_action_name)

    sfn._normalise_parameters = sfn_normalise_parameters
    sfn._normalise_response = _normalise_response


# Characters Step Functions refuses in a name: whitespace, brackets, wildcards, these punctuation marks, controls.
_INVALID_NAME = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]')


def _install_execution_names() -> None:
    models = _module(f"{_P}.models")
    backend_cls = _attr(models, "StepFunctionsParserBackend")
    original = _attr(backend_cls, "start_execution")

    from moto.stepfunctions.exceptions import InvalidName

    def start_execution(self: Any, state_machine_arn: str, name: str | None = None, execution_input: Any = None, trace_header: Any = None) -> Any:
        if name is not None and (not 1 <= len(name) <= 80 or _INVALID_NAME.search(name)):
            raise InvalidName(f"Invalid Name: '{name}'")  # as Step Functions answers: 1-80 characters, none of these
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    backend_cls.start_execution = start_execution


class _Declarations(str):
    """moto's JSONata variable declarations (`$name:=<JSON>;...`), with the values they declare kept alongside."""

    values: dict[str, Any]


class _Composed(str):
    """moto's composed expression `(<declarations><expression>)`, with what is needed to evaluate it without parsing
    the declared values: `code` (the expression and the intrinsic functions it uses, as JSONata text) and
    `bindings` (the declared values); `code` is None where that would not give the same result."""

    code: str | None
    bindings: dict[str, Any]

    def wrapped(self, function: str) -> _Composed:
        """`function(self)`, as moto's output checks build it (`$exists(...)`, `$type(...)`)."""
        composed = _Composed(f"{function}({self})")
        composed.code = None if self.code is None else f"{function}({self.code})"
        composed.bindings = self.bindings
        return composed


def _json_number(text: str) -> float | int:
    """A JSON number with a fraction or exponent as JSONata reads it from a declaration's text: 2.0 is the integer 2."""
    number = float(text)
    return int(number) if number.is_integer() else number


@functools.lru_cache(maxsize=512)
def _parsed_jsonata(code: str) -> Any:
    import jsonata

    return jsonata.Jsonata(code)


def _install_jsonata() -> None:
    """JSONata through jsonata-python. moto evaluates `($states:=<JSON>;$var:=<JSON>;...; expression)` — the data of
    the execution spelled into the expression, parsed by JSONata's tokenizer (pure Python) at every evaluation: about
    a third of the engine's samples in a py-spy profile of the test suite. The declarations keep their values here;
    the expression with its intrinsic functions is parsed once and evaluated with the values as bindings, which is
    what the declarations do."""
    module = _module(f"{_P}.asl.jsonata.jsonata")
    _attr(module, "_eval_jsonata")
    _attr(module, "eval_jsonata_expression")
    import jsonata

    exception = _attr(module, "JSONataException")
    original_encode = _attr(module, "encode_jsonata_variable_declarations")
    original_compose = _attr(module, "compose_jsonata_expression")

    def evaluate(expression: str) -> Any:
        try:
            if isinstance(expression, _Composed) and expression.code is not None:
                instance = copy.copy(_parsed_jsonata(expression.code))
                # jsonata-python evaluates through the instance last constructed on the thread (Jsonata.CURRENT,
                # which $now() and $millis() read too): this copy, as constructing it would have made it
                jsonata.Jsonata.CURRENT.jsonata = instance
                return instance.evaluate(None, expression.bindings)
            return jsonata.Jsonata(expression).evaluate(None)
        except Exception as exc:
            raise exception("States.QueryEvaluationError", str(exc)) from exc

    module._eval_jsonata = evaluate

    def encode(bindings: dict[str, Any]) -> _Declarations:
        texts = {name: original_encode({name: value}) for name, value in bindings.items()}
        declarations = _Declarations("".join(texts.values()))
        # each value as its declaration reads: a string verbatim, anything else through its JSON text (`$name:=...;`)
        declarations.values = {name[1:]: value if isinstance(value, str) else json.loads(texts[name][len(name) + 2:-1], parse_float=_json_number)
                               for name, value in bindings.items()}
        return declarations

    def compose(final_jsonata_expression: str, variable_declarations_list: list[str]) -> _Composed:
        composed = _Composed(original_compose(final_jsonata_expression, variable_declarations_list))
        code_parts = [d for d in variable_declarations_list if not isinstance(d, _Declarations)]
        bindings: dict[str, Any] = {}
        for declarations in variable_declarations_list:
            if isinstance(declarations, _Declarations):
                bindings.update(declarations.values)  # later declarations win, as in the composed text
        code = f"({''.join(code_parts)}{final_jsonata_expression})"
        # the intrinsic functions are declared first in moto's text, so a variable of the same name overrides them;
        # declared inside the parsed code they would override the variable instead: keep moto's text then
        clash = any(f"${name}:=" in part for part in code_parts for name in bindings)
        composed.code = None if clash else code
        composed.bindings = bindings
        return composed

    expression_mod = _module(f"{_P}.asl.component.common.string.string_expression")
    _attr(expression_mod, "compose_jsonata_expression")
    expression_mod.compose_jsonata_expression = compose
    original_check = _attr(expression_mod, "validate_jsonata_expression_output")

    def check_output(env: Any, expression: str, rich_jsonata_expression: str, jsonata_result: Any) -> None:
        """moto's output checks evaluate `$exists(<composed>)` or `$type(<composed>)` again; here only to decide
        whether the check fails, which moto's own check then reports (with its history event)."""
        if isinstance(rich_jsonata_expression, _Composed) and rich_jsonata_expression.code is not None:
            if jsonata_result is None:
                fails = not evaluate(rich_jsonata_expression.wrapped("$exists"))
            elif isinstance(jsonata_result, str):
                fails = evaluate(rich_jsonata_expression.wrapped("$type")) not in _JSONATA_OUTPUT_TYPES
            else:
                fails = False
            if not fails:
                return
        original_check(env, expression, rich_jsonata_expression, jsonata_result)

    expression_mod.validate_jsonata_expression_output = check_output

    store_mod = _module(f"{_P}.asl.eval.variable_store")
    store_cls = _attr(store_mod, "VariableStore")
    _attr(store_mod, "encode_jsonata_variable_declarations")
    store_mod.encode_jsonata_variable_declarations = encode
    for name in ("get_variable_declarations", "_to_variable_declarations"):
        _attr(store_cls, name)

    def get_variable_declarations(self: Any) -> _Declarations:
        """moto's, kept as one _Declarations (moto joins the outer and inner scopes' texts into a plain string)."""
        if self._variable_declarations_cache is None:
            if self._outer_variable_declaration_cache is None:
                self._outer_variable_declaration_cache = self._to_variable_declarations(self._outer_scope)
            outer = self._outer_variable_declaration_cache
            inner = self._to_variable_declarations(self._inner_scope)
            joined = _Declarations(outer + inner)
            joined.values = {**outer.values, **inner.values}
            self._variable_declarations_cache = joined
        return self._variable_declarations_cache

    store_cls.get_variable_declarations = get_variable_declarations

    # moto binds only the parts of $states it finds referenced, scanning the expression with a regex that takes
    # a division `a / b ... /` for a JSONata regex literal and so misses references between two slashes; bind all.
    states_mod = _module(f"{_P}.asl.eval.states")
    states_cls = _attr(states_mod, "States")
    _attr(states_cls, "to_variable_declarations")

    def to_variable_declarations(self: Any, variable_references: Any = None) -> str:
        return encode(bindings={"$states": self._states_data})

    states_cls.to_variable_declarations = to_variable_declarations


_JSONATA_OUTPUT_TYPES = {"null", "number", "string", "boolean", "array", "object"}  # moto's output check's


def _install_time_scale() -> None:
    retrier = _module(f"{_P}.asl.component.common.retry.retrier_decl")
    _attr(retrier, "time")
    retrier.time = _ScaledTime()
    callback = _module(f"{_TASK}.service.state_task_service_callback")
    _attr(callback, "time")
    callback.time = _ScaledTime()
    wait_mod = _module(f"{_P}.asl.component.state.wait.wait_function.wait_function")
    wait_cls = _attr(wait_mod, "WaitFunction")
    _attr(wait_cls, "_wait_interval")

    def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0:
            env.program_state_event.wait(scaled(wait_seconds))
            hold_while_busy(env.program_state_event)

    wait_cls._wait_interval = _wait_interval


def _install_branch_error_names() -> None:
    """A Parallel branch or a Fail state's ErrorPath carrying a States.* error (e.g. from a failed .sync job) must
    surface as that error; moto rebuilds it as a custom error name, which rejects the States. prefix and crashes."""
    states_mod = _module(f"{_P}.asl.component.common.error_name.states_error_name")
    custom_mod = _module(f"{_P}.asl.component.common.error_name.custom_error_name")
    StatesErrorName = _attr(states_mod, "StatesErrorName")
    CustomErrorName = _attr(custom_mod, "CustomErrorName")

    def error_name(error_name: str | None) -> Any:
        if error_name is not None and error_name.startswith("States."):
            return StatesErrorName.from_name(error_name)
        return CustomErrorName(error_name=error_name)

    for module_name in (
        f"{_P}.asl.component.state.exec.state_parallel.branches_decl",
        f"{_P}.asl.component.state.exec.state_map.iteration.iteration_worker",
        f"{_P}.asl.component.state.fail.state_fail",
        f"{_TASK}.mock_eval_utils",
    ):
        module = _module(module_name)
        _attr(module, "CustomErrorName")
        module.CustomErrorName = error_name


_ASSUMED: dict[tuple[str, str], tuple[str, str, str]] = {}


def _credentials_for(region: str, role_arn: str | None) -> tuple[str, str, str | None]:
    """A Task's `Credentials.RoleArn`, honoured as Step Functions does: the call is made with that role's temporary
    credentials (AssumeRole on the local cloud's STS), so a role of another account reaches that account's
    resources (moto keeps one set of backends per account). IAM is not enforced locally (README)."""
    if not role_arn:
        return "ak", "sk", None
    cache_key = (HOOKS.endpoint_url or "", role_arn)
    if cache_key not in _ASSUMED:
        import boto3

        sts = boto3.client("sts", region_name=region, endpoint_url=HOOKS.endpoint_url, aws_access_key_id="ak",
                           aws_secret_access_key="sk")
        found = sts.assume_role(RoleArn=role_arn, RoleSessionName="sagestep-local-task")["Credentials"]
        _ASSUMED[cache_key] = (found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"])
    return _ASSUMED[cache_key]


_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _install_service_endpoint() -> None:
    """The engine's own service calls (aws-sdk and optimized integrations) go to the local cloud's URL (moto uses
    `localhost`, which may resolve to ::1 first while the cloud listens on 127.0.0.1 only)."""
    module = _module(f"{_P}.asl.utils.boto_client")
    original = _attr(module, "boto_client_for")

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if HOOKS.endpoint_url is None:
            return original(region=region, service=service, state_credentials=state_credentials)
        import boto3
        from botocore.config import Config

        timeout = _module(f"{_P}.asl.component.common.timeouts.timeout").TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
        key, secret, token = _credentials_for(region, getattr(state_credentials, "role_arn", None))
        cache_key = (HOOKS.endpoint_url, service, region, key, secret, token, timeout)
        # One client per service and credentials, as moto's engine would make one per call: making a client costs
        # more than the call itself. Clients are thread-safe once made; making them is not, hence the lock.
        with _CLIENTS_LOCK:
            if cache_key not in _CLIENTS:
                for stale in [k for k in _CLIENTS if k[0] != HOOKS.endpoint_url]:  # a stopped cloud's: its URL is gone
                    del _CLIENTS[stale]
                _CLIENTS[cache_key] = boto3.client(
                    service_name=service, region_name=region, endpoint_url=HOOKS.endpoint_url, aws_access_key_id=key,
                    aws_secret_access_key=secret, aws_session_token=token,
                    config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                                  connect_timeout=timeout, read_timeout=timeout, max_pool_connections=64),
                )
            return _CLIENTS[cache_key]

    module.boto_client_for = boto_client_for
    # modules that imported the function by name keep their own reference: rebind them too
    import sys

    for name, loaded in list(sys.modules.items()):
        if name.startswith(_P) and getattr(loaded, "boto_client_for", None) is original:
            loaded.boto_client_for = boto_client_for

def _install_task_stubs() -> None:
    """moto keeps LocalStack's mocked-response mode (a Task answered from a mock configuration, its Parameters still
    evaluated and recorded) but never loads a configuration; `HOOKS.task_stubs` answers in its place."""
    environment = _attr(_module(f"{_P}.asl.eval.environment"), "Environment")
    mock_config = _module(f"{_P}.mocking.mock_config")
    Return, Throw = _attr(mock_config, "MockedResponseReturn"), _attr(mock_config, "MockedResponseThrow")
    original_is_mocked = _attr(environment, "is_mocked_mode")
    original_response = _attr(environment, "get_current_mocked_response")
    _attr(environment, "next_state_name")
    _attr(_attr(_module(f"{_P}.asl.eval.states"), "States"), "get_input")

    def is_mocked_mode(self: Any) -> bool:
        return HOOKS.task_stub(self) is not None or original_is_mocked(self)

    def get_current_mocked_response(self: Any) -> Any:
        stub = HOOKS.task_stub(self)
        if stub is None:
            return original_response(self)
        if stub.error is not None:
            return Throw(0, 0, error=stub.error, cause=stub.cause)
        return Return(0, 0, payload=copy.deepcopy(stub.output))

    environment.is_mocked_mode = is_mocked_mode
    environment.get_current_mocked_response = get_current_mocked_response
