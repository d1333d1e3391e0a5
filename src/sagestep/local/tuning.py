"""Hyperparameter tuning jobs (SageMaker Automatic Model Tuning) run for real in the local cloud.

A tuning job runs its trials as training jobs of the local `JobRunner` under the same container contract: each
trial's request is the job's TrainingJobDefinition with StaticHyperParameters plus the trial's tuned values, and its
objective is read from the trial's log with the definition's MetricDefinitions regexes (the last value, as
SageMaker keeps it). At most MaxParallelTrainingJobs trials run at a time; MaxNumberOfTrainingJobs in all.

Strategies:
- Random: each value drawn independently — uniform (Linear, and Auto), log-uniform (Logarithmic) or
  1 − log-uniform of 1 − x (ReverseLogarithmic, continuous ranges in [0, 1) only); integers rounded; categories
  uniform. RandomSeed makes the draws reproducible.
- Grid: every combination of the CategoricalParameterRanges (Grid accepts categorical ranges only), in order; at most
  MaxNumberOfTrainingJobs of them when it is given.
- Bayesian: scikit-optimize's Gaussian-process optimizer (ask/tell, expected improvement). AWS's Bayesian
  optimizer is its own (also Gaussian-process based); this one approximates it: the trials it proposes differ.
- Hyperband and TrainingJobEarlyStoppingType Auto are refused (not run locally); early stopping Off is the default.

A trial that fails does not fail the tuning job (AWS goes on with the others); the job fails when no trial
succeeds ("All training jobs failed"). The best trial is the one whose objective is best among the Completed ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import random
import re
import threading
from collections.abc import Callable
from typing import Any

from sagestep.local.jobs import LocalJob, now

STRATEGIES = ("Bayesian", "Random", "Grid")


class TuningSpecError(ValueError):
    """The request is one SageMaker refuses (ValidationException)."""


@dataclasses.dataclass
class Range:
    name: str
    kind: str  # Integer | Continuous | Categorical
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Auto"
    values: tuple[str, ...] = ()

    def draw(self, rng: random.Random) -> str:
        if self.kind == "Categorical":
            return rng.choice(self.values)
        u = rng.random()
        if self.scaling == "Logarithmic":
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        elif self.scaling == "ReverseLogarithmic":
            value = 1 - math.exp(math.log(1 - self.high) + u * (math.log(1 - self.low) - math.log(1 - self.high)))
        else:
            value = self.low + u * (self.high - self.low)
        return self.format(value)

    def format(self, value: Any) -> str:
        if self.kind == "Integer":
            return str(int(min(max(round(float(value)), self.low), self.high)))
        if self.kind == "Continuous":
            return repr(float(min(max(float(value), self.low), self.high)))
        return str(value)


def parse_ranges(ranges: dict[str, Any]) -> list[Range]:
    out: list[Range] = []
    for item in ranges.get("IntegerParameterRanges") or []:
        out.append(Range(item["Name"], "Integer", float(item["MinValue"]), float(item["MaxValue"]), item.get("ScalingType", "Auto")))
    for item in ranges.get("ContinuousParameterRanges") or []:
        out.append(Range(item["Name"], "Continuous", float(item["MinValue"]), float(item["MaxValue"]), item.get("ScalingType", "Auto")))
    for item in ranges.get("CategoricalParameterRanges") or []:
        out.append(Range(item["Name"], "Categorical", values=tuple(item["Values"])))
    for r in out:
        if r.kind != "Categorical":
            if r.low > r.high:
                raise TuningSpecError(f"ParameterRanges {r.name}: MinValue {r.low:g} is greater than MaxValue {r.high:g}")
            if r.scaling == "Logarithmic" and r.low <= 0:
                raise TuningSpecError(f"ParameterRanges {r.name}: Logarithmic scaling needs MinValue > 0")
            if r.scaling == "ReverseLogarithmic" and (r.kind != "Continuous" or r.low < 0 or r.high >= 1):
                raise TuningSpecError(f"ParameterRanges {r.name}: ReverseLogarithmic scaling needs a continuous range in [0, 1)")
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise TuningSpecError(f"ParameterRanges name a hyperparameter twice: {sorted(n for n in names if names.count(n) > 1)}")
    return out


class Proposer:
    """The strategy: `propose()` gives a trial's tuned values, `observe()` tells it a trial's objective."""

    def __init__(self, strategy: str, ranges: list[Range], maximize: bool, seed: int | None, limit: int | None) -> None:
        self.strategy, self.ranges, self.maximize = strategy, ranges, maximize
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self._grid: list[dict[str, str]] | None = None
        self._optimizer: Any = None
        if strategy == "Grid":
            if any(r.kind != "Categorical" for r in ranges):
                raise TuningSpecError("Grid search takes CategoricalParameterRanges only; use Random or Bayesian for "
                                      "integer and continuous ranges")
            combos = [dict(zip([r.name for r in ranges], values)) for values in itertools.product(*(r.values for r in ranges))]
            self._grid = combos[:limit] if limit else combos
        elif strategy == "Bayesian":
            from skopt import Optimizer
            from skopt.space import Categorical, Integer, Real

            dims = []
            for r in ranges:
                prior = "log-uniform" if r.scaling == "Logarithmic" else "uniform"
                if r.kind == "Categorical":
                    dims.append(Categorical(list(r.values), name=r.name))
                elif r.kind == "Integer":
                    dims.append(Integer(int(r.low), int(r.high), prior=prior, name=r.name))
                else:
                    dims.append(Real(r.low, r.high, prior=prior, name=r.name))
            # acq_optimizer "sampling": the acquisition maximised over 10,000 random points (lbfgs restarts took
            # about 1.5 s a proposal on 2 cores, for no better trials at these budgets)
            self._optimizer = Optimizer(dims, base_estimator="GP", acq_func="EI", acq_optimizer="sampling", n_initial_points=3,
                                        random_state=seed if seed is not None else 0)

    @property
    def total(self) -> int | None:
        return len(self._grid) if self._grid is not None else None

    def propose(self, index: int) -> dict[str, str]:
        with self._lock:
            if self._grid is not None:
                return dict(self._grid[index])
            if self._optimizer is not None:
                point = self._optimizer.ask()
                return {r.name: r.format(v) for r, v in zip(self.ranges, point)}
            return {r.name: r.draw(self.rng) for r in self.ranges}

    def observe(self, values: dict[str, str], objective: float | None) -> None:
        if self._optimizer is None:
            return
        with self._lock:
            point = [self._point_value(r, values[r.name]) for r in self.ranges]
            # A failed trial tells the optimizer a bad value: it then avoids that region, as AWS does.
            score = objective if objective is not None else (-1e12 if self.maximize else 1e12)
            self._optimizer.tell(point, -score if self.maximize else score)

    @staticmethod
    def _point_value(r: Range, text: str) -> Any:
        if r.kind == "Integer":
            return int(text)
        if r.kind == "Continuous":
            return float(text)
        return text


@dataclasses.dataclass
class Trial:
    name: str
    values: dict[str, str]
    job: LocalJob | None = None
    objective: float | None = None


@dataclasses.dataclass
class TuningJob:
    name: str
    arn: str
    request: dict[str, Any]
    status: str = "InProgress"
    failure_reason: str | None = None
    creation_time: Any = dataclasses.field(default_factory=now)
    end_time: Any = None
    trials: list[Trial] = dataclasses.field(default_factory=list)
    stop_requested: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)
    done: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)

    @property
    def config(self) -> dict[str, Any]:
        return self.request["HyperParameterTuningJobConfig"]

    @property
    def objective(self) -> dict[str, str]:
        return self.config["HyperParameterTuningJobObjective"]

    def best(self) -> Trial | None:
        scored = [t for t in self.trials if t.job is not None and t.job.status == "Completed" and t.objective is not None]
        if not scored:
            return None
        pick = max if self.objective["Type"] == "Maximize" else min
        return pick(scored, key=lambda t: t.objective)  # type: ignore[arg-type, return-value]

    def summary(self, trial: Trial) -> dict[str, Any]:
        job = trial.job
        out: dict[str, Any] = {
            "TrainingJobName": trial.name,
            "TrainingJobArn": job.arn if job else "",
            "TuningJobName": self.name,
            "CreationTime": job.creation_time if job else self.creation_time,
            "TrainingJobStatus": job.status if job else "InProgress",
            "TunedHyperParameters": dict(trial.values),
        }
        if job is not None:
            if job.start_time:
                out["TrainingStartTime"] = job.start_time
            if job.end_time:
                out["TrainingEndTime"] = job.end_time
            if job.failure_reason:
                out["FailureReason"] = job.failure_reason
        if trial.objective is not None:
            out["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": self.objective["Type"], "MetricName": self.objective["MetricName"], "Value": trial.objective}
        if job is not None and job.status in ("Completed", "Failed", "Stopped"):
            out["ObjectiveStatus"] = "Succeeded" if trial.objective is not None else "Failed"
        else:
            out["ObjectiveStatus"] = "Pending"
        return out

    def describe(self) -> dict[str, Any]:
        jobs = [t.job for t in self.trials if t.job is not None]
        statuses = [j.status for j in jobs]
        objective_states = [self.summary(t)["ObjectiveStatus"] for t in self.trials]
        body: dict[str, Any] = {
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobArn": self.arn,
            "HyperParameterTuningJobConfig": self.config,
            "TrainingJobDefinition": self.request["TrainingJobDefinition"],
            "HyperParameterTuningJobStatus": self.status,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.end_time or now(),
            "TrainingJobStatusCounters": {
                "Completed": statuses.count("Completed"),
                "InProgress": statuses.count("InProgress") + statuses.count("Stopping"),
                "RetryableError": 0,
                "NonRetryableError": statuses.count("Failed"),
                "Stopped": statuses.count("Stopped"),
            },
            "ObjectiveStatusCounters": {
                "Succeeded": objective_states.count("Succeeded"),
                "Pending": objective_states.count("Pending"),
                "Failed": objective_states.count("Failed"),
            },
        }
        if self.end_time:
            body["HyperParameterTuningEndTime"] = self.end_time
        if self.failure_reason:
            body["FailureReason"] = self.failure_reason
        best = self.best()
        if best is not None:
            body["BestTrainingJob"] = self.summary(best)
        return body


def trial_name(tuning_name: str, index: int) -> str:
    """`<tuning job>-<3-digit index>-<8 hex>`, the form SageMaker gives its trials."""
    digest = hashlib.sha256(f"{tuning_name}:{index}".encode()).hexdigest()[:8]
    return f"{tuning_name}-{index:03d}-{digest}"


def trial_request(tuning: TuningJob, name: str, values: dict[str, str]) -> dict[str, Any]:
    """CreateTrainingJob's request for a trial: the TrainingJobDefinition, static + tuned hyperparameters."""
    definition = tuning.request["TrainingJobDefinition"]
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": dict(definition["AlgorithmSpecification"]),
        "HyperParameters": {**(definition.get("StaticHyperParameters") or {}), **values,
                            "_tuning_objective_metric": tuning.objective["MetricName"]},
    }
    for key in ("RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition",
                "EnableNetworkIsolation", "Environment", "VpcConfig", "CheckpointConfig"):
        if key in definition:
            request[key] = definition[key]
    request["Tags"] = list(tuning.request.get("Tags") or [])
    request["TuningJobArn"] = tuning.arn  # DescribeTrainingJob of a trial names its tuning job
    return request


