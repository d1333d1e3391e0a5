"""Check 1, the template: `sam validate --lint`, then samtranslator + cfn-lint on the translated template.

`sam validate --lint` runs in its own virtual environment (.venv-sam: aws-sam-cli pins its own boto3). cfn-lint
alone misses bad `!GetAtt`/`!Ref` inside SAM-only properties (DefinitionSubstitutions, policies, event sources),
so the template is translated offline to plain CloudFormation first and cfn-lint runs on that; its findings are
mapped back to the logical IDs (and lines) of template.yaml.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from sagestep.validate.project import Finding, Project

CHECK = "template"
SAM_TIMEOUT_S = 180

# Local paths SAM would upload on `sam deploy`; translation needs S3 locations in their place.
_LOCAL_URIS = {"CodeUri", "ContentUri", "DefinitionUri", "Location"}


def find_sam(root: Path) -> str | None:
    local = root / ".venv-sam" / "bin" / "sam"
    if local.is_file():
        return str(local)
    return shutil.which("sam")


def start_sam_lint(project: Project) -> subprocess.Popen[str] | Finding:
    """Start `sam validate --lint` in the background (it takes a few seconds); collect with `sam_lint_findings`."""
    sam = find_sam(project.root)
    if sam is None:
        return Finding(CHECK, project.template_file, "sam validate --lint",
                       "the SAM CLI was not found at .venv-sam/bin/sam nor on PATH: run `make .venv-sam/.installed` "
                       "(or `make test`), or pass --skip-sam")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    return subprocess.Popen(  # noqa: S603 - a fixed command line
        [sam, "validate", "--lint", "--template", str(project.template_path)],
        cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


_SAM_MATCH = re.compile(r"\[\[(?P<rule>[EWI]\d+): (?P<title>[^\]]*)\] \((?P<detail>.*?)\) matched (?P<line>\d+)\]")


def sam_lint_findings(project: Project, started: subprocess.Popen[str] | Finding) -> list[Finding]:
    if isinstance(started, Finding):
        return [started]
    try:
        output, _ = started.communicate(timeout=SAM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        started.kill()
        started.communicate()
        return [Finding(CHECK, project.template_file, "sam validate --lint", f"did not finish in {SAM_TIMEOUT_S} s")]
    if started.returncode == 0:
        return []
    findings = []
    for match in _SAM_MATCH.finditer(output):
        line = int(match["line"])
        resource = project.resource_at_line(line)
        location = f"{resource} (line {line})" if resource else f"line {line}"
        findings.append(Finding(CHECK, project.template_file, location,
                                f"sam validate --lint: {match['rule']} {match['title']}: {match['detail']}"))
    if not findings:
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-6:])
        findings.append(Finding(CHECK, project.template_file, "sam validate --lint", f"failed: {tail}"))
    return findings


# ---------------------------------------------------------------------------------------------- translate + cfn-lint


class OfflinePolicyLoader:
    """samtranslator asks for the account's managed policy names → ARNs; offline, names are left as written."""

    def load(self) -> dict[str, str]:
        return {}


def sam_ready(document: dict[str, Any]) -> dict[str, Any]:
    """A copy in which local code and definition paths are S3 locations, as `sam deploy` would upload them."""
    out = copy.deepcopy(document)
    for resource in (out.get("Resources") or {}).values():
        props = resource.get("Properties") if isinstance(resource, dict) else None
        if not isinstance(props, dict):
            continue
        for key in _LOCAL_URIS & set(props):
            if isinstance(props[key], str) and not props[key].startswith("s3://"):
                props[key] = f"s3://sagestep-validate-packaging/{props[key].strip('/') or 'root'}"
    return out


def translate(project: Project) -> tuple[dict[str, Any] | None, list[Finding]]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    try:
        return transform(sam_ready(project.document), {}, OfflinePolicyLoader()), []
    except InvalidDocumentException as exc:
        findings = []
        for cause in getattr(exc, "causes", []) or [exc]:
            message = getattr(cause, "message", str(cause))
            logical_id = getattr(cause, "_logical_id", None) or _first_logical_id(project, message)
            location = project.where(logical_id) if logical_id else "Resources"
            findings.append(Finding(CHECK, project.template_file, location, f"SAM translation: {message}"))
        return None, findings
    except Exception as exc:  # samtranslator raises a few other errors on malformed input
        return None, [Finding(CHECK, project.template_file, "Resources", f"SAM translation failed: {type(exc).__name__}: {exc}")]


def _first_logical_id(project: Project, message: str) -> str | None:
    match = re.search(r"\[(\w+)\]", message)
    return match.group(1) if match and match.group(1) in project.resources else None


def original_logical_id(project: Project, translated_id: str) -> str:
    """SAM names generated resources after their source (`XRole`, `XRetrainOnSchedule`, `XLayer<hash>`)."""
    if translated_id in project.resources:
        return translated_id
    candidates = [lid for lid in project.resources if translated_id.startswith(lid)]
    return max(candidates, key=len) if candidates else translated_id


def cfn_lint_findings(project: Project, translated: dict[str, Any]) -> list[Finding]:
    from cfnlint.api import lint

    matches = lint(json.dumps(translated), regions=[os.environ.get("AWS_DEFAULT_REGION", "us-east-1")])
    findings = []
    for match in matches:
        rule = match.rule.id
        if not rule.startswith("E"):
            continue  # warnings on SAM-generated resources are SAM's, not ours
        path = [p for p in (getattr(match, "path", None) or [])]
        location = "template"
        if len(path) >= 2 and path[0] == "Resources":
            translated_id = str(path[1])
            original = original_logical_id(project, translated_id)
            rest = [str(p) for p in path[2:]]
            location = project.where(original, *rest) if original in project.resources else ".".join(map(str, path))
            if original != translated_id:
                location += f" (generated {translated_id})"
        message = match.message if len(match.message) <= 400 else match.message[:400] + "…"
        findings.append(Finding(CHECK, project.template_file, location, f"cfn-lint {rule}: {message}"))
    return findings


def check(project: Project, translated: dict[str, Any] | None, translate_findings: list[Finding]) -> list[Finding]:
    findings = list(translate_findings)
    if translated is not None:
        findings += cfn_lint_findings(project, translated)
    for machine in project.machines:
        findings += [f for f in machine.problems if f.check == CHECK]
    return findings
