"""Report (SageMaker Processing job): the run's report.html and summary.json, once the quality gate has decided.

    python3 ml/report.py --run-dir R --output-dir O

R holds the parts of the run's S3 prefix the report reads: preprocess/report/, preprocess/config/, evaluation/,
baseline/, gate/gate.json (the gate's decision, written by the quality-gate Lambda) and train/model/output/
model.tar.gz. Writes O/report.html (verdict, key numbers, ROC, score distributions, calibration, SHAP, fairness,
data profile, data checks with what the cleaning did, lineage) and O/summary.json (the verdict, metrics, row
counts and where the report is). Needs jinja2 and matplotlib, which the job image (SageMaker Distribution)
provides. A missing part of the run turns its section into a note; a missing gate.json is an error (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import sagestep  # noqa: F401
except ImportError:  # run from a checkout without PYTHONPATH: the code bundle mirrors the repo (ml/ beside src/)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sagestep.aws.jobfiles import write_exit_message
from sagestep.training.gate import GATE_RECORD


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="local copy of the run's outputs")
    parser.add_argument("--output-dir", type=Path, required=True, help="where report.html and summary.json go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gate_file = args.run_dir / GATE_RECORD
    try:
        gate_record = json.loads(gate_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        message = f"{gate_file}: cannot read the quality gate's record ({exc}); the report step runs after the gate"
        print(f"report failed: {message}", file=sys.stderr)
        write_exit_message(args.output_dir, message)
        return 1
    from sagestep.training.report import write_run_report  # jinja2 and matplotlib: imported once the input is known

    html, summary = write_run_report(args.run_dir, gate_record, args.output_dir)
    verdict = json.loads(summary.read_text())
    print(f"report: gate {'passed' if verdict['gate']['passed'] else 'refused'}, test auc "
          f"{verdict['metrics'].get('auc')} -> {html}, {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
