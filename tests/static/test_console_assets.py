"""The console works offline: its JavaScript is the pinned npm package's file, and nothing loads from the network."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import REPO_ROOT

CONSOLE = REPO_ROOT / "src" / "sagestep" / "console"
ASSETS = REPO_ROOT / "tools" / "console-assets"


def test_vendored_dagre_is_the_file_of_the_pinned_npm_package():
    pinned = json.loads((ASSETS / "package.json").read_text())["dependencies"]["@dagrejs/dagre"]
    locked = json.loads((ASSETS / "package-lock.json").read_text())["packages"]["node_modules/@dagrejs/dagre"]["version"]
    assert pinned == locked, "tools/console-assets: package.json and package-lock.json disagree; run npm install there"
    installed = ASSETS / "node_modules" / "@dagrejs" / "dagre"
    if not installed.is_dir():
        pytest.skip("tools/console-assets/node_modules is not installed (make static / make test install it)")
    assert json.loads((installed / "package.json").read_text())["version"] == pinned
    vendored = (CONSOLE / "static" / "vendor" / "dagre.min.js").read_bytes()
    assert vendored == (installed / "dist" / "dagre.min.js").read_bytes(), "re-vendor with `make console-assets`"


def test_pages_load_nothing_from_other_hosts():
    texts = {p.name: p.read_text() for p in [*(CONSOLE / "templates").glob("*.j2"), *(CONSOLE / "static").glob("*.*")]}
    for name, text in texts.items():
        for attribute in re.findall(r"""(?:src|href|action)\s*=\s*["']([^"']*)["']""", text):
            assert not re.match(r"(https?:)?//", attribute), f"{name}: {attribute} loads from another host"
        for call in re.findall(r"""(?:fetch|import)\(\s*["'`]([^"'`]*)""", text):
            assert not re.match(r"(https?:)?//", call), f"{name}: {call} loads from another host"
