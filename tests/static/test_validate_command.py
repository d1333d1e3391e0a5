"""`sagestep validate` on the real project: every check family, `sam validate --lint` included, must pass."""

from __future__ import annotations

import os

import pytest

from sagestep.cli import main
from sagestep.validate import template_checks
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.static


def test_sagestep_validate_passes_on_the_project(capsys, monkeypatch):
    # GIVEN the repository as it is (make test installs .venv-sam; CI runs make test)
    monkeypatch.chdir(REPO_ROOT)
    skip_sam = template_checks.find_sam(REPO_ROOT) is None and os.environ.get("CI") != "true"
    # WHEN
    code = main(["validate", *(["--skip-sam"] if skip_sam else [])])
    # THEN
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("validate: OK (")


def test_findings_are_printed_as_file_location_message_and_exit_1(tmp_path, capsys, monkeypatch):
    from tests.static import validate_helpers as h

    root = h.copy_project(tmp_path)
    machine_id, path, definition, state_path, state = h.find_task(root, "createTrainingJob")
    state["Next"] = "Nowhere"
    h.write_json(path, definition)
    monkeypatch.chdir(root)

    code = main(["validate", "--skip-sam"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert f'statemachines/{path.name}: {machine_id}, state "{" > ".join(state_path)}": Next goes to \'Nowhere\'' in "\n".join(lines)
    assert lines[-1].startswith("validate: ") and "finding(s)" in lines[-1]


def test_a_missing_sam_cli_is_a_clear_finding_unless_skipped(tmp_path, capsys, monkeypatch):
    from tests.static import validate_helpers as h

    root = h.copy_project(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))

    code = main(["validate"])

    out = capsys.readouterr().out
    assert code == 1
    assert "template.yaml: sam validate --lint: the SAM CLI was not found at .venv-sam/bin/sam nor on PATH" in out
