"""The `sagestep` command line. Each sub-command family lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules under sagestep.cli that add sub-commands; each exposes register(subparsers).
COMMAND_MODULES = ["local", "models", "demo", "monitoring", "ab", "validate", "images", "explain"]


class UserError(Exception):
    """A bad input the user can fix; printed as one clear line, never as a stack trace."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagestep", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"sagestep.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
