"""The local cloud's tuning strategies, request checks and trial bookkeeping (no training runs here: trials are
stand-in jobs whose outcome the test sets)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from sagestep.local.jobs import LocalJob
from sagestep.local.tuning import Proposer, TuningRunner, TuningSpecError, check_request, parse_ranges, trial_name

RANGES = {
    "ContinuousParameterRanges": [{"Name": "learning_rate", "MinValue": "0.01", "MaxValue": "0.3", "ScalingType": "Logarithmic"}],
    "IntegerParameterRanges": [{"Name": "num_leaves", "MinValue": "4", "MaxValue": "64", "ScalingType": "Linear"}],
    "CategoricalParameterRanges": [{"Name": "tree_method", "Values": ["hist", "approx"]}],
}


def request(strategy: str = "Random", ranges: dict | None = None, max_jobs: int | None = 4, parallel: int = 2) -> dict:
    limits = {"MaxParallelTrainingJobs": parallel, **({"MaxNumberOfTrainingJobs": max_jobs} if max_jobs else {})}
    return {
        "HyperParameterTuningJobName": "tune-1",
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "ResourceLimits": limits, "ParameterRanges": ranges or RANGES,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "TrainingJobEarlyStoppingType": "Off", "RandomSeed": 3},
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"algorithm": "lightgbm"},
            "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File",
                                       "MetricDefinitions": [{"Name": "validation:auc", "Regex": "validation:auc=([0-9.]+);"}]},
            "RoleArn": "arn:aws:iam::123456789012:role/r", "OutputDataConfig": {"S3OutputPath": "s3://b/o/"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60}},
    }


def test_random_draws_stay_in_their_ranges_and_repeat_with_the_seed():
    ranges = parse_ranges(RANGES)
    first = [Proposer("Random", ranges, True, 3, None).propose(i) for i in range(1)]
    draws = [Proposer("Random", ranges, True, 3, None) for _ in range(2)]
    a = [draws[0].propose(i) for i in range(200)]
    b = [draws[1].propose(i) for i in range(200)]
    assert a == b and a[0] == first[0]
    rates = [float(d["learning_rate"]) for d in a]
    assert all(0.01 <= r <= 0.3 for r in rates)
    # log-uniform: about half the draws fall below the geometric midpoint sqrt(0.01 * 0.3) ≈ 0.055
    below = sum(r < math.sqrt(0.01 * 0.3) for r in rates) / len(rates)
    assert 0.35 < below < 0.65
    assert all(4 <= int(d["num_leaves"]) <= 64 for d in a)
    assert {d["tree_method"] for d in a} == {"hist", "approx"}


def test_grid_runs_every_categorical_combination_in_order_and_refuses_numeric_ranges():
    ranges = parse_ranges({"CategoricalParameterRanges": [{"Name": "a", "Values": ["1", "2"]},
                                                          {"Name": "b", "Values": ["x", "y", "z"]}]})
    grid = Proposer("Grid", ranges, True, None, None)
    assert grid.total == 6
    assert [grid.propose(i) for i in range(6)][:3] == [{"a": "1", "b": "x"}, {"a": "1", "b": "y"}, {"a": "1", "b": "z"}]
    with pytest.raises(TuningSpecError, match="Grid search takes CategoricalParameterRanges only"):
        Proposer("Grid", parse_ranges(RANGES), True, None, None)


def test_bayesian_proposals_stay_in_range_and_learn_from_the_objective():
    ranges = parse_ranges({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}]})
    bayes = Proposer("Bayesian", ranges, True, 0, None)
    seen = []
    for i in range(7):  # each proposal fits a Gaussian process (about 0.5 s on a busy 2-core host)
        values = bayes.propose(i)
        x = float(values["x"])
        seen.append(x)
        bayes.observe(values, -(x - 0.7) ** 2)  # best at 0.7
    assert all(0 <= x <= 1 for x in seen)
    assert min(abs(x - 0.7) for x in seen[3:]) < 0.1  # after the initial points it homes in on the optimum


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Hyperband"), "not run by the local cloud"),
    (lambda r: r["HyperParameterTuningJobConfig"].update(TrainingJobEarlyStoppingType="Auto"), "Auto is not run"),
    (lambda r: r["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"].update(MetricName="auc"),
     "not one of the MetricDefinitions"),
    (lambda r: r["TrainingJobDefinition"]["StaticHyperParameters"].update(num_leaves="7"), "both static and tuned"),
    (lambda r: r["HyperParameterTuningJobConfig"]["ResourceLimits"].pop("MaxNumberOfTrainingJobs"),
     "MaxNumberOfTrainingJobs is required"),
    (lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["IntegerParameterRanges"][0].update(MinValue="99"),
     "greater than MaxValue"),
])
def test_requests_sagemaker_refuses_are_refused_with_the_reason(change, message):
    bad = request()
    bad["HyperParameterTuningJobConfig"]["ParameterRanges"] = {k: [dict(x) for x in v] for k, v in RANGES.items()}
    change(bad)
    with pytest.raises(TuningSpecError, match=message):
        check_request(bad)


def _fake_runner(tmp_path: Path, outcome) -> tuple[TuningRunner, list[LocalJob], list[int]]:
    """Trials finish at once with `outcome(index) -> (status, auc)`; records the most trials running together."""
    jobs: list[LocalJob] = []
    running = [0, 0]  # now, peak
    lock = threading.Lock()

    def start(req: dict, arn: str) -> LocalJob:
        job = LocalJob(kind="training", name=req["TrainingJobName"], arn=arn, request=req, root=tmp_path / req["TrainingJobName"])
        jobs.append(job)
        with lock:
            running[0] += 1
            running[1] = max(running)
        status, auc = outcome(len(jobs))

        def finish() -> None:
            if auc is not None:
                job.metrics["validation:auc"] = (auc, job.creation_time)
            job.status = status
            with lock:
                running[0] -= 1
            job.done.set()

        threading.Timer(0.01, finish).start()
        return job

    return TuningRunner(start, lambda name: None, lambda s: 0.01), jobs, running


def test_a_failed_trial_leaves_the_job_completed_with_the_best_of_the_others(tmp_path):
    runner, jobs, running = _fake_runner(tmp_path, lambda i: ("Failed", None) if i == 2 else ("Completed", 0.7 + i / 100))
    job = runner.start(request(max_jobs=5, parallel=2), "arn:tune", lambda n: f"arn:{n}")
    assert job.done.wait(10)
    described = job.describe()
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"] == {"Completed": 4, "InProgress": 0, "RetryableError": 0,
                                                      "NonRetryableError": 1, "Stopped": 0}
    assert described["BestTrainingJob"]["TrainingJobName"] == trial_name("tune-1", 5)
    assert described["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(0.75)
    assert running[1] <= 2  # MaxParallelTrainingJobs
    assert jobs[0].request["HyperParameters"]["_tuning_objective_metric"] == "validation:auc"


def test_a_job_whose_trials_all_fail_fails(tmp_path):
    runner, _, _ = _fake_runner(tmp_path, lambda i: ("Failed", None))
    job = runner.start(request(max_jobs=3), "arn:tune", lambda n: f"arn:{n}")
    assert job.done.wait(10)
    assert job.status == "Failed" and job.failure_reason.startswith("All training jobs failed")
    assert "BestTrainingJob" not in job.describe()


def test_trial_names_follow_sagemakers_form_and_fit_a_training_job_name():
    name = trial_name("a" * 32, 7)
    assert name.startswith("a" * 32 + "-007-") and len(name) <= 63
