"""AWS's cross-field rules (aws.service_rules): one test per rule of the catalogue, on the request SageMaker would
get. Rules that need the account's state (in-progress updates, existing names, serverless + isolated model) are
exercised in tests/functional/test_cloud_fidelity.py; the API model's limits through service_model.validate."""

from __future__ import annotations

import copy

import pytest

from sagestep.aws import service_model, service_rules

INSTANCE = {"VariantName": "Primary", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
SERVERLESS = {"VariantName": "Primary", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
CAPTURE = {"InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://b/c", "CaptureOptions": [{"CaptureMode": "Input"}]}
BLUE_GREEN = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                                                                         "WaitIntervalInSeconds": 300},
                                        "TerminationWaitInSeconds": 300, "MaximumExecutionTimeoutInSeconds": 1800}}


def violations(action, request):
    return service_rules.check("sagemaker", action, request)


def ids(action, request):
    return {v.rsplit("[", 1)[1].rstrip("]") for v in violations(action, request)}


def test_every_rule_names_its_source_and_who_enforces_it():
    assert len({r.id for r in service_rules.RULES}) == len(service_rules.RULES)
    assert all(r.source and r.where and r.summary for r in service_rules.RULES)


def test_valid_instance_config_with_capture_and_blue_green_update_pass():
    assert violations("CreateEndpointConfig", {"ProductionVariants": [INSTANCE], "DataCaptureConfig": CAPTURE}) == []
    assert violations("UpdateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": BLUE_GREEN}) == []


def test_serverless_without_data_capture():
    assert ids("CreateEndpointConfig", {"ProductionVariants": [SERVERLESS], "DataCaptureConfig": CAPTURE}) == {"serverless-without-data-capture"}


def test_serverless_single_variant():
    second = {**SERVERLESS, "VariantName": "Challenger"}
    assert ids("CreateEndpointConfig", {"ProductionVariants": [SERVERLESS, second]}) == {"serverless-single-variant"}


def test_serverless_without_shadow():
    shadow = {**SERVERLESS, "VariantName": "Shadow"}
    assert "serverless-without-shadow" in ids("CreateEndpointConfig", {"ProductionVariants": [SERVERLESS], "ShadowProductionVariants": [shadow]})


def test_shadow_one_and_one():
    two = [INSTANCE, {**INSTANCE, "VariantName": "B"}]
    assert ids("CreateEndpointConfig", {"ProductionVariants": two, "ShadowProductionVariants": [{**INSTANCE, "VariantName": "S"}]}) == {"shadow-one-and-one"}


def test_variant_instance_or_serverless():
    both = {**INSTANCE, "ServerlessConfig": SERVERLESS["ServerlessConfig"]}
    neither = {"VariantName": "Primary", "ModelName": "m"}
    assert ids("CreateEndpointConfig", {"ProductionVariants": [both]}) == {"variant-instance-or-serverless"}
    assert ids("CreateEndpointConfig", {"ProductionVariants": [neither]}) == {"variant-instance-or-serverless"}


def test_serverless_memory_and_concurrency():
    bad = {**SERVERLESS, "ServerlessConfig": {"MemorySizeInMB": 2500, "MaxConcurrency": 5, "ProvisionedConcurrency": 6}}
    assert len([v for v in violations("CreateEndpointConfig", {"ProductionVariants": [bad]}) if "serverless-memory" in v]) == 2


def test_unique_variant_names():
    assert ids("CreateEndpointConfig", {"ProductionVariants": [INSTANCE, dict(INSTANCE)]}) == {"unique-variant-names"}


def test_one_update_policy():
    config = {**BLUE_GREEN, "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 60}}
    assert "one-update-policy" in ids("UpdateEndpoint", {"DeploymentConfig": config})


def test_blue_green_traffic_routing():
    config = copy.deepcopy(BLUE_GREEN)
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    routing["CanarySize"]["Value"] = 60  # over 50% of the capacity
    config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] = 600  # not more than 300 + 300
    found = [v for v in violations("UpdateEndpoint", {"DeploymentConfig": config}) if "blue-green-traffic-routing" in v]
    assert len(found) == 2
    routing["Type"] = "LINEAR"
    assert any("LinearStepSize: required" in v for v in violations("UpdateEndpoint", {"DeploymentConfig": config}))


def test_rolling_batch_size():
    config = {"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 80}, "WaitIntervalInSeconds": 60}}
    assert ids("UpdateEndpoint", {"DeploymentConfig": config}) == {"rolling-batch-size"}


def test_training_stopping_condition():
    assert ids("CreateTrainingJob", {"StoppingCondition": {"MaxRuntimeInSeconds": 30 * 86400}}) == {"training-stopping-condition"}
    assert ids("CreateTrainingJob", {"StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120}}) == {"training-stopping-condition"}


def test_versioned_model_package():
    assert ids("CreateModelPackage", {"ModelPackageGroupName": "g", "ModelPackageName": "n"}) == {"versioned-model-package"}
    assert ids("CreateModelPackage", {"ModelPackageName": "n", "ModelApprovalStatus": "Approved"}) == {"versioned-model-package"}


def test_hyperparameter_limits_come_from_the_api_model():
    many = {f"p{i}": "1" for i in range(101)}
    assert any("at most 100 allowed" in e for e in service_model.validate("sagemaker", "CreateTrainingJob", {"HyperParameters": many}))
    long_value = {"p": "x" * 2501}
    assert any("at most 2500 allowed" in e for e in service_model.validate("sagemaker", "CreateTrainingJob", {"HyperParameters": long_value}))


def test_customer_metadata_limits_and_characters_come_from_the_api_model():
    errors = service_model.validate("sagemaker", "CreateModelPackage", {"CustomerMetadataProperties": {
        "k" * 129: "v", "ok": "x" * 257, "json": '{"a": 1}', "fine": "s3://b/k=1+2@x: v_1.0"}})
    assert sum("CustomerMetadataProperties" in e for e in errors) == 3, errors
    assert not any(".fine" in e for e in errors)
    many = {f"k{i}": "v" for i in range(51)}
    assert any("at most 50 allowed" in e for e in service_model.validate("sagemaker", "CreateModelPackage", {"CustomerMetadataProperties": many}))


@pytest.mark.parametrize("rule_id", [r.id for r in service_rules.RULES])
def test_each_rule_is_exercised_by_a_test(rule_id):
    from pathlib import Path

    tests = Path(__file__).read_text() + (Path(__file__).parents[1] / "functional" / "test_cloud_fidelity.py").read_text() \
        + (Path(__file__).parents[1] / "static" / "test_validate_errors.py").read_text()
    assert rule_id in tests or f"test_{rule_id.replace('-', '_')}" in tests
