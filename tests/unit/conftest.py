"""Unit tier: no network. Any socket connection attempt fails the test."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def guard(*args, **kwargs):
        raise RuntimeError("unit tests may not open network connections; move this test to tests/functional")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket, "create_connection", guard)


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.unit)
