"""`sagestep models list|approve|reject`: the Model Registry, locally (workspace) or in AWS (--aws)."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from sagestep.registry import approvals
from sagestep.cli import UserError
from sagestep.cli.local import add_runtime_arguments, open_runtime


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="list, approve and reject model packages")
    commands = models.add_subparsers(dest="models_command", required=True)

    listing = commands.add_parser("list", help="model packages of every model line (or one), newest first per line")
    _common(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    for decision in ("approve", "reject"):
        cmd = commands.add_parser(decision, help=f"{decision} a model package, recording who and why")
        cmd.add_argument("package_arn")
        cmd.add_argument("--by", required=True, help="who decides (kept with the package)")
        cmd.add_argument("--reason", required=True, help=f"why (kept with the package; at most {approvals.REASON_LIMIT} characters)")
        if decision == "reject":
            cmd.add_argument("--roll-back", action="store_true",
                             help="the package is live: reject it and deploy the newest other Approved package of its line")
        _common(cmd)
        cmd.set_defaults(func=cmd_decide, decision=decision)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--line", help="one model line (e.g. credit-data; default: every line of the stack)")
    parser.add_argument("--group", help="a model package group by its full name (instead of --line)")
    parser.add_argument("--prefix", help="with --aws: the stack's model line prefix (its ModelLinePrefix output, "
                                         "e.g. sagestep-dev-)")
    parser.add_argument("--aws", action="store_true", help="use the AWS account of your credentials instead of the local workspace")
    parser.add_argument("--region", help="AWS region with --aws")
    add_runtime_arguments(parser)


@contextlib.contextmanager
def _sagemaker(args: argparse.Namespace) -> Iterator[tuple[Any, str, Any]]:
    """(SageMaker client, model line prefix, the local runtime or None with --aws)."""
    if args.aws:
        import boto3

        if args.func is cmd_list and not (args.prefix or args.group):
            raise UserError("--prefix (the stack output ModelLinePrefix, e.g. sagestep-dev-) or --group is required "
                            "to list packages with --aws")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield boto3.client("sagemaker", region_name=args.region), args.prefix or "", None
        except BotoCoreError as exc:  # no credentials, no region, no network: the user's setup, said in one line
            raise UserError(f"--aws: {exc} (configure credentials and a region: aws configure, or AWS_PROFILE / "
                            "AWS_DEFAULT_REGION; or drop --aws to use the local workspace)") from None
        except ClientError as exc:
            raise UserError(f"--aws: {exc}") from None
        return
    with open_runtime(args) as runtime:
        outputs = runtime.resolver.template.get("Outputs") or {}
        if "ModelLinePrefix" not in outputs:
            raise UserError(f"{args.template}: no ModelLinePrefix output; the template does not declare model lines")
        yield runtime.client("sagemaker"), str(runtime.resolver.resolve(outputs["ModelLinePrefix"]["Value"])), runtime


def cmd_list(args: argparse.Namespace) -> int:
    with _sagemaker(args) as (sagemaker, prefix, _runtime):
        groups = [args.group] if args.group else [prefix + args.line] if args.line else None
        for group in groups or []:
            try:
                sagemaker.describe_model_package_group(ModelPackageGroupName=group)
            except sagemaker.exceptions.ClientError:
                known = ", ".join(approvals.model_line_groups(sagemaker, prefix)) or "none yet"
                raise UserError(f"{'--group' if args.group else '--line'}: no model package group {group} "
                                f"(the stack's model line groups: {known})") from None
        rows = approvals.list_lines(sagemaker, prefix, groups)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        where = args.group or (prefix + args.line if args.line else f"any model line ({prefix}<line>)")
        print(f"no model packages in {where}")
        return 0
    width = max(len(str(r["Line"])) for r in rows)
    for row in rows:
        deployed = f"  live on {row['DeployedEndpoint']}" if row.get("DeployedEndpoint") else ""
        print(
            f"{row['Line']:<{width}}  {row['ModelPackageArn']}  {row['Status']:<22} AUC {row['TestAuc'] or '-':<8} "
            f"{row['Algorithm'] or '-':<9} {row['Created']}{deployed}  {row['ApprovalDescription'] or ''}"
        )
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    with _sagemaker(args) as (sagemaker, _prefix, runtime):
        try:
            result = approvals.decide(sagemaker, args.package_arn, args.decision, args.by, args.reason,
                                      roll_back=getattr(args, "roll_back", False))
        except approvals.ApprovalError as exc:
            raise UserError(str(exc)) from exc
        print(f"{result['ModelApprovalStatus']} {result['ModelPackageArn']} (decision {result['Decision']} in its approval "
              f"history): {result['ApprovalDescription']}")
        if result["RollbackTo"]:
            rollback_input = json.dumps({"ModelPackageArn": result["RollbackTo"]})
            if args.aws:
                print(f"roll {result['Endpoint']} back: aws stepfunctions start-execution --state-machine-arn "
                      f"<the stack's DeploymentStateMachine ARN> --input '{rollback_input}'")
            else:
                arn = runtime.start("DeploymentStateMachine", json.loads(rollback_input))
                print(f"rolling {result['Endpoint']} back to {result['RollbackTo']}: started {arn} "
                      f"(follow it with `sagestep local history {arn.rsplit(':', 1)[-1]}`)")
    return 0
