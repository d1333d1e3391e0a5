"""Small S3 helpers shared by Lambda handlers and the local runtime; the boto3 client is passed in."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse


class S3ObjectError(RuntimeError):
    """An S3 object is missing or not what the caller expected; the message names the URI and the fix."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    return parsed.netloc, parsed.path.lstrip("/")


def join_uri(prefix: str, *parts: str) -> str:
    """Join an S3 prefix and relative parts with single slashes."""
    out = prefix.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


def read_bytes(s3_client: Any, uri: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    try:
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3_client.exceptions.NoSuchKey:
        raise S3ObjectError(f"{uri}: object not found; check that the step writing it succeeded") from None


def read_json(s3_client: Any, uri: str) -> Any:
    body = read_bytes(s3_client, uri)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise S3ObjectError(f"{uri}: not valid JSON ({exc}); the step writing it produced a bad file") from None


def write_json(s3_client: Any, uri: str, document: Any) -> None:
    bucket, key = parse_s3_uri(uri)
    s3_client.put_object(Bucket=bucket, Key=key, Body=json.dumps(document, indent=2).encode(),
                         ContentType="application/json")
