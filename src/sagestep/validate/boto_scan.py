"""Which AWS API calls a Lambda handler makes: a static scan of its module and the project modules it imports.

A client is what `boto3.client("svc", ...)` (or any `<session>.client("svc")`) returns. The scan follows it
through assignments (also tuple assignments), module globals, and calls to functions of the project (handler
module, `src/` packages) where it is passed as an argument, positionally or by keyword. `client.method(...)` is
the operation botocore maps `method` to; `get_paginator("op")` and `get_waiter("name")` the operations they run;
s3 transfer helpers (`upload_file`, `download_fileobj`, `copy`, ...) the object calls they make.

Limits (best effort, by design): clients stored on objects (`self.s3 = ...`), in containers, returned from
helper functions, or created through `boto3.resource(...)` are not followed; nor are calls made through
`getattr`, methods of classes, or third-party libraries. Calls in code that never runs are counted.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
from pathlib import Path

import botocore.session
from botocore import xform_name

MAX_DEPTH = 8

S3_TRANSFER = {
    "upload_file": ["PutObject"], "upload_fileobj": ["PutObject"], "download_file": ["GetObject"],
    "download_fileobj": ["GetObject"], "copy": ["GetObject", "PutObject"],
}
NOT_CALLS = {"get_paginator", "get_waiter", "can_paginate", "close", "generate_presigned_url", "generate_presigned_post",
             "exceptions", "meta"}


@dataclasses.dataclass(frozen=True)
class ApiCall:
    service: str  # botocore service name
    operation: str  # botocore operation name (PascalCase)
    file: str
    line: int


@functools.lru_cache(maxsize=None)
def _methods(service: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


@functools.lru_cache(maxsize=None)
def _waiter_operation(service: str, waiter: str) -> str | None:
    try:
        model = botocore.session.get_session().get_waiter_model(service)
        for name in model.waiter_names:
            if xform_name(name) == waiter:
                return model.get_waiter(name).operation
    except Exception:
        return None
    return None


class _Module:
    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.functions = {n.name: n for n in self.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self.imports: dict[str, tuple[str, str | None]] = {}  # local name → (module, attribute or None)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports[alias.asname or alias.name.split(".")[0]] = (alias.name if alias.asname else alias.name.split(".")[0], None)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (node.module, alias.name)


class Scanner:
    def __init__(self, search_roots: list[Path], display_root: Path) -> None:
        self.search_roots = search_roots
        self.display_root = display_root
        self.calls: set[ApiCall] = set()
        self._modules: dict[str, _Module | None] = {}
        self._done: set[tuple[str, str, frozenset[tuple[str, str]]]] = set()

    # -- modules

    def module(self, name: str) -> _Module | None:
        if name not in self._modules:
            found = None
            for root in self.search_roots:
                base = root.joinpath(*name.split("."))
                for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                    if candidate.is_file():
                        found = _Module(candidate, name)
                        break
                if found:
                    break
            self._modules[name] = found
        return self._modules[name]

    def resolve_function(self, module: _Module, func: ast.expr) -> tuple[_Module, ast.FunctionDef] | None:
        if isinstance(func, ast.Name):
            if func.id in module.functions:
                return module, module.functions[func.id]  # type: ignore[return-value]
            target = module.imports.get(func.id)
            if target and target[1]:
                other = self.module(target[0])
                if other and target[1] in other.functions:
                    return other, other.functions[target[1]]  # type: ignore[return-value]
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            target = module.imports.get(func.value.id)
            if target:
                name = f"{target[0]}.{target[1]}" if target[1] else target[0]
                other = self.module(name)
                if other and func.attr in other.functions:
                    return other, other.functions[func.attr]  # type: ignore[return-value]
        return None

    # -- scanning

    def scan_handler(self, path: Path, function: str) -> set[ApiCall]:
        module = _Module(path, path.stem)
        self._modules.setdefault(path.stem, module)
        globals_env = self.body_env(module, module.tree.body, {}, 0)
        handler = module.functions.get(function)
        if handler is not None:
            self.function(module, handler, globals_env, 0)  # type: ignore[arg-type]
        return self.calls

    def client_of(self, node: ast.expr, env: dict[str, str]) -> str | None:
        if isinstance(node, ast.Name):
            return env.get(node.id)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            return node.args[0].value
        for keyword in getattr(node, "keywords", []) if isinstance(node, ast.Call) else []:
            if (isinstance(node.func, ast.Attribute) and node.func.attr == "client" and keyword.arg == "service_name"
                    and isinstance(keyword.value, ast.Constant)):
                return str(keyword.value.value)
        return None

    def function(self, module: _Module, node: ast.FunctionDef, env: dict[str, str], depth: int) -> None:
        key = (str(module.path), node.name, frozenset(env.items()))
        if key in self._done or depth > MAX_DEPTH:
            return
        self._done.add(key)
        self.body_env(module, node.body, dict(env), depth)

    def body_env(self, module: _Module, body: list[ast.stmt], env: dict[str, str], depth: int) -> dict[str, str]:
        """Walk statements in order, tracking which names hold clients; record calls. Returns the final env."""
        for statement in body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(statement):
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        self.bind(target, node.value, env)
                elif isinstance(node, (ast.AnnAssign,)) and node.value is not None:
                    self.bind(node.target, node.value, env)
                elif isinstance(node, ast.NamedExpr):
                    self.bind(node.target, node.value, env)
                elif isinstance(node, ast.With):
                    for item in node.items:
                        if item.optional_vars is not None:
                            self.bind(item.optional_vars, item.context_expr, env)
            for node in ast.walk(statement):
                if isinstance(node, ast.Call):
                    self.call(module, node, env, depth)
        return env

    def bind(self, target: ast.expr, value: ast.expr, env: dict[str, str]) -> None:
        if isinstance(target, ast.Name):
            service = self.client_of(value, env)
            if service:
                env[target.id] = service
            else:
                env.pop(target.id, None)
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
            for t, v in zip(target.elts, value.elts):
                self.bind(t, v, env)

    def record(self, service: str, operation: str, module: _Module, node: ast.AST) -> None:
        try:
            shown = str(module.path.relative_to(self.display_root))
        except ValueError:
            shown = str(module.path)
        self.calls.add(ApiCall(service, operation, shown, getattr(node, "lineno", 0)))

    def call(self, module: _Module, node: ast.Call, env: dict[str, str], depth: int) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            service = self.client_of(func.value, env)
            if service:
                self.client_method(service, func.attr, node, module)
                return
        resolved = self.resolve_function(module, func)
        if resolved is None:
            return
        target_module, target = resolved
        params = [a.arg for a in target.args.posonlyargs + target.args.args]
        bound: dict[str, str] = {}
        for index, arg in enumerate(node.args):
            service = self.client_of(arg, env)
            if service and index < len(params):
                bound[params[index]] = service
        for keyword in node.keywords:
            service = self.client_of(keyword.value, env) if keyword.arg else None
            if service:
                bound[keyword.arg] = service  # type: ignore[index]
        globals_env = {}
        if target_module is not module:
            globals_env = self.body_env(target_module, [s for s in target_module.tree.body if isinstance(s, (ast.Assign, ast.AnnAssign))], {}, depth + 1)
        self.function(target_module, target, {**globals_env, **bound}, depth + 1)

    def client_method(self, service: str, method: str, node: ast.Call, module: _Module) -> None:
        try:
            methods = _methods(service)
        except Exception:
            return  # not a botocore service name: boto3 would fail anyway
        if method in methods:
            self.record(service, methods[method], module, node)
        elif method in ("get_paginator", "get_waiter") and node.args and isinstance(node.args[0], ast.Constant):
            name = str(node.args[0].value)
            operation = methods.get(name) if method == "get_paginator" else _waiter_operation(service, name)
            if operation:
                self.record(service, operation, module, node)
        elif service == "s3" and method in S3_TRANSFER:
            for operation in S3_TRANSFER[method]:
                self.record(service, operation, module, node)


def scan(handler_file: Path, handler_function: str, search_roots: list[Path], display_root: Path) -> set[ApiCall]:
    return Scanner(search_roots, display_root).scan_handler(handler_file, handler_function)
