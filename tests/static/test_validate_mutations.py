"""`sagestep validate` catches each fault: GIVEN a copy of the real template and state machines with ONE fault,
WHEN the check family that owns it runs, THEN it reports the fault naming the file and the state or resource."""

from __future__ import annotations

import re

import pytest

from sagestep import validate
from sagestep.validate.project import snake
from tests.static import validate_helpers as h

pytestmark = pytest.mark.static


def findings(root, *families):
    return validate.run(root / "template.yaml", skip_sam=True, only=set(families))


def rendered(found, check):
    return [f.render() for f in found if f.check == check]


@pytest.fixture()
def project(tmp_path):
    return h.copy_project(tmp_path)


def test_a_copy_without_faults_has_no_findings_in_the_mutated_families(project):
    # The baseline for every mutation below: only the injected fault may appear.
    found = findings(project, "asl", "parameters", "iam")
    assert found == [], "\n".join(f.render() for f in found)


def test_getatt_to_a_missing_resource_in_definition_substitutions(project):
    machine_id, resource = next((lid, r) for lid, r in h.machines(project).items()
                                if any("Fn::GetAtt" in str(v) for v in r["Properties"].get("DefinitionSubstitutions", {}).values()))
    key = next(k for k, v in resource["Properties"]["DefinitionSubstitutions"].items() if isinstance(v, dict) and "Fn::GetAtt" in v)
    node = h.node_at(h.compose(project), ["Resources", machine_id, "Properties", "DefinitionSubstitutions", key])
    lines = (project / "template.yaml").read_text().splitlines(keepends=True)
    lines[node.start_mark.line] = re.sub(r"!GetAtt \w+\.", "!GetAtt NoSuchResource.", lines[node.start_mark.line])
    (project / "template.yaml").write_text("".join(lines))

    messages = rendered(findings(project, "template"), "template")

    assert any(m.startswith(f"template.yaml: {machine_id}.Properties.DefinitionSubstitutions.{key} (line ")
               and "cfn-lint" in m and "NoSuchResource" in m for m in messages), messages


def test_missing_role_arn_in_create_training_job(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob")
    del state["Parameters"]["RoleArn"]
    h.write_json(path, definition)

    messages = rendered(findings(project, "parameters"), "parameters")

    assert any(m.startswith(f'statemachines/{path.name}: {machine_id}, state "{" > ".join(state_path)}": ')
               and "RoleArn: required field is missing" in m for m in messages), messages


def test_unknown_parameters_field(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob")
    state["Parameters"]["TrainingJobTimeout"] = 3600
    h.write_json(path, definition)

    messages = rendered(findings(project, "parameters"), "parameters")

    assert any(f'state "{" > ".join(state_path)}"' in m and "TrainingJobTimeout: unknown field" in m for m in messages), messages


def test_enum_value_that_does_not_exist(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob")
    state["Parameters"]["AlgorithmSpecification"]["TrainingInputMode"] = "Files"
    h.write_json(path, definition)

    messages = rendered(findings(project, "parameters"), "parameters")

    assert any(f'state "{" > ".join(state_path)}"' in m and "AlgorithmSpecification.TrainingInputMode: 'Files' is not one of" in m
               for m in messages), messages


def test_removed_iam_pass_role(project):
    machine_id, *_ = h.find_task(project, "createTrainingJob")
    h.remove_action(project, machine_id, "iam:PassRole")

    messages = rendered(findings(project, "iam"), "iam")

    assert any("does not grant iam:PassRole on arn:aws:iam::123456789012:role/" in m and f"needed by {machine_id}, state" in m
               for m in messages), messages


def test_removed_events_put_targets(project):
    machine_id, *_ = h.find_task(project, "createTrainingJob")
    h.remove_action(project, machine_id, "events:PutTargets")

    messages = rendered(findings(project, "iam"), "iam")

    assert any("does not grant events:PutTargets on arn:aws:events:us-east-1:123456789012:rule/StepFunctionsGetEventsForSageMaker" in m
               and f"needed by {machine_id}, state" in m for m in messages), messages


def test_next_to_a_missing_state(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob")
    state["Next"] = "No such state"
    h.write_json(path, definition)

    messages = rendered(findings(project, "asl"), "asl")

    assert any(m.startswith(f'statemachines/{path.name}: {machine_id}, state "{" > ".join(state_path)}": Next goes to \'No such state\'')
               for m in messages), messages


def test_job_name_built_from_a_long_unbounded_input(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob")
    sample = h.json.loads(next((project / "events").glob(f"{snake(machine_id)}_*.json")).read_text())
    field = next(k for k, v in sample.items() if isinstance(v, str))
    state["Parameters"]["TrainingJobName.$"] = f"States.Format('{{}}-train-{{}}', $.{field}, $$.State.RetryCount)"
    h.write_json(path, definition)

    messages = rendered(findings(project, "naming"), "naming")

    # "grows with the execution input" where probes of several input lengths reach the state, else "can reach N
    # characters" for the longest probe that does: either way the unbounded name is found
    assert any(f'state "{" > ".join(state_path)}"' in m and "TrainingJobName" in m
               and ("grows with the execution input" in m or "can reach" in m) for m in messages), messages


def test_retried_create_without_retry_count_in_the_name(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob")
    state["Parameters"]["TrainingJobName.$"] = "States.Format('{}-train', $.Run.JobPrefix)"
    state["Retry"] = [{"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "MaxAttempts": 2}]
    h.write_json(path, definition)

    messages = rendered(findings(project, "naming"), "naming")

    assert any(f'state "{" > ".join(state_path)}"' in m and "build the name with $$.State.RetryCount" in m for m in messages), messages


def test_sync_task_keeping_the_whole_describe_output(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob.sync")
    state.pop("ResultSelector", None)
    state["ResultPath"] = "$.Training"
    h.write_json(path, definition)

    messages = rendered(findings(project, "naming"), "naming")

    assert any(f'state "{" > ".join(state_path)}"' in m and "256 KB" in m for m in messages), messages


def test_wildcard_resource_without_a_why(project):
    text = (project / "template.yaml").read_text()
    lines = text.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if 'Resource: "*"' in line and "# why" in line)
    lines[index] = lines[index].split("#", 1)[0].rstrip() + "\n"
    (project / "template.yaml").write_text("".join(lines))

    messages = rendered(findings(project, "iam"), "iam")

    assert any(f"(line {index + 1}): an Allow statement grants Resource \"*\" without a `# why" in m for m in messages), messages


def test_placeholder_without_substitution_and_unreachable_state(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob")
    scope = definition
    state["Parameters"]["RoleArn"] = "${NoSuchRoleArn}"
    scope["States"]["Orphan"] = {"Type": "Succeed"}
    h.write_json(path, definition)

    messages = rendered(findings(project, "asl"), "asl")

    assert any("${NoSuchRoleArn} has no entry in" in m for m in messages), messages
    assert any('state "Orphan": unreachable' in m for m in messages), messages
