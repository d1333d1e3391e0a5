"""Bad data files and dataset configs, as the preprocess job (ml/preprocess.py, the entry point SageMaker runs) meets
them: each fails the job with a first line that names the file, the column or field and the fix (the job's
ExitMessage, which becomes the run's cause), and no input file changes."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import REPO_ROOT
from tests.reliability.catalogue import Case, changed, checksums, clear_message, ids, judge, write_files

CSV = (REPO_ROOT / "data" / "credit_data" / "credit_data.csv").read_text()
LINES = CSV.splitlines()
HEAD = LINES[0]
ROWS = LINES[1:400]
CONFIG = (REPO_ROOT / "ml" / "config" / "credit_data.yaml").read_text()


def data(rows: list[str], header: str = HEAD) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


def config(**replace: str) -> str:
    text = CONFIG
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def _column(index: int, value: str, rows: list[str], every: int = 1) -> list[str]:
    out = []
    for i, row in enumerate(rows):
        cells = row.split(",")
        if i % every == 0:
            cells[index] = value
        out.append(",".join(cells))
    return out


INCOME = HEAD.split(",").index("Income")
STATUS = HEAD.split(",").index("Status")
CASES = [
    # -- data files -------------------------------------------------------------------------------------------------
    Case("data-empty-file", [], ["credit.csv", "0 rows", "provide rows"], {"data/credit.csv": "", "config/c.yaml": CONFIG}, code=1),
    Case("data-header-only", [], ["credit.csv", "0 rows", "provide rows"], {"data/credit.csv": HEAD + "\n", "config/c.yaml": CONFIG}, code=1),
    Case("data-semicolon-delimited", [], ["credit.csv", "Status", "comma-separated"],
         {"data/credit.csv": data([r.replace(",", ";") for r in ROWS], HEAD.replace(",", ";")), "config/c.yaml": CONFIG},
         code=1),
    Case("data-truncated-mid-row", [], ["credit.csv", "fields", "cut off", "upload the whole file again"],
         {"data/credit.csv": data(ROWS)[:-40].rstrip("\n").rsplit(",", 6)[0], "config/c.yaml": CONFIG}, code=1),
    Case("data-inf-in-numeric-column", [], ["credit.csv", "Income", "infinite value", "finite numbers"],
         {"data/credit.csv": data(_column(INCOME, "inf", ROWS, every=7)), "config/c.yaml": CONFIG}, code=1),
    Case("data-text-in-numeric-column", [], ["Income", "lots"],
         {"data/credit.csv": data(_column(INCOME, "lots", ROWS, every=3)), "config/c.yaml": CONFIG}, code=1),
    Case("data-binary-named-csv", [], ["credit.csv"],
         {"data/credit.csv": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "config/c.yaml": CONFIG}, code=1),
    Case("data-no-target-column", [], ["Status"],
         {"data/credit.csv": data(ROWS, HEAD.replace("Status", "Outcome")), "config/c.yaml": CONFIG}, code=1),
    Case("data-target-all-missing", [], ["Status"],
         {"data/credit.csv": data(_column(STATUS, "", ROWS)), "config/c.yaml": CONFIG}, code=1),
    Case("data-positive-label-absent", [], ["Status", "bad"],
         {"data/credit.csv": data(_column(STATUS, "good", ROWS)), "config/c.yaml": CONFIG}, code=1),
    Case("data-feature-column-missing", [], ["Income"],
         {"data/credit.csv": data([",".join(c for i, c in enumerate(r.split(",")) if i != INCOME) for r in ROWS],
                                  ",".join(c for i, c in enumerate(HEAD.split(",")) if i != INCOME)),
          "config/c.yaml": CONFIG}, code=1),
    Case("data-directory-without-data", [], ["no data file"], {"data/readme.txt": "x", "config/c.yaml": CONFIG}, code=1),
    Case("data-two-files-different-columns", [], ["other.csv"],
         {"data/credit.csv": data(ROWS), "data/other.csv": "a,b\n1,2\n", "config/c.yaml": CONFIG}, code=1),
    # -- dataset configs ----------------------------------------------------------------------------------------------
    Case("config-not-yaml", [], ["c.yaml", "not valid YAML", "line"],
         {"data/credit.csv": data(ROWS), "config/c.yaml": "name: [credit\ntarget: : Status\n"}, code=1),
    Case("config-txt-extension", [], ["c.txt", ".yaml"], {"data/credit.csv": data(ROWS), "config/c.txt": CONFIG}, code=1),
    Case("config-missing", [], ["config"], {"data/credit.csv": data(ROWS), "config/.keep": ""}, code=1),
    Case("config-two-files", [], ["c.yaml", "d.yaml"],
         {"data/credit.csv": data(ROWS), "config/c.yaml": CONFIG, "config/d.yaml": CONFIG}, code=1),
    Case("config-no-target", [], ["target"],
         {"data/credit.csv": data(ROWS), "config/c.yaml": config(**{"target: Status\n": ""})}, code=1),
    Case("config-unknown-problem-type", [], ["problem_type", "Multiclass"],
         {"data/credit.csv": data(ROWS), "config/c.yaml": config(**{"BinaryClassification": "Multiclass"})}, code=1),
    Case("config-fractions-too-large", [], ["test_fraction"],
         {"data/credit.csv": data(ROWS), "config/c.yaml": config(**{"test_fraction: 0.20": "test_fraction: 0.90"})}, code=1),
    Case("config-min-auc-above-one", [], ["min_auc"],
         {"data/credit.csv": data(ROWS), "config/c.yaml": config(**{"min_auc: 0.80": "min_auc: 80"})}, code=1),
    Case("config-feature-both-kinds", [], ["Home"],
         {"data/credit.csv": data(ROWS), "config/c.yaml": config(**{"numeric: [Seniority,": "numeric: [Home, Seniority,"})},
         code=1),
    Case("config-unknown-key", [], ["targte"],
         {"data/credit.csv": data(ROWS), "config/c.yaml": config(**{"target: Status": "targte: Status\ntarget: Status"})},
         code=1),
    Case("config-protected-attribute-unknown", [], ["Gender"],
         {"data/credit.csv": data(ROWS), "config/c.yaml": config(**{"  - name: Marital": "  - name: Gender"})}, code=1),
    Case("config-binary-bytes", [], ["c.yaml"], {"data/credit.csv": data(ROWS), "config/c.yaml": b"\xff\xfe\x00\x01"}, code=1),
]


@pytest.fixture(scope="module")
def preprocess():  # noqa: ANN201 - the ml/ entry point, loaded as SageMaker runs it (a script, not a package)
    spec = importlib.util.spec_from_file_location("ml_preprocess", REPO_ROOT / "ml" / "preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_data_or_config_fails_the_preprocess_job_naming_it(case: Case, preprocess, tmp_path, capsys, request):
    # GIVEN the job's input channels holding the bad file
    write_files(tmp_path, case.files)
    (tmp_path / "data").mkdir(exist_ok=True)
    before = checksums(tmp_path / "data", tmp_path / "config")
    # WHEN the preprocess entry point runs on them
    try:
        code = preprocess.main(["--data-dir", str(tmp_path / "data"), "--config-dir", str(tmp_path / "config"),
                                "--output-dir", str(tmp_path / "out")])
        crashed = ""
    except Exception as exc:  # noqa: BLE001 - a crash is what the catalogue looks for
        code, crashed = -1, f"{type(exc).__name__}: {exc}"
    err = capsys.readouterr().err
    first = next((line for line in err.splitlines() if line.startswith("preprocess failed:")), err)
    # THEN it exits 1 and the first line of its failure names the file, the field and the fix
    problems = clear_message(first, case.expect)
    if code != case.code:
        problems.append(f"exit {code} {crashed}")
    if problems:
        problems.append(f"stderr: {err[-800:]}")
    judge(request, case.id, case.kind, case.outcome, problems,
          changed(before, checksums(tmp_path / "data", tmp_path / "config")), None)
