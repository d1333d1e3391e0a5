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


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return h.copy_project(tmp_path_factory.mktemp("operations"))


@pytest.fixture()
def fresh(tmp_path):
    return h.copy_project(tmp_path)


def test_the_project_passes_the_operations_checks(project):
    assert messages(project) == []


def test_a_state_machine_without_logging_or_tracing_is_reported(fresh):
    edit_template(fresh, "      Tracing: {Enabled: true}\n", "")
    found = messages(fresh)
    assert any("TrainingStateMachine" in m and "is not traced" in m for m in found), found


def test_an_alarm_without_actions_is_reported_in_the_template_and_in_a_state_machine(fresh):
    text = (fresh / "template.yaml").read_text()
    start = text.index("  DriftAlarm:")
    end = text.index("AlarmActions: [!Ref NotificationTopic]\n", start) + len("AlarmActions: [!Ref NotificationTopic]\n")
    (fresh / "template.yaml").write_text(text[:start] + re.sub(r"\s+AlarmActions: \[!Ref NotificationTopic\]\n", "\n",
                                                               text[start:end]) + text[end:])
    machine_id, path, definition, state_path, state = h.find_task(fresh, "cloudwatch:putMetricAlarm")
    del state["Parameters"]["AlarmActions"]
    h.write_json(path, definition)
    found = messages(fresh)
    assert any("DriftAlarm" in m and "has no AlarmActions" in m for m in found), found
    assert any(path.name in m and f"'{state_path[-1]}'" in m and "without AlarmActions" in m for m in found), found


def test_an_untagged_resource_and_an_untagged_sagemaker_create_are_reported(fresh):
    edit_template(fresh, """    Type: AWS::SNS::Topic
    Properties:
      Tags:
        - {Key: Project, Value: sagestep}""", """    Type: AWS::SNS::Topic
    Properties:
      Tags:
        - {Key: Projekt, Value: sagestep}""")
    machine_id, path, definition, state_path, state = h.find_task(fresh, "createTrainingJob")
    state["Parameters"]["Tags"] = [t for t in state["Parameters"]["Tags"] if t["Key"] != "CostCenter"]
    h.write_json(path, definition)
    found = messages(fresh)
    assert any("NotificationTopic" in m and "is untagged: missing Project" in m for m in found), found
    assert any(path.name in m and "createTrainingJob creates an untagged resource: add Tags CostCenter" in m for m in found), found


def test_object_lock_retention_below_the_parameter_or_not_compliance_is_reported(fresh):
    edit_template(fresh, "DefaultRetention: {Mode: COMPLIANCE, Days: !Ref AuditRetentionDays}",
                  "DefaultRetention: {Mode: GOVERNANCE, Days: 30}")
    found = messages(fresh)
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
