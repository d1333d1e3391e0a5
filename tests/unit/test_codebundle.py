"""The code bundle that ships ml/ and sagestep to SageMaker jobs (locally and through the custom resource)."""

from __future__ import annotations

import io
import tarfile

from sagestep.aws import codebundle
from tests.conftest import REPO_ROOT


def test_bundle_holds_entry_points_configs_and_library_but_no_caches():
    files = dict(codebundle.collect(REPO_ROOT / "ml", REPO_ROOT / "src" / "sagestep"))
    assert {"ml/preprocess.py", "ml/train.py", "ml/evaluate.py", "ml/baseline.py", "ml/config/credit_data.yaml"} <= set(files)
    assert "src/sagestep/training/model.py" in files and "src/sagestep/local/runtime.py" not in files
    assert not any("__pycache__" in name for name in files)


def test_version_changes_with_content_and_only_with_content():
    files = codebundle.collect(REPO_ROOT / "ml", REPO_ROOT / "src" / "sagestep")
    changed = [(name, content + b"\n# edited") if name == "ml/train.py" else (name, content) for name, content in files]
    assert codebundle.version_of(files) == codebundle.version_of(list(files))
    assert codebundle.version_of(files) != codebundle.version_of(changed)


def test_sourcedir_tarball_puts_ml_at_the_root_next_to_the_sagestep_package():
    files = [("ml/inference.py", b"x = 1\n"), ("src/sagestep/__init__.py", b"")]
    archive = tarfile.open(fileobj=io.BytesIO(codebundle.sourcedir_tarball(files)))
    assert sorted(archive.getnames()) == ["inference.py", "sagestep/__init__.py"]
    assert codebundle.sourcedir_tarball(files) == codebundle.sourcedir_tarball(files)  # reproducible bytes


def test_sourcedir_tarball_bytes_do_not_depend_on_the_time_it_was_built(monkeypatch):
    # GIVEN the same files packed at two different times
    files = [("ml/inference.py", b"x = 1\n"), ("src/sagestep/__init__.py", b"")]
    first = codebundle.sourcedir_tarball(files)
    monkeypatch.setattr("time.time", lambda: 2_000_000_000.0)
    # THEN the archives are byte for byte the same (a registered model points at these bytes)
    assert codebundle.sourcedir_tarball(files) == first


def test_bundle_refuses_to_publish_without_the_serving_wheels(tmp_path):
    # GIVEN an ml/ whose requirements.txt pins a package with no wheel beside it
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "inference.py").write_text("x = 1\n")
    (tmp_path / "ml" / "requirements.txt").write_text("--no-index\n--find-links wheels\nlightgbm==4.7.0\n")
    # THEN collecting the bundle fails naming the requirement and the make target
    import pytest

    with pytest.raises(FileNotFoundError, match=r"no wheel for lightgbm==4\.7\.0.*make ml-wheels"):
        codebundle.collect(tmp_path / "ml", REPO_ROOT / "src" / "sagestep")
    # AND with the wheel (any platform tag) it publishes, the wheel under wheels/ in the serving source dir
    (tmp_path / "ml" / "wheels").mkdir()
    (tmp_path / "ml" / "wheels" / "lightgbm-4.7.0-py3-none-manylinux_2_28_x86_64.whl").write_bytes(b"wheel")
    files = codebundle.collect(tmp_path / "ml", REPO_ROOT / "src" / "sagestep")
    archive = tarfile.open(fileobj=io.BytesIO(codebundle.sourcedir_tarball(files)))
    assert "wheels/lightgbm-4.7.0-py3-none-manylinux_2_28_x86_64.whl" in archive.getnames()
    assert "requirements.txt" in archive.getnames()


def test_bundle_refuses_to_publish_without_the_library_or_with_a_runtime_package_missing(tmp_path):
    import shutil

    import pytest

    # GIVEN ml/ entry points but a library directory that is empty (the layer was built without sagestep)
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "train.py").write_text("x = 1\n")
    (tmp_path / "lib").mkdir()
    # THEN collecting the bundle fails, saying what is missing
    with pytest.raises(FileNotFoundError, match=r"not the sagestep library"):
        codebundle.collect(tmp_path / "ml", tmp_path / "lib")
    # AND a library missing one runtime package is refused too, naming the package
    shutil.copytree(REPO_ROOT / "src" / "sagestep", tmp_path / "sagestep", ignore=shutil.ignore_patterns("training"))
    with pytest.raises(FileNotFoundError, match=r"lacks its runtime package\(s\) training"):
        codebundle.collect(tmp_path / "ml", tmp_path / "sagestep")
