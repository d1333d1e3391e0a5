"""Path tests of the training state machine's optional hyperparameter tuning (createHyperParameterTuningJob.sync)
in the local cloud, on the real credit data: trials are real training jobs, the best one's model is registered."""

from __future__ import annotations

import copy

import pytest
import yaml

from sagestep.local import LocalRuntime
from tests.conftest import BY_HAND, REPO_ROOT, load_event


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("workspace"), time_scale=0.001,
                      parameter_overrides=BY_HAND) as rt:
        yield rt


@pytest.fixture(scope="module")
def staged(runtime, credit_data) -> dict:
    bucket = runtime.bucket("DataBucket")
    s3 = runtime.client("s3")
    s3.put_object(Bucket=bucket, Key="datasets/credit_data/credit_data.csv", Body=credit_data.to_csv(index=False).encode())
    config = (REPO_ROOT / "ml" / "config" / "credit_data.yaml").read_bytes()
    s3.put_object(Bucket=bucket, Key="configs/credit_data.yaml", Body=config)
    execution_input = copy.deepcopy(load_event("training_state_machine_credit_data_tuning"))
    execution_input["Hyperparameters"]["num_round"] = "40"  # few rounds: the test is about the tuning, not the fit
    return execution_input


def grid(values: list[str]) -> dict:
    return {"Strategy": "Grid", "MaxParallelJobs": 2, "MaxJobs": len(values),
            "ObjectiveMetric": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ParameterRanges": {"CategoricalParameterRanges": [{"Name": "num_leaves", "Values": values}]}}


def test_tuning_runs_8_trials_2_at_a_time_survives_a_failing_one_and_registers_the_best(runtime, staged):
    # GIVEN a Tuning input of 8 trials, 2 in parallel, maximizing validation AUC, where one value is not a valid
    # num_leaves (that trial's training fails); a grid, so the test knows which (the sample event is Bayesian:
    # tests/unit/test_tuning.py covers the strategies)
    execution_input = {**staged, "Tuning": grid(["4", "8", "12", "many", "16", "24", "32", "48"])}
    # WHEN the training state machine runs
    record = runtime.run("TrainingStateMachine", execution_input, name="tuned")
    # THEN every trial ran, the failing one did not fail the tuning job (as in AWS), and it completed
    assert record.status == "SUCCEEDED", record.cause
    sagemaker = runtime.client("sagemaker")
    tuning_name = record.output["Tuned"]["TuningJobName"]
    described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"]["Completed"] == 7
    assert described["TrainingJobStatusCounters"]["NonRetryableError"] == 1
    trials = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning_name, MaxResults=100)["TrainingJobSummaries"]
    assert len(trials) == 8
    failed = [t for t in trials if t["TrainingJobStatus"] == "Failed"]
    assert [t["TunedHyperParameters"] for t in failed] == [{"num_leaves": "many"}]
    assert "num_leaves" in failed[0]["FailureReason"] and failed[0]["ObjectiveStatus"] == "Failed"
    # AND never more than 2 trials trained at once
    spans = sorted((t["TrainingStartTime"], t["TrainingEndTime"]) for t in trials)
    assert max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans) <= 2
    # AND the best trial (highest validation AUC) is the model that was evaluated and registered
    top = max(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials if t["TrainingJobStatus"] == "Completed")
    best = next(t for t in trials if t["TrainingJobName"] == described["BestTrainingJob"]["TrainingJobName"])
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == top  # trials may tie (AUC to 6 digits)
    assert record.output["Training"]["JobName"] == best["TrainingJobName"]
    package = sagemaker.describe_model_package(ModelPackageName=record.output["Registered"]["ModelPackageArn"])
    lineage = package["CustomerMetadataProperties"]
    assert lineage["TuningJobArn"] == described["HyperParameterTuningJobArn"]
    assert lineage["TrainingJobName"] == best["TrainingJobName"]
    assert f"num_leaves={best['TunedHyperParameters']['num_leaves']}" in lineage["HyperParameters"]
    assert "sagemaker_" not in lineage["HyperParameters"]
    # AND the run's report lists every trial with its objective (the plot) and the chosen hyperparameters
    run_summary = runtime.read_json(lineage["RunSummaryS3Uri"])
    assert run_summary["tuning"]["trials"] == 8 and run_summary["tuning"]["best_training_job"] == best["TrainingJobName"]
    html = runtime.local_path(lineage["ReportS3Uri"]).read_text()
    assert 'id="tuning"' in html and "Objective per trial" in html
    assert all(t["TrainingJobName"] in html for t in trials)


def test_a_tuning_job_whose_trials_all_fail_ends_in_training_failed(runtime, staged):
    # GIVEN a grid of invalid values only
    record = runtime.run("TrainingStateMachine", {**staged, "Tuning": grid(["many", "lots"])}, name="tuned-all-fail")
    # THEN the tuning job fails and the run ends in its failure state, naming why
    assert record.status == "FAILED"
    assert record.states_entered()[-2:] == ["Notify failure", "Training failed"]
    assert "All training jobs failed" in record.cause
