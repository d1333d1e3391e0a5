"""The error names Step Functions gives each integration kind (aws.error_names), from AWS's documented rules."""

from __future__ import annotations

import pytest

from sagestep.aws import error_names


@pytest.mark.parametrize(("api", "service", "code", "expected"), [
    ("s3", "s3", "NoSuchKey", "S3.NoSuchKeyException"),  # modeled, suffix added (recorded on AWS)
    ("s3", "s3", "AccessDenied", "S3.AccessDeniedException"),
    ("s3", "s3", "SlowDown", "S3.S3Exception"),  # not modeled: the generic name
    ("sagemaker", "sagemaker", "ValidationException", "SageMaker.SageMakerException"),
    ("sagemaker", "sagemaker", "ThrottlingException", "SageMaker.SageMakerException"),
    ("sagemaker", "sagemaker", "ResourceNotFound", "SageMaker.ResourceNotFoundException"),
    ("sagemaker", "sagemaker", "ConflictException", "SageMaker.ConflictException"),
    ("sfn", "stepfunctions", "ExecutionAlreadyExists", "Sfn.ExecutionAlreadyExistsException"),
    ("dynamodb", "dynamodb", "ValidationException", "DynamoDb.DynamoDbException"),  # recorded on AWS
    ("cloudwatch", "cloudwatch", "InvalidParameterValue", "CloudWatch.InvalidParameterValueException"),
])
def test_aws_sdk_names_use_the_prefix_table_the_modeled_exception_and_the_exception_suffix(api, service, code, expected):
    assert error_names.sdk_error_name(api, service, code) == expected


@pytest.mark.parametrize(("service", "code", "expected"), [
    ("sagemaker", "ValidationException", "SageMaker.AmazonSageMakerException"),  # AWS's own example retries this name
    ("sagemaker", "ThrottlingException", "SageMaker.AmazonSageMakerException"),
    ("sagemaker", "ResourceLimitExceeded", "SageMaker.ResourceLimitExceededException"),
    ("lambda", "TooManyRequestsException", "Lambda.TooManyRequestsException"),
    ("lambda", "SomethingElse", "Lambda.AWSLambdaException"),
    ("sns", "NotFound", "SNS.NotFoundException"),  # the shape name, not the wire code (recorded on AWS)
    ("sns", "ParameterValueInvalid", "SNS.InvalidParameterValueException"),
    ("states", "StateMachineDoesNotExist", "StepFunctions.StateMachineDoesNotExistException"),
    ("states", "Whatever", "StepFunctions.AWSStepFunctionsException"),
])
def test_optimized_names_use_the_integration_prefix_and_the_sdk_v1_base_class(service, code, expected):
    assert error_names.optimized_error_name(service, code) == expected


def test_the_names_an_integration_can_raise_exclude_names_that_never_occur():
    optimized = error_names.service_names("optimized", "sagemaker")
    sdk = error_names.service_names("aws-sdk", "sagemaker")
    assert "SageMaker.AmazonSageMakerException" in optimized and "SageMaker.AmazonSageMakerException" not in sdk
    assert "SageMaker.SageMakerException" in sdk and "SageMaker.SageMakerException" not in optimized
    assert "SageMaker.ThrottlingException" not in optimized | sdk
    assert {"Lambda.Unknown", "Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= error_names.service_names("optimized", "lambda")


def test_resources_with_substituted_partitions_are_recognised():
    assert error_names.integration_of("arn:${Partition}:states:::aws-sdk:sagemaker:describeEndpoint") == ("aws-sdk", "sagemaker", "describeEndpoint", None)
    assert error_names.integration_of("arn:aws:states:::sagemaker:createTrainingJob.sync") == ("optimized", "sagemaker", "createTrainingJob", "sync")
    assert error_names.integration_of("arn:aws:lambda:us-east-1:1:function:f") is None
