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

    listing = commands.add_parser("list", help="model packages of the group, newest first")
    _common(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    for decision in ("approve", "reject"):
        cmd = commands.add_parser(decision, help=f"{decision} a model package, recording who and why")
        cmd.add_argument("package_arn")
        cmd.add_argument("--by", required=True, help="who decides (kept with the package)")
        cmd.add_argument("--reason", required=True, help="why (kept with the package)")
        _common(cmd)
        cmd.set_defaults(func=cmd_decide, decision=decision)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", help="model package group (default: the template's ModelPackageGroup)")
    parser.add_argument("--aws", action="store_true", help="use the AWS account of your credentials instead of the local workspace")
    parser.add_argument("--region", help="AWS region with --aws")
    add_runtime_arguments(parser)


@contextlib.contextmanager
def _sagemaker(args: argparse.Namespace) -> Iterator[tuple[Any, str]]:
    if args.aws:
        import boto3

        if not args.group:
            raise UserError("--group is required with --aws (the stack output ModelPackageGroupName)")
        yield boto3.client("sagemaker", region_name=args.region), args.group
        return
    with open_runtime(args) as runtime:
        group = args.group or runtime.resolver.physical_name("ModelPackageGroup")
        yield runtime.client("sagemaker"), group


def cmd_list(args: argparse.Namespace) -> int:
    with _sagemaker(args) as (sagemaker, group):
        rows = approvals.list_packages(sagemaker, group)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(f"no model packages in {group}")
        return 0
    for row in rows:
        print(
            f"{row['ModelPackageArn']}  {row['Status']:<22} AUC {row['TestAuc'] or '-':<8} {row['Algorithm'] or '-':<9} "
            f"{row['Created']}  {row['ApprovalDescription'] or ''}"
        )
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    with _sagemaker(args) as (sagemaker, _group):
        try:
            result = approvals.decide(sagemaker, args.package_arn, args.decision, args.by, args.reason)
        except approvals.ApprovalError as exc:
            raise UserError(str(exc)) from exc
    print(f"{result['ModelApprovalStatus']} {result['ModelPackageArn']}: {result['ApprovalDescription']}")
    return 0
