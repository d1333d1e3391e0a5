"""A/B winner (Lambda): `plan` designs the test; `replay` prepares the other model's scoring of a variant's labelled
requests (split traffic); `decide` judges one look from the merged data, the captures and the variants' metrics; a final decision goes to the
audit trail."""

from __future__ import annotations

from typing import Any

import boto3

from sagestep.abtest.lambda_io import ABInputError, decide_look, plan_test, replay_input
from sagestep.audit import records as audit
from sagestep.aws import envvars, metrics
from sagestep.aws.powertools import lambda_handler, logger


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("Action")
    if action == "plan":
        return plan_test(event, boto3.client("s3"))
    if action == "replay":
        return replay_input(event, boto3.client("s3"))
    if action == "decide":
        s3 = boto3.client("s3")
        answer = decide_look(event, s3, boto3.client("cloudwatch"))
        if answer["Decision"] != "continue":  # the test ended: promote, keep the champion, or abort
            record = audit.ab_record(event["EvidenceS3Prefix"], answer["Look"], {**answer, "EndpointName": event["EndpointName"]})
            audit.write(s3, envvars.required(audit.BUCKET_ENV), record)
            metrics.emit("ABTestDecisions", 1, Decision=answer["Decision"])
            logger.info("A/B test decided", extra={"Decision": answer["Decision"], "Reasons": answer["Reasons"]})
        return answer
    raise ABInputError(f"ab_winner: Action must be 'plan', 'replay' or 'decide', got {action!r}")
