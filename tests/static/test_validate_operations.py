"""`sagestep validate` family `operations` (issue 14) catches each fault: GIVEN a copy of the real project with ONE
fault, WHEN the family runs, THEN it reports it naming the resource or state; the real project has none. Also
samconfig.toml's environments deploy the template's parameters."""

from __future__ import annotations

import re
import tomllib

import pytest

from sagestep import validate
from sagestep.stack import template as tpl
from tests.conftest import REPO_ROOT
from tests.static import validate_helpers as h

pytestmark = pytest.mark.static


def messages(root) -> list[str]:
    return [f.render() for f in validate.run(root / "template.yaml", skip_sam=True, only={"operations"})]


def edit_template(root, old: str, new: str) -> None:
    text = (root / "template.yaml").read_text()
    assert old in text, old
    (root / "template.yaml").write_text(text.replace(old, new, 1))


@pytest.fixture()
def fresh(tmp_path):
    return h.copy_project(tmp_path)


def test_the_project_passes_the_operations_checks():
    assert messages(REPO_ROOT) == []


def test_each_operations_fault_is_reported_naming_its_resource_or_state(fresh):
    # GIVEN one copy with independent faults (one translation and check run for all: each costs seconds)
    # a state machine without tracing
    edit_template(fresh, "      Tracing: {Enabled: true}\n", "")
    # an alarm of the template and one a state machine puts, without actions
    text = (fresh / "template.yaml").read_text()
    start = text.index("  DriftAlarm:")
    end = text.index("AlarmActions: [!Ref NotificationTopic]\n", start) + len("AlarmActions: [!Ref NotificationTopic]\n")
    (fresh / "template.yaml").write_text(text[:start] + re.sub(r"\s+AlarmActions: \[!Ref NotificationTopic\]\n", "\n",
                                                               text[start:end]) + text[end:])
    alarm_machine, alarm_path, definition, alarm_state, state = h.find_task(fresh, "cloudwatch:putMetricAlarm")
    del state["Parameters"]["AlarmActions"]
    h.write_json(alarm_path, definition)
    # a resource missing a tag of the strategy, and a SageMaker create missing one
    edit_template(fresh, """    Type: AWS::SNS::Topic
    Properties:
      Tags:
        - {Key: Project, Value: sagestep}""", """    Type: AWS::SNS::Topic
    Properties:
      Tags:
        - {Key: Projekt, Value: sagestep}""")
    _, job_path, definition, _, state = h.find_task(fresh, "createTrainingJob")
    state["Parameters"]["Tags"] = [t for t in state["Parameters"]["Tags"] if t["Key"] != "CostCenter"]
    h.write_json(job_path, definition)
    # an audit bucket locked in GOVERNANCE mode for 30 days
    edit_template(fresh, "DefaultRetention: {Mode: COMPLIANCE, Days: !Ref AuditRetentionDays}",
                  "DefaultRetention: {Mode: GOVERNANCE, Days: 30}")
    # WHEN the family runs THEN each fault is reported
    found = messages(fresh)
    assert any("TrainingStateMachine" in m and "is not traced" in m for m in found), found
    assert any("DriftAlarm" in m and "has no AlarmActions" in m for m in found), found
    assert any(alarm_path.name in m and f"'{alarm_state[-1]}'" in m and "without AlarmActions" in m for m in found), found
    assert any("NotificationTopic" in m and "is untagged: missing Project" in m for m in found), found
    assert any(job_path.name in m and "createTrainingJob creates an untagged resource: add Tags CostCenter" in m for m in found), found
    assert any("AuditBucket" in m and "COMPLIANCE" in m for m in found), found
    assert any("AuditBucket" in m and "below parameter AuditRetentionDays (2557)" in m for m in found), found


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_samconfig_deploys_each_environment_with_the_templates_parameters(environment):
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())[environment]["deploy"]["parameters"]
    parameters = tpl.load_template(REPO_ROOT / "template.yaml")["Parameters"]
    assert config["stack_name"] == f"sagestep-{environment}"
    assert set(config["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}
    assert config["confirm_changeset"] is (environment == "prod")
    overrides = dict(item.split("=", 1) for item in config["parameter_overrides"])
    assert overrides["Environment"] == environment
    for name, value in overrides.items():
        assert name in parameters, f"samconfig.toml [{environment}]: {name} is not a template parameter"
        allowed = parameters[name].get("AllowedValues")
        assert allowed is None or value in [str(a) for a in allowed], f"{name}={value} not in {allowed}"
    assert int(overrides["AuditRetentionDays"]) >= 2557
