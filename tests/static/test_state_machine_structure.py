"""Structural contracts of every state machine in template.yaml, checked without AWS (through `sagestep.validate`)."""

from __future__ import annotations

import pytest

from sagestep.validate import asl_structure, parameters
from sagestep.validate.project import Project
from tests.conftest import REPO_ROOT

PROJECT = Project(REPO_ROOT / "template.yaml")
MACHINES = {m.logical_id: m for m in PROJECT.machines}


@pytest.mark.parametrize("logical_id", sorted(MACHINES))
def test_transitions_reachability_and_placeholders(logical_id):
    found = asl_structure.check_machine(PROJECT, MACHINES[logical_id])
    assert found == [], "\n".join(f.render() for f in found)


@pytest.mark.parametrize("logical_id", sorted(MACHINES))
def test_service_task_parameters_match_the_botocore_model(logical_id):
    found = parameters.check_machine(MACHINES[logical_id])
    assert found == [], "\n".join(f.render() for f in found)
