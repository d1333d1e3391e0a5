"""The console: the local cloud in a browser (executions as graphs, the registry, endpoints, monitoring over time).

Tooling, never imported by runtime code. `create_app(clients, workspace_dir, project)` returns a WSGI application
that reads everything through boto3 clients (and the workspace for what has no API); it binds nothing itself.
"""

from sagestep.console.app import create_app

__all__ = ["create_app"]
