"""A/B winner (Lambda): `plan` designs the test; `replay` prepares the other model's scoring of a variant's labelled
requests (split traffic); `decide` judges one look from the merged data, the captures and the variants' metrics."""

from __future__ import annotations

from typing import Any

import boto3

from sagestep.abtest.lambda_io import ABInputError, decide_look, plan_test, replay_input


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("Action")
    if action == "plan":
        return plan_test(event, boto3.client("s3"))
    if action == "replay":
        return replay_input(event, boto3.client("s3"))
    if action == "decide":
        return decide_look(event, boto3.client("s3"), boto3.client("cloudwatch"))
    raise ABInputError(f"ab_winner: Action must be 'plan', 'replay' or 'decide', got {action!r}")
