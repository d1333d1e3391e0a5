"""The console's graph of a definition and its reading of an execution history (Step Functions event shapes)."""

from __future__ import annotations

import json

from sagestep.console.graph import definition_graph, state_runs

DEFINITION = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Next": "Train"},
        "Train": {
            "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
            "Retry": [{"ErrorEquals": ["ThrottlingException"], "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Notify failure"}], "Next": "Checks",
        },
        "Checks": {"Type": "Parallel", "Next": "Each item", "Branches": [
            {"StartAt": "Evaluate", "States": {"Evaluate": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}}},
            {"StartAt": "Baseline", "States": {"Baseline": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}}},
        ]},
        "Each item": {"Type": "Map", "Next": "Passed?", "ItemProcessor": {
            "StartAt": "Score", "States": {"Score": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}}}},
        "Passed?": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Done"}], "Default": "Notify failure"},
        "Done": {"Type": "Succeed"},
        "Notify failure": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "Next": "Failed"},
        "Failed": {"Type": "Fail", "Error": "TrainingFailed"},
    },
}


class History:
    """Builds a history the way Step Functions chains it: each event names the event it follows."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def add(self, kind: str, after: int | None = None, **details) -> int:
        event_id = len(self.events) + 1
        previous = after if after is not None else (event_id - 1)
        key = {"TaskFailed": "taskFailedEventDetails", "ExecutionFailed": "executionFailedEventDetails",
               "FailStateEntered": "stateEnteredEventDetails"}.get(kind)
        if key is None:
            if kind.endswith("StateEntered"):
                key = "stateEnteredEventDetails"
            elif kind.endswith("StateExited"):
                key = "stateExitedEventDetails"
            elif kind.startswith("MapIteration"):
                key = "mapIterationStartedEventDetails" if kind.endswith("Started") else "mapIterationSucceededEventDetails"
            else:
                key = kind[0].lower() + kind[1:] + "EventDetails"
        self.events.append({"id": event_id, "previousEventId": previous, "type": kind, key: details})
        return event_id

    def state(self, kind: str, name: str, after: int | None = None, output: dict | None = None) -> int:
        entered = self.add(f"{kind}StateEntered", after, name=name, input="{}")
        return self.add(f"{kind}StateExited", entered, name=name, output=json.dumps(output or {}))


def test_parallel_branches_and_map_processor_become_clusters_with_their_own_markers():
    graph = definition_graph(DEFINITION)
    by_name = {n.name: n for n in graph.nodes if n.type not in ("Start", "End", "Cluster")}
    checks, evaluate, score = by_name["Checks"], by_name["Evaluate"], by_name["Score"]
    # THEN each branch is a cluster inside the Parallel, and the Map's processor a cluster inside the Map
    branch = next(n for n in graph.nodes if n.id == evaluate.parent)
    assert branch.type == "Cluster" and branch.parent == checks.id
    assert next(n for n in graph.nodes if n.id == score.parent).parent == by_name["Each item"].id
    edges = {(e.source, e.target, e.kind) for e in graph.edges}
    # AND the Train -> Checks edge arrives at the Parallel's start marker, which fans out to both branches
    assert (by_name["Train"].id, checks.id + ":start", "next") in edges
    assert {(checks.id + ":start", by_name[n].id, "start") for n in ("Evaluate", "Baseline")} <= edges
    # AND Catch, Choice and Default edges are kept with their labels
    catch = next(e for e in graph.edges if e.kind == "catch")
    assert catch.label == "catch States.ALL" and catch.target == by_name["Notify failure"].id
    assert any(e.kind == "choice" and "$.ok BooleanEquals True" in e.label for e in graph.edges)
    assert any(e.kind == "default" and e.target == by_name["Notify failure"].id for e in graph.edges)


def test_a_retried_then_caught_task_is_caught_and_the_fail_state_failed():
    # GIVEN a task that is throttled once (retried), then fails for good and is caught into a notify + Fail state
    h = History()
    h.add("ExecutionStarted")
    h.state("Pass", "Prepare")
    entered = h.add("TaskStateEntered", name="Train", input="{}")
    h.add("TaskScheduled", resourceType="sagemaker", resource="createTrainingJob.sync", parameters='{"TrainingJobName": "t-0"}')
    h.add("TaskFailed", error="ThrottlingException", cause="Rate exceeded")
    h.add("TaskScheduled", resourceType="sagemaker", resource="createTrainingJob.sync", parameters='{"TrainingJobName": "t-1"}')
    h.add("TaskFailed", error="States.TaskFailed", cause='{"FailureReason": "AlgorithmError: bad learning_rate"}')
    exited = h.add("TaskStateExited", name="Train", output="{}")
    notify = h.state("Task", "Notify failure", exited)
    h.add("FailStateEntered", notify, name="Failed", input="{}")
    h.add("ExecutionFailed", error="States.TaskFailed", cause="...")
    # WHEN the console reads it
    runs = state_runs(h.events, definition_graph(DEFINITION), "FAILED")
    # THEN
    assert runs.status["Prepare"] == "succeeded"
    assert runs.status["Train"] == "caught"
    train = runs.visits["Train"][0]
    assert train.retries == 1 and train.error == "States.TaskFailed" and "bad learning_rate" in train.cause
    assert train.parameters == {"TrainingJobName": "t-1"}
    assert runs.status["Notify failure"] == "succeeded"
    assert runs.status["Failed"] == "failed"
    assert runs.status.get("Checks", "not-reached") == "not-reached"
    assert entered == train.entered["id"]


def test_a_task_that_succeeds_after_a_retry_is_retried():
    h = History()
    h.add("ExecutionStarted")
    h.add("TaskStateEntered", name="Train", input="{}")
    h.add("TaskScheduled", resourceType="sagemaker", resource="createTrainingJob.sync", parameters="{}")
    h.add("TaskFailed", error="ThrottlingException", cause="Rate exceeded")
    h.add("TaskScheduled", resourceType="sagemaker", resource="createTrainingJob.sync", parameters="{}")
    h.add("TaskSucceeded", resourceType="sagemaker", output="{}")
    h.add("TaskStateExited", name="Train", output='{"ok": true}')
    runs = state_runs(h.events, definition_graph(DEFINITION), "RUNNING")
    assert runs.status["Train"] == "retried"
    assert runs.visits["Train"][0].output == {"ok": True}


def test_an_uncaught_failure_in_a_parallel_branch_fails_the_branch_state_and_the_parallel():
    h = History()
    h.add("ExecutionStarted")
    parallel = h.add("ParallelStateEntered", name="Checks", input="{}")
    started = h.add("ParallelStateStarted", parallel)
    evaluate = h.add("TaskStateEntered", started, name="Evaluate", input="{}")
    baseline = h.add("TaskStateEntered", started, name="Baseline", input="{}")
    scheduled = h.add("TaskScheduled", evaluate, resourceType="lambda", parameters="{}")
    h.add("TaskScheduled", baseline, resourceType="lambda", parameters="{}")
    failed = h.add("TaskFailed", scheduled, error="Lambda.Unknown", cause="boom")
    h.add("ParallelStateFailed", failed)
    h.add("ExecutionFailed", error="Lambda.Unknown", cause="boom")
    runs = state_runs(h.events, definition_graph(DEFINITION), "FAILED")
    assert runs.status["Evaluate"] == "failed"
    assert runs.status["Checks"] == "failed"
    assert runs.status["Baseline"] == "aborted"  # left running when the branch next to it failed


def test_map_iterations_running_side_by_side_are_told_apart_by_their_event_chain():
    # GIVEN two iterations whose events interleave (MaxConcurrency 2), the second failing and caught by nothing
    h = History()
    h.add("ExecutionStarted")
    entered = h.add("MapStateEntered", name="Each item", input="{}")
    started = h.add("MapStateStarted", entered)
    it0 = h.add("MapIterationStarted", started, name="Each item", index=0)
    s0 = h.add("TaskStateEntered", it0, name="Score", input='{"item": 0}')
    it1 = h.add("MapIterationStarted", started, name="Each item", index=1)
    s1 = h.add("TaskStateEntered", it1, name="Score", input='{"item": 1}')
    ok = h.add("TaskSucceeded", h.add("TaskScheduled", s0, resourceType="lambda", parameters="{}"), output="{}")
    bad = h.add("TaskFailed", h.add("TaskScheduled", s1, resourceType="lambda", parameters="{}"), error="E", cause="item 1 broke")
    done0 = h.add("MapIterationSucceeded", h.add("TaskStateExited", ok, name="Score", output="{}"), name="Each item", index=0)
    h.add("MapIterationFailed", bad, name="Each item", index=1)
    h.add("MapStateFailed", done0)
    h.add("ExecutionFailed", error="States.ExceedToleratedFailureThreshold", cause="...")
    runs = state_runs(h.events, definition_graph(DEFINITION), "FAILED")
    by_index = {v.iteration[0][1]: v for v in runs.visits["Score"]}
    assert by_index[0].status == "succeeded" and by_index[0].input == {"item": 0}
    assert by_index[1].status == "failed" and by_index[1].cause == "item 1 broke"
    assert runs.iterations["Each item"] == {0: "succeeded", 1: "failed"}
    assert runs.status["Score"] == "failed" and runs.status["Each item"] == "failed"


def test_a_state_entered_but_not_exited_while_the_execution_runs_is_running():
    h = History()
    h.add("ExecutionStarted")
    h.state("Pass", "Prepare")
    h.add("TaskStateEntered", name="Train", input="{}")
    h.add("TaskScheduled", resourceType="sagemaker", parameters="{}")
    runs = state_runs(h.events, definition_graph(DEFINITION), "RUNNING")
    graph = definition_graph(DEFINITION)
    status = runs.node_status(graph)
    assert runs.status["Train"] == "running"
    assert status[graph.ids_by_name["Train"][0]] == "running"
    assert status[graph.ids_by_name["Done"][0]] == "not-reached"