def check_request(request: dict[str, Any]) -> None:
    """SageMaker's rules for a tuning job that botocore's shapes do not carry."""
    config = request["HyperParameterTuningJobConfig"]
    strategy = config.get("Strategy")
    if strategy not in STRATEGIES:
        raise TuningSpecError(f"Strategy {strategy!r} is not run by the local cloud; use one of {list(STRATEGIES)}")
    if config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
        raise TuningSpecError("TrainingJobEarlyStoppingType Auto is not run by the local cloud; set Off")
    definition = request.get("TrainingJobDefinition")
    if not definition:
        raise TuningSpecError("TrainingJobDefinition is required (TrainingJobDefinitions is not run locally)")
    objective = config.get("HyperParameterTuningJobObjective") or {}
    names = [m["Name"] for m in definition["AlgorithmSpecification"].get("MetricDefinitions") or []]
    if objective.get("MetricName") not in names:
        raise TuningSpecError(f"The objective metric {objective.get('MetricName')!r} is not one of the "
                              f"MetricDefinitions {names}")
    ranges = parse_ranges(config.get("ParameterRanges") or {})
    if not ranges:
        raise TuningSpecError("ParameterRanges name no hyperparameter to tune")
    static = set(definition.get("StaticHyperParameters") or {})
    both = sorted(static & {r.name for r in ranges})
    if both:
        raise TuningSpecError(f"Hyperparameters {both} are both static and tuned; tune them or set them, not both")
    limits = config.get("ResourceLimits") or {}
    if strategy != "Grid" and not limits.get("MaxNumberOfTrainingJobs"):
        raise TuningSpecError("ResourceLimits.MaxNumberOfTrainingJobs is required for Random and Bayesian")


