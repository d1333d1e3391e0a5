"""`sagestep images --region R`: the image URIs of JobImageUri and InferenceImageUri for a region, from the SageMaker
Python SDK's image configuration (sagemaker-core's `image_uris.retrieve`, offline) instead of hand-kept account
numbers. The image family and version are the template defaults' (us-east-1), so the deploy guide's overrides
always name the same images as the template."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from sagestep.cli import UserError

# repository name in the image URI -> the SDK's framework name
_FRAMEWORKS = {"sagemaker-distribution-prod": "sagemaker-distribution", "sagemaker-xgboost": "xgboost",
               "sagemaker-scikit-learn": "sklearn"}
_URI = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:]+):(?P<tag>.+)$")
PARAMETERS = ("JobImageUri", "InferenceImageUri")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "images",
        help="the JobImageUri / InferenceImageUri of a region (from the SageMaker SDK's image configuration)",
        description="Prints `--parameter-overrides` values for sam deploy in REGION: the template defaults' images "
                    "(SageMaker Distribution for jobs, sagemaker-xgboost for serving) at that region's registry.",
    )
    parser.add_argument("--region", required=True, help="AWS region, e.g. eu-west-1")
    parser.add_argument("--template", default="template.yaml", help="the SAM template (default: template.yaml)")
    parser.set_defaults(func=run)


def image_for(default_uri: str, region: str) -> str:
    """The same image family and version as `default_uri`, in `region`'s SageMaker registry."""
    match = _URI.match(default_uri)
    if match is None or match.group("repo") not in _FRAMEWORKS:
        raise UserError(f"{default_uri}: not a SageMaker image this command knows ({', '.join(_FRAMEWORKS)})")
    try:
        from sagemaker.core import image_uris
    except ImportError as exc:
        raise UserError("the SageMaker SDK is missing: install the dev extra (pip install -e '.[dev]', "
                        "which pins sagemaker-core)") from exc
    framework = _FRAMEWORKS[match.group("repo")]
    tag = match.group("tag")
    version = tag.removesuffix("-cpu").removesuffix("-gpu") if framework == "sagemaker-distribution" else tag
    try:
        return str(image_uris.retrieve(framework, region, version=version, instance_type="ml.m5.xlarge",
                                       image_scope="inference", py_version="py3" if framework != "sagemaker-distribution" else None))
    except ValueError as exc:
        raise UserError(f"{framework} {version} in {region}: {exc}") from exc


def template_defaults(template: Path) -> dict[str, str]:
    from sagestep.stack import template as tpl

    document: dict[str, Any] = tpl.load_template(template)
    parameters = document.get("Parameters") or {}
    missing = [p for p in PARAMETERS if "Default" not in (parameters.get(p) or {})]
    if missing:
        raise UserError(f"{template}: Parameters {', '.join(missing)} need a Default (the image this command maps)")
    return {p: str(parameters[p]["Default"]) for p in PARAMETERS}


def run(args: argparse.Namespace) -> int:
    template = Path(args.template)
    if not template.is_file():
        raise UserError(f"{template}: no such template (run from the project root or pass --template)")
    images = {name: image_for(uri, args.region) for name, uri in template_defaults(template).items()}
    print(" ".join(f"{name}={uri}" for name, uri in images.items()))
    return 0
