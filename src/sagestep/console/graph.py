"""A state machine definition as a graph, and what one execution did in each state.

`definition_graph(asl)` turns an ASL document into nodes (states, plus start/end markers of the machine and of every
Parallel and Map scope) and edges (Next, Choice rules, Default, Catch), with Parallel branches and Map item
processors as nested clusters. `state_runs(history, graph, status)` attributes every history event to the state and
Map iteration it belongs to (by following `previousEventId`, which is how Step Functions chains the events of one
flow) and classifies each state as the Step Functions console does: succeeded, failed, caught, retried, running,
aborted or not reached. Pure functions: the browser lays the graph out (dagre) and colours it from this.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

# Ordered from most to least telling: a state seen several times (loops, Map iterations) shows the first that applies.
STATUSES = ("running", "failed", "caught", "retried", "aborted", "succeeded", "not-reached")

_ATTEMPT = {"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"}
_SUCCESS = {"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded", "ParallelStateSucceeded", "MapStateSucceeded"}
_FAILURE = {
    "TaskFailed", "TaskStartFailed", "TaskSubmitFailed", "TaskTimedOut",
    "LambdaFunctionFailed", "LambdaFunctionStartFailed", "LambdaFunctionScheduleFailed", "LambdaFunctionTimedOut",
    "ActivityFailed", "ActivityScheduleFailed", "ActivityTimedOut",
    "ParallelStateFailed", "MapStateFailed", "EvaluationFailed", "ExecutionFailed", "FailStateEntered",
}
_ABORT = {"TaskStateAborted", "WaitStateAborted", "ParallelStateAborted", "MapStateAborted", "ExecutionAborted", "ExecutionTimedOut"}


@dataclasses.dataclass
class Node:
    id: str
    name: str
    type: str  # an ASL state type, or "Start" / "End" (markers), or "Cluster" (a Parallel branch / Map processor)
    parent: str | None
    resource: str = ""
    comment: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Edge:
    source: str
    target: str
    kind: str  # next | choice | default | catch | start | end
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    ids_by_name: dict[str, list[str]]
    parents: dict[str, str | None]  # state name -> enclosing Parallel/Map state name
    types: dict[str, str]  # state name -> ASL type
    states: dict[str, dict[str, Any]]  # state name -> its ASL definition
    order: list[str] = dataclasses.field(default_factory=list)  # state names, nested states right after their container

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [n.to_dict() for n in self.nodes], "edges": [e.to_dict() for e in self.edges]}


def definition_graph(definition: str | Mapping[str, Any]) -> Graph:
    asl = json.loads(definition) if isinstance(definition, str) else definition
    graph = Graph(nodes=[], edges=[], ids_by_name={}, parents={}, types={}, states={})
    counter = iter(range(1_000_000))

    def new_id(prefix: str) -> str:
        return f"{prefix}{next(counter)}"

    def add_scope(scope: Mapping[str, Any], parent: str | None, owner: str | None, start_id: str, end_id: str) -> None:
        states: Mapping[str, Any] = scope.get("States") or {}
        ids = {name: new_id("s") for name in states}
        for name, state in states.items():
            kind = str(state.get("Type", "?"))
            node_id = ids[name]
            position = graph.order.index(owner) + 1 + sum(1 for n in graph.order if graph.parents.get(n) == owner) if owner in graph.order else len(graph.order)
            graph.order.insert(position, name)
            graph.ids_by_name.setdefault(name, []).append(node_id)
            graph.parents[name] = owner
            graph.types[name] = kind
            graph.states[name] = dict(state)
            resource = str(state.get("Resource", ""))
            graph.nodes.append(Node(node_id, name, kind, parent, _short_resource(resource), str(state.get("Comment", ""))))
        if scope.get("StartAt") in ids:
            graph.edges.append(Edge(start_id, ids[scope["StartAt"]], "start"))
        for name, state in states.items():
            source = ids[name]
            kind = state.get("Type")
            exit_id = source
            if kind in ("Parallel", "Map"):
                exit_id = _add_container(name, state, source, parent)
            if state.get("Next") in ids:
                graph.edges.append(Edge(exit_id, ids[state["Next"]], "next"))
            if state.get("End") or kind in ("Succeed", "Fail"):
                graph.edges.append(Edge(exit_id, end_id, "end"))
            for rule in state.get("Choices") or []:
                if rule.get("Next") in ids:
                    graph.edges.append(Edge(source, ids[rule["Next"]], "choice", _choice_label(rule)))
            if state.get("Default") in ids:
                graph.edges.append(Edge(source, ids[state["Default"]], "default", "default"))
            for catcher in state.get("Catch") or []:
                if catcher.get("Next") in ids:
                    graph.edges.append(Edge(exit_id, ids[catcher["Next"]], "catch", "catch " + ", ".join(catcher.get("ErrorEquals") or [])))

    def _add_container(name: str, state: Mapping[str, Any], cluster_id: str, parent: str | None) -> str:
        """A Parallel or Map state is a cluster: its own start and end markers around its branches / processor."""
        # The state's node becomes the cluster; its start marker is where incoming edges arrive.
        for node in graph.nodes:
            if node.id == cluster_id:
                node.parent = parent
        start, end = cluster_id + ":start", cluster_id + ":end"
        graph.nodes.append(Node(start, name, "Start", cluster_id))
        graph.nodes.append(Node(end, name, "End", cluster_id))
        # Incoming edges were (or will be) drawn to the cluster id; redirect them to the start marker.
        redirects[cluster_id] = start
        if state.get("Type") == "Parallel":
            for index, branch in enumerate(state.get("Branches") or []):
                branch_id = f"{cluster_id}:b{index}"
                graph.nodes.append(Node(branch_id, f"branch {index + 1}", "Cluster", cluster_id))
                branch_start, branch_end = branch_id + ":start", branch_id + ":end"
                add_scope(branch, branch_id, name, branch_start, branch_end)
                # a branch's own start/end are the Parallel's markers
                aliases[branch_start], aliases[branch_end] = start, end
        else:
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            processor_id = f"{cluster_id}:items"
            graph.nodes.append(Node(processor_id, "each item", "Cluster", cluster_id))
            add_scope(processor, processor_id, name, processor_id + ":start", processor_id + ":end")
            aliases[processor_id + ":start"], aliases[processor_id + ":end"] = start, end
        return end

    redirects: dict[str, str] = {}
    aliases: dict[str, str] = {}
    graph.nodes.append(Node("start", "Start", "Start", None))
    graph.nodes.append(Node("end", "End", "End", None))
    add_scope(asl, None, None, "start", "end")
    for edge in graph.edges:
        edge.source = aliases.get(edge.source, edge.source)
        edge.target = aliases.get(edge.target, edge.target)
        edge.target = redirects.get(edge.target, edge.target)
    return graph


def _short_resource(resource: str) -> str:
    if ":states:::" in resource:
        return resource.split(":states:::", 1)[1]
    if ":function:" in resource:
        return "lambda:" + resource.rsplit(":function:", 1)[1]
    return resource


def _choice_label(rule: Mapping[str, Any]) -> str:
    if "Condition" in rule:  # JSONata
        return str(rule["Condition"])[:60]
    variable = str(rule.get("Variable", ""))
    for key, value in rule.items():
        if key not in ("Variable", "Next", "Comment") and not isinstance(value, (list, dict)):
            return f"{variable} {key} {value}"[:60]
    return "rule"


# ---------------------------------------------------------------------------------------------- history


@dataclasses.dataclass
class Attempt:
    scheduled: dict[str, Any] | None
    outcome: dict[str, Any] | None

    @property
    def failed(self) -> bool:
        return self.outcome is not None and self.outcome["type"] in _FAILURE


@dataclasses.dataclass
class Visit:
    """One entry into a state (a loop or a Map iteration enters a state again)."""

    state: str
    iteration: tuple[tuple[str, int], ...]
    entered: dict[str, Any]
    exited: dict[str, Any] | None = None
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    failure: dict[str, Any] | None = None  # the last failure event (its details hold error and cause)
    status: str = "running"

    @property
    def retries(self) -> int:
        return sum(1 for a in self.attempts[:-1] if a.failed)

    @property
    def error(self) -> str | None:
        return _details(self.failure).get("error") if self.failure else None

    @property
    def cause(self) -> str | None:
        return _details(self.failure).get("cause") if self.failure else None

    @property
    def input(self) -> Any:
        return _maybe_json(_details(self.entered).get("input"))

    @property
    def output(self) -> Any:
        return _maybe_json(_details(self.exited).get("output")) if self.exited else None

    @property
    def parameters(self) -> Any:
        for attempt in reversed(self.attempts):
            if attempt.scheduled is not None:
                return _maybe_json(_details(attempt.scheduled).get("parameters"))
        return None

    @property
    def map_index(self) -> str:
        return " / ".join(f"{name}[{index}]" for name, index in self.iteration)


@dataclasses.dataclass
class StateRuns:
    visits: dict[str, list[Visit]]  # state name -> visits in order
    status: dict[str, str]  # state name -> aggregate status
    iterations: dict[str, dict[int, str]]  # Map state name -> iteration index -> status

    def node_status(self, graph: Graph) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, ids in graph.ids_by_name.items():
            for node_id in ids:
                out[node_id] = self.status.get(name, "not-reached")
        return out


def _details(event: Mapping[str, Any] | None) -> dict[str, Any]:
    if not event:
        return {}
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def state_runs(history: Iterable[Mapping[str, Any]], graph: Graph, execution_status: str) -> StateRuns:
    events = sorted((dict(e) for e in history), key=lambda e: int(e.get("id", 0)))
    context: dict[int, tuple[str | None, tuple[tuple[str, int], ...]]] = {}
    open_visit: dict[tuple[str, tuple[tuple[str, int], ...]], Visit] = {}
    visits: dict[str, list[Visit]] = {}
    iterations: dict[str, dict[int, str]] = {}
    last: tuple[str | None, tuple[tuple[str, int], ...]] = (None, ())

    def strip(iteration: tuple[tuple[str, int], ...], map_state: str | None) -> tuple[tuple[str, int], ...]:
        for position, (name, _) in enumerate(iteration):
            if name == map_state:
                return iteration[:position]
        return iteration

    def open_container(state: str | None, iteration: tuple[tuple[str, int], ...]) -> tuple[str | None, tuple[tuple[str, int], ...]]:
        """The innermost Parallel/Map around (or being) `state` whose visit is still open."""
        while state is not None:
            if graph.types.get(state) == "Map":
                iteration = strip(iteration, state)
            if graph.types.get(state) in ("Parallel", "Map") and (state, iteration) in open_visit:
                return state, iteration
            state = graph.parents.get(state)
        return None, iteration

    for event in events:
        kind = str(event.get("type", ""))
        details = _details(event)
        previous = int(event.get("previousEventId") or 0)
        state, iteration = context.get(previous, last) if previous else last
        if kind.endswith("StateEntered"):
            state = details.get("name", state)
        elif kind.startswith("MapIteration"):
            map_state, outer = open_container(details.get("name") or state, iteration)
            index = int(details.get("index", 0))
            iteration = outer + ((map_state, index),) if map_state else iteration
            state = map_state
            if map_state is not None:
                done = {"MapIterationSucceeded": "succeeded", "MapIterationFailed": "failed", "MapIterationAborted": "aborted"}
                iterations.setdefault(map_state, {})[index] = done.get(kind, "running")
        elif kind.startswith(("MapState", "ParallelState", "MapRun")):
            state, iteration = open_container(details.get("name") or state, iteration)
        context[int(event.get("id", 0))] = (state, iteration)
        last = (state, iteration)
        if state is None:
            continue
        key = (state, iteration)
        if kind.endswith("StateEntered"):
            visit = Visit(state=state, iteration=iteration, entered=event)
            open_visit[key] = visit
            visits.setdefault(state, []).append(visit)
            if kind == "FailStateEntered":
                visit.failure = event
                visit.status = "failed"
            continue
        visit = open_visit.get(key)
        if visit is None:
            continue
        visit.events.append(event)
        if kind in _ATTEMPT:
            visit.attempts.append(Attempt(scheduled=event, outcome=None))
        elif kind in _SUCCESS or kind in _FAILURE:
            if kind in ("ParallelStateSucceeded", "MapStateSucceeded", "ParallelStateFailed", "MapStateFailed", "ExecutionFailed", "EvaluationFailed") or not visit.attempts or visit.attempts[-1].outcome is not None:
                visit.attempts.append(Attempt(scheduled=None, outcome=event))
            else:
                visit.attempts[-1].outcome = event
            if kind in _FAILURE:
                visit.failure = event
        elif kind in _ABORT:
            visit.status = "aborted"
        if kind.endswith("StateExited"):
            visit.exited = event
            del open_visit[key]

    terminal = execution_status not in ("RUNNING", "PENDING_REDRIVE")
    for state_visits in visits.values():
        for visit in state_visits:
            visit.status = _visit_status(visit, terminal)
    status = {name: _aggregate(v.status for v in state_visits) for name, state_visits in visits.items()}
    return StateRuns(visits=visits, status=status, iterations=iterations)


def _visit_status(visit: Visit, terminal: bool) -> str:
    if visit.entered.get("type") == "FailStateEntered":
        return "failed"
    last_failed = bool(visit.attempts) and visit.attempts[-1].failed
    if visit.exited is None:
        if visit.status == "aborted":
            return "aborted"
        if not terminal:
            return "running"
        return "failed" if last_failed or visit.failure is not None else "aborted"
    if last_failed:
        return "caught"
    if visit.retries:
        return "retried"
    return "succeeded"


def _aggregate(statuses: Iterable[str]) -> str:
    seen = set(statuses)
    for status in STATUSES:
        if status in seen:
            return status
    return "not-reached"