class TuningRunner:
    """Runs tuning jobs: a thread per job that starts its trials through `start_training` and waits for them."""

    def __init__(self, start_training: Callable[[dict[str, Any], str], LocalJob], stop_training: Callable[[str], None],
                 scale: Callable[[float], float]) -> None:
        self.start_training, self.stop_training, self.scale = start_training, stop_training, scale
        self.jobs: dict[str, TuningJob] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> TuningJob | None:
        return self.jobs.get(name)

    def start(self, request: dict[str, Any], arn: str, training_arn: Callable[[str], str]) -> TuningJob:
        check_request(request)
        name = request["HyperParameterTuningJobName"]
        with self._lock:
            if name in self.jobs:
                raise TuningSpecError(f"A tuning job named {name} already exists; names must be unique")
            job = TuningJob(name=name, arn=arn, request=request)
            self.jobs[name] = job
        thread = threading.Thread(target=self._run, args=(job, training_arn), name=f"sagemaker-tuning-{name}", daemon=True)
        thread.start()
        return job

    def stop(self, name: str) -> None:
        job = self.jobs.get(name)
        if job is not None and job.status == "InProgress":
            job.status = "Stopping"
            job.stop_requested.set()
            for trial in job.trials:
                if trial.job is not None and trial.job.status == "InProgress":
                    self.stop_training(trial.name)

    def _run(self, job: TuningJob, training_arn: Callable[[str], str]) -> None:
        try:
            self._run_trials(job, training_arn)
        except Exception as exc:  # the runtime itself failed: the job's failure, loudly
            job.failure_reason = f"InternalServerError: local runtime error: {type(exc).__name__}: {exc}"
            job.status = "Failed"
        finally:
            job.end_time = now()
            job.done.set()

    def _run_trials(self, job: TuningJob, training_arn: Callable[[str], str]) -> None:
        config = job.config
        limits = config.get("ResourceLimits") or {}
        ranges = parse_ranges(config.get("ParameterRanges") or {})
        maximize = job.objective["Type"] == "Maximize"
        proposer = Proposer(config["Strategy"], ranges, maximize, config.get("RandomSeed"),
                            limits.get("MaxNumberOfTrainingJobs"))
        total = proposer.total if proposer.total is not None else int(limits["MaxNumberOfTrainingJobs"])
        parallel = max(1, int(limits.get("MaxParallelTrainingJobs") or 1))
        pattern = next(re.compile(m["Regex"]) for m in job.request["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
                       if m["Name"] == job.objective["MetricName"])
        running: list[Trial] = []
        index = 0
        while (index < total or running) and not job.stop_requested.is_set():
            while index < total and len(running) < parallel and not job.stop_requested.is_set():
                index += 1
                name = trial_name(job.name, index)
                trial = Trial(name=name, values=proposer.propose(index - 1))
                job.trials.append(trial)
                trial.job = self.start_training(trial_request(job, name, trial.values), training_arn(name))
                running.append(trial)
            for trial in list(running):
                if trial.job is not None and trial.job.done.is_set():
                    running.remove(trial)
                    trial.objective = _objective(trial.job, job.objective["MetricName"], pattern)
                    proposer.observe(trial.values, trial.objective)
            if running:
                running[0].job.done.wait(timeout=max(0.02, self.scale(0.5)))  # type: ignore[union-attr]
        if job.stop_requested.is_set():
            job.status = "Stopped"
        elif job.best() is None:
            job.status = "Failed"
            job.failure_reason = ("All training jobs failed. Please take a look at the training job failures to get "
                                  "more details.")
        else:
            job.status = "Completed"


def _objective(job: LocalJob, metric: str, pattern: re.Pattern[str]) -> float | None:
    """The trial's objective: its final metric value (the last match of the regex in its log), when it completed."""
    if job.status != "Completed":
        return None
    if metric in job.metrics:
        return float(job.metrics[metric][0])
    if not job.log_path.exists():
        return None
    for match in reversed(list(pattern.finditer(job.log_path.read_text(errors="replace")))):
        try:
            return float(match.group(1))
        except ValueError:
            continue
    return None
