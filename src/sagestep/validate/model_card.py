"""Check a model card's Content against AWS's model card JSON schema (vendored: data/model_card_schema.json, see
data/NOTICE), plus what that draft-07 file cannot say.

The vendored file is the model-package variant ("without model_package_details"). A standalone card made with
CreateModelCard links to its package through `model_package_details`, whose fields are those of the SageMaker
Python SDK's `ModelPackage` and CloudFormation's `AWS::SageMaker::ModelCard ModelPackageDetails`; it is added here,
closed (additionalProperties false) like every other section. Counts the file places where draft-07 ignores them
(maxContains, maxItems inside items) and CreateModelCard's 100000-character Content are enforced in code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("data") / "model_card_schema.json"
MAX_CONTENT_CHARS = 100_000
_PACKAGE_DETAILS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "model_package_arn": {"type": "string", "maxLength": 2048},
        "model_package_description": {"type": "string", "maxLength": 1024},
        "model_package_group_name": {"type": "string", "maxLength": 63},
        "model_package_name": {"type": "string", "maxLength": 63},
        "model_package_version": {"type": "number", "minimum": 1},
        "model_package_status": {"enum": ["Pending", "InProgress", "Completed", "Failed", "Deleting"]},
        "model_approval_status": {"enum": ["Approved", "Rejected", "PendingManualApproval"]},
        "approval_description": {"type": "string", "maxLength": 1024},
    },
}
_COUNTS = (  # (path, most items)
    (("model_overview", "model_artifact"), 15),
    (("training_details", "training_job_details", "training_datasets"), 15),
    (("training_details", "training_job_details", "training_metrics"), 50),
    (("training_details", "training_job_details", "user_provided_training_metrics"), 50),
    (("training_details", "training_job_details", "hyper_parameters"), 100),
    (("training_details", "training_job_details", "user_provided_hyper_parameters"), 100),
)


class ModelCardError(ValueError):
    pass


def schema(*, standalone: bool) -> dict[str, Any]:
    document = json.loads(SCHEMA_PATH.read_text())
    if standalone:
        document["properties"]["model_package_details"] = _PACKAGE_DETAILS
    return document


def check(content: str | dict[str, Any], *, standalone: bool = True) -> dict[str, Any]:
    """The parsed card, or ModelCardError naming the first problem (JSON path and message)."""
    import jsonschema

    text = content if isinstance(content, str) else json.dumps(content)
    if len(text) > MAX_CONTENT_CHARS:
        raise ModelCardError(f"model card Content is {len(text)} characters; CreateModelCard takes at most {MAX_CONTENT_CHARS}")
    card = json.loads(text)
    try:
        jsonschema.Draft7Validator(schema(standalone=standalone)).validate(card)
    except jsonschema.ValidationError as exc:
        raise ModelCardError(f"model card {'/'.join(map(str, exc.absolute_path)) or '(root)'}: {exc.message}") from None
    for path, most in _COUNTS:
        node: Any = card
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list) and len(node) > most:
            raise ModelCardError(f"model card {'/'.join(path)}: {len(node)} items, at most {most}")
    return card
