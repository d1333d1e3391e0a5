"""`sagestep validate` proves each EventBridge rule: its pattern matches the stored sample event, and the input its
target gets is what the target machine's states read. GIVEN a copy of the project with ONE fault in a rule, THEN the
rules check names it."""

from __future__ import annotations

import re

import pytest

from sagestep import validate
from tests.static import validate_helpers as h

pytestmark = pytest.mark.static


def rule_findings(root):
    return [f.render() for f in validate.run(root / "template.yaml", skip_sam=True, only={"rules"})]


@pytest.fixture()
def project(tmp_path):
    return h.copy_project(tmp_path)


def _rewrite(project, pattern: str, replacement: str) -> None:
    text = (project / "template.yaml").read_text()
    changed = re.sub(pattern, replacement, text, count=1)
    assert changed != text, f"{pattern!r} not found in template.yaml"
    (project / "template.yaml").write_text(changed)


def test_the_project_rules_prove_out(project):
    assert rule_findings(project) == []


def test_an_input_transformer_that_drops_a_field_the_machine_reads_is_reported(project):
    # the deployment reads $.ModelPackageArn; the transformed event now carries another name
    _rewrite(project, r'InputTemplate: \'\{"ModelPackageArn": "<arn>"\}\'', "InputTemplate: '{\"PackageArn\": \"<arn>\"}'")
    messages = rule_findings(project)
    assert any("started by rule DeploymentStateMachineDeployOnApproval" in m and "ModelPackageArn" in m for m in messages), messages


def test_a_pattern_that_never_matches_its_sample_event_is_reported(project):
    _rewrite(project, r"ModelApprovalStatus: \[Approved\]", "ModelApprovalStatus: [Approve]")
    messages = rule_findings(project)
    assert any("does not match the pattern of rule DeploymentStateMachineDeployOnApproval" in m for m in messages), messages


def test_an_invalid_pattern_is_reported_as_eventbridge_would_refuse_it(project):
    _rewrite(project, r"detail-type: \[Object Created\]", "detail-type: Object Created")
    messages = rule_findings(project)
    assert any("must be an object or an array" in m for m in messages), messages


def test_a_target_input_that_is_not_json_is_reported(project):
    _rewrite(project, r'InputTemplate: \'\{"ModelPackageArn": "<arn>"\}\'', "InputTemplate: '{\"ModelPackageArn\": <arn>'")
    messages = rule_findings(project)
    assert any("is not JSON" in m and "InvalidExecutionInput" in m for m in messages), messages


def test_a_rule_without_a_sample_event_is_reported(project):
    (project / "events" / "rule_deployment_state_machine_deploy_on_approval.json").unlink()
    messages = rule_findings(project)
    assert any("has no sample event events/rule_deployment_state_machine_deploy_on_approval.json" in m for m in messages), messages
