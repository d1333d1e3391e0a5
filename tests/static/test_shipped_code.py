"""Only the runtime ships: the Lambda layer, the job bundle and the serving source dir hold the runtime packages of
src/sagestep/ and nothing else, and everything shipped imports with nothing but the shipped files on its path."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

from sagestep.aws import codebundle
from tests.conftest import REPO_ROOT

LIBRARY = REPO_ROOT / "src" / "sagestep"
TOOLING = ("local", "validate", "cli", "stack", "console")
FUNCTIONS = sorted(p.parent for p in (REPO_ROOT / "functions").glob("*/app.py"))
ENTRY_POINTS = sorted((REPO_ROOT / "ml").glob("*.py"))
# Imported in a fresh interpreter without `site` (so no .pth file puts the working tree's src/ on the path); the
# third-party packages the layer's requirements and the job image provide come from this environment's site-packages.
_PROBE = """
import importlib.util, json, sys
path, name, module_file = json.loads(sys.argv[1])
sys.path[:0] = path
spec = importlib.util.spec_from_file_location(name, module_file)
module = sys.modules[name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"modules": sorted(m for m in sys.modules if m == "sagestep" or m.startswith("sagestep.")),
                  "files": sorted({m.__file__ for n, m in list(sys.modules.items())
                                   if n.startswith("sagestep") and getattr(m, "__file__", None)}),
                  "handler": callable(getattr(module, "handler", None)), "moto": "moto" in sys.modules}))
"""


def _import_in_fresh_interpreter(path: list[Path], name: str, module_file: Path) -> dict:
    site_packages = sysconfig.get_paths()["purelib"]
    args = json.dumps([[str(p) for p in path] + [site_packages], name, str(module_file)])
    result = subprocess.run([sys.executable, "-S", "-c", _PROBE, args], capture_output=True, text=True, cwd=module_file.parent)
    assert result.returncode == 0, f"{module_file} does not import from the shipped files alone:\n{result.stderr[-2000:]}"
    return json.loads(result.stdout.splitlines()[-1])


def _assert_only_runtime(loaded: dict, shipped_root: Path, what: str) -> None:
    tooling = [m for m in loaded["modules"] if m.split(".")[1:2] and m.split(".")[1] in TOOLING]
    assert not tooling, f"{what} imports tooling: {tooling}"
    assert not loaded["moto"], f"{what} imports moto"
    outside = [f for f in loaded["files"] if not Path(f).is_relative_to(shipped_root)]
    assert not outside, f"{what} imported sagestep from outside the shipped files: {outside}"


@pytest.fixture(scope="module")
def layer(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("layer")
    codebundle.write_layer(LIBRARY, out)  # what src/Makefile (sam build) puts in the layer, before its requirements
    return out / "python"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> tuple[Path, list[tuple[str, bytes]]]:
    out = tmp_path_factory.mktemp("bundle")
    files = codebundle.collect(REPO_ROOT / "ml", LIBRARY)
    for name, content in files:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(content)
    return out, files


def _shipped_names_are_runtime(names: list[str], library_prefix: str) -> list[str]:
    bad = []
    for name in names:
        parts = Path(name).parts
        if "tests" in parts or any(p.endswith(".egg-info") for p in parts) or "__pycache__" in parts:
            bad.append(name)
        elif name.startswith(library_prefix):
            rest = Path(name[len(library_prefix):]).parts
            if len(rest) == 1 and rest[0] not in ("__init__.py", "py.typed"):
                bad.append(name)
            elif len(rest) > 1 and rest[0] not in codebundle.RUNTIME_PACKAGES:
                bad.append(name)
    return bad


@pytest.mark.parametrize("function_dir", FUNCTIONS, ids=lambda p: p.name)
def test_each_function_handler_imports_from_its_code_and_the_layer_alone(function_dir, layer):
    # GIVEN the function's CodeUri and the layer's python/ directory, as Lambda puts them on the path
    # WHEN its handler module is imported in a fresh interpreter
    loaded = _import_in_fresh_interpreter([function_dir, layer], "app", function_dir / "app.py")
    # THEN it has a handler and imported no tooling, only the shipped library
    assert loaded["handler"]
    _assert_only_runtime(loaded, layer, f"functions/{function_dir.name}")


@pytest.mark.parametrize("script", ENTRY_POINTS, ids=lambda p: p.name)
def test_each_ml_entry_point_imports_from_the_job_bundle_alone(script, bundle):
    root, _ = bundle
    # GIVEN the code bundle as a job gets it (ml/ beside src/, PYTHONPATH at src/)
    loaded = _import_in_fresh_interpreter([root / "src"], f"entry_{script.stem}", root / "ml" / script.name)
    # THEN the entry point imports with the shipped runtime alone
    _assert_only_runtime(loaded, root, f"ml/{script.name}")


def test_layer_holds_only_runtime_packages(layer):
    names = [f"python/{p.relative_to(layer.parent).relative_to('python').as_posix()}" for p in layer.rglob("*") if p.is_file()]
    assert names, "the layer is empty"
    assert not _shipped_names_are_runtime(names, "python/sagestep/")
    assert {n.split("/")[2] for n in names if n.count("/") > 2} == set(codebundle.RUNTIME_PACKAGES)


def test_job_bundle_and_serving_source_dir_hold_only_entry_points_and_runtime_packages(bundle):
    _, files = bundle
    names = [name for name, _ in files]
    assert not _shipped_names_are_runtime(names, "src/sagestep/")
    assert all(n.startswith(("ml/", "src/sagestep/")) for n in names)
    with tarfile.open(fileobj=io.BytesIO(codebundle.sourcedir_tarball(files))) as tar:
        tarred = tar.getnames()
    assert not _shipped_names_are_runtime(tarred, "sagestep/")
    assert "inference.py" in tarred and "sagestep/serving/inference.py" in tarred


def test_a_bundle_without_the_library_is_refused(tmp_path):
    # GIVEN a library directory that is not the sagestep library (e.g. a layer that failed to build)
    with pytest.raises(FileNotFoundError, match="not the sagestep library"):
        codebundle.collect(REPO_ROOT / "ml", tmp_path)


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_runtime_module_imports_tooling_even_inside_a_function():
    # Lazy imports inside functions do not show at import time; read every shipped module's import statements.
    shipped = [p for package in codebundle.RUNTIME_PACKAGES for p in (LIBRARY / package).rglob("*.py")]
    shipped += ENTRY_POINTS + [d / "app.py" for d in FUNCTIONS]
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(m for m in _imported_modules(path)
                                                 if m.split(".")[:2] in [["sagestep", t] for t in TOOLING])
        for path in shipped
    }
    assert not {k: v for k, v in offenders.items() if v}
