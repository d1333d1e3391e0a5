"""`sagestep demo` (what `make demo` runs): the main job, locally, on the bundled real credit data.

It does what a user does by hand: copy the dataset and its config to the data bucket, start the training state
machine with the sample input from events/, follow it, and say where the results are.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sagestep.cli import UserError
from sagestep.cli.local import LiveReporter, add_runtime_arguments, open_runtime, read_input

DEMO_INPUT = Path("events/training_state_machine_credit_data.json")
DATASET_FILE = Path("data/credit_data/credit_data.csv")
DATASET_CONFIG = Path("ml/config/credit_data.yaml")


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="train, gate and register a credit model locally on real data")
    add_runtime_arguments(demo)
    demo.set_defaults(func=cmd_demo, time_scale=0.01)


def stage_dataset(runtime: Any, execution_input: dict[str, Any], data_file: Path, config_file: Path) -> None:
    """Upload the data and its config where the execution input says they are, as `aws s3 cp` would."""
    data_bucket = runtime.bucket("DataBucket")
    for field in ("DataS3Uri", "DatasetConfigS3Uri"):
        if not str(execution_input.get(field, "")).startswith(f"s3://{data_bucket}/"):
            raise UserError(f"{DEMO_INPUT}: {field} must point into the data bucket s3://{data_bucket}/ of this template")
    runtime.put_file(data_file, execution_input["DataS3Uri"].rstrip("/") + "/" + data_file.name)
    runtime.put_file(config_file, execution_input["DatasetConfigS3Uri"])


def cmd_demo(args: argparse.Namespace) -> int:
    root = args.template.resolve().parent
    execution_input = read_input(root / DEMO_INPUT)
    with open_runtime(args) as runtime:
        stage_dataset(runtime, execution_input, root / DATASET_FILE, root / DATASET_CONFIG)
        print(f"Training a {execution_input['Algorithm']} model on {DATASET_FILE} ({DATASET_CONFIG}) with TrainingStateMachine")
        reporter = LiveReporter(runtime)
        arn = runtime.start("TrainingStateMachine", execution_input)
        record = runtime.wait(arn, on_event=reporter.on_event, on_tick=reporter.on_tick)
        runtime.save()
        if record.status != "SUCCEEDED":
            print(f"\nThe training pipeline ended {record.status}: {record.error}: {record.cause}")
            print(f"History: sagestep local history {record.name} --workspace {args.workspace}")
            return 1
        output = record.output
        package_arn = output["Registered"]["ModelPackageArn"]
        package = runtime.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
        run_prefix = output["Run"]["OutputS3Uri"]
        run_dir = runtime.local_path(run_prefix)
        report = _write_report(runtime, record, run_dir)
    metadata = package.get("CustomerMetadataProperties", {})
    print()
    print(f"Registered model package {package_arn}")
    print(f"  status        {package['ModelApprovalStatus']}")
    print(f"  test AUC      {metadata.get('TestAuc')}   (gate: {', '.join(output['Gate']['Reasons']) or 'all checks passed'})")
    print(f"  run outputs   {run_dir}/  (preprocess/, train/, evaluation/, baseline/)")
    print(f"  report        {report}")
    print(f"  history       sagestep local history {record.name} --workspace {args.workspace}")
    print(f"  approve with  sagestep models approve {package_arn} --by YOUR_NAME --reason '...' --workspace {args.workspace}")
    return 0


def _write_report(runtime: Any, record: Any, run_dir: Path) -> Path:
    from sagestep.report import write_training_report

    return write_training_report(run_dir, record.to_dict(), run_dir / "report.html")
