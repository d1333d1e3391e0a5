"""`sagestep validate`: the offline checks of template.yaml, the state machines and the functions (issue 4)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sagestep.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check offline that the template, state machines and functions would deploy and run in AWS",
        description="Runs sam validate --lint, cfn-lint on the SAM translation, ASL structure, service parameters "
                    "(against botocore), IAM coverage, naming limits, EventBridge rules, error names, and operations (logging, tracing, alarm actions, tags, Object Lock). Prints every finding as "
                    "`file: location: message`; exits 1 if there is any.",
    )
    parser.add_argument("--template", default="template.yaml", help="the SAM template (default: template.yaml)")
    parser.add_argument("--skip-sam", action="store_true", help="do not run `sam validate --lint` (the other checks still run)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sagestep.stack import template as tpl
    from sagestep import validate

    template = Path(args.template)
    if not template.is_file():
        raise UserError(f"{template}: template not found; run from the project root or pass --template PATH")
    started = time.monotonic()
    try:
        findings = validate.run(template, skip_sam=args.skip_sam)
    except tpl.TemplateError as exc:
        raise UserError(str(exc)) from None
    for finding in findings:
        print(finding.render())
    elapsed = time.monotonic() - started
    if findings:
        families = sorted({f.check for f in findings})
        print(f"validate: {len(findings)} finding(s) ({', '.join(families)}) in {elapsed:.1f} s")
        return 1
    sam = "cfn-lint on the SAM translation" if args.skip_sam else "sam validate --lint, cfn-lint on the SAM translation"
    print(f"validate: OK ({sam}, ASL structure, service parameters, IAM, naming, rules, errors, operations) in {elapsed:.1f} s")
    return 0
