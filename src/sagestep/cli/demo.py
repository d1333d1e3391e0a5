"""`sagestep demo` (what `make demo` runs): the main job, locally, on the bundled real credit data.

It does what a user does by hand: copy the dataset and its config to the data bucket, start the training state
machine with the sample input from events/, follow it, and say where the results are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sagestep.registry import approvals
from sagestep.cli import UserError
from sagestep.cli.local import LiveReporter, add_runtime_arguments, open_runtime, read_input

DEMO_INPUT = Path("events/training_state_machine_credit_data.json")
CHALLENGER_INPUT = Path("events/training_state_machine_credit_data_xgboost.json")
DATASET_FILE = Path("data/credit_data/credit_data.csv")
DATASET_CONFIG = Path("ml/config/credit_data.yaml")


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="the main job locally on real credit data: train, gate, register, approve, deploy, score, A/B test a challenger")
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
    from sagestep.local.ab_demo import run_ab_demo

    root = args.template.resolve().parent
    execution_input = read_input(root / DEMO_INPUT)
    with open_runtime(args) as runtime:
        stage_dataset(runtime, execution_input, root / DATASET_FILE, root / DATASET_CONFIG)
        print(f"Training a {execution_input['Algorithm']} model on {DATASET_FILE} ({DATASET_CONFIG}) with TrainingStateMachine")
        reporter = LiveReporter(runtime)
        arn = runtime.start("TrainingStateMachine", execution_input)
        record = runtime.wait(arn, on_event=reporter.on_event, on_tick=reporter.on_tick)
        if record.status != "SUCCEEDED":
            print(f"\nThe training pipeline ended {record.status}: {record.error}: {record.cause}")
            print(f"History: sagestep local history {record.name} --workspace {args.workspace}")
            return 1
        output = record.output
        package_arn = output["Registered"]["ModelPackageArn"]
        sagemaker = runtime.client("sagemaker")
        package = sagemaker.describe_model_package(ModelPackageName=package_arn)
        run_prefix = output["Run"]["OutputS3Uri"]
        run_dir = runtime.local_path(run_prefix)
        report = runtime.local_path(output["Gate"]["ReportS3Uri"])  # written by the pipeline's report step
        metadata = package.get("CustomerMetadataProperties", {})
        print()
        print(f"Registered model package {package_arn}")
        print(f"  test AUC      {metadata.get('TestAuc')}   (gate: {', '.join(output['Gate']['Reasons']) or 'all checks passed'})")
        print(f"  run outputs   {run_dir}/  (preprocess/, train/, evaluation/, baseline/)")
        print(f"  report        {report}")
        print(f"  history       sagestep local history {record.name} --workspace {args.workspace}")

        print("\nApproving it (as a reviewer would in the Model Registry) and deploying it with DeploymentStateMachine")
        approvals.decide(sagemaker, package_arn, "approve", by="sagestep demo", reason="demo: gate passed, report reviewed")
        deployment = runtime.wait(runtime.start("DeploymentStateMachine", {"ModelPackageArn": package_arn}),
                                  on_event=reporter.on_event, on_tick=reporter.on_tick)
        if deployment.status != "SUCCEEDED":
            print(f"\nThe deployment ended {deployment.status}: {deployment.error}: {deployment.cause}")
            return 1
        endpoint = package["ModelPackageGroupName"]  # the model line's endpoint has its group's name
        scored = _score_held_out_rows(runtime, endpoint, run_dir, metadata.get("DatasetName", ""))
        runtime.endpoints.publish_metrics(runtime.client("cloudwatch"))
        print(f"\nEndpoint {endpoint} is InService (local); {scored} held-out applications scored through it.")

        print("\nTraining a challenger (XGBoost) with the same pipeline, then an A/B test at 10% of traffic")
        challenger_input = read_input(root / CHALLENGER_INPUT)
        challenger = runtime.wait(runtime.start("TrainingStateMachine", challenger_input), on_event=reporter.on_event,
                                  on_tick=reporter.on_tick)
        if challenger.status != "SUCCEEDED":
            print(f"\nThe challenger's training ended {challenger.status}: {challenger.error}: {challenger.cause}")
            return 1
        ab = run_ab_demo(
            runtime,
            challenger.output["Registered"]["ModelPackageArn"],
            run_dir / "preprocess" / "test" / "test.csv",
            dataset_config=root / DATASET_CONFIG,
            overrides={"TrafficShare": 0.1},
            plot_path=run_dir / "ab_evidence.png",
            endpoint=endpoint,
        )
        runtime.endpoints.stop_all()  # flushes the data capture files
        runtime.flush_metrics()
        capture_dir = runtime.local_path(f"s3://{runtime.bucket('ArtifactsBucket')}/capture/{endpoint}/")
        captured = sorted(capture_dir.rglob("*.jsonl"))
    print(f"\nResults under {args.workspace}:")
    print(f"  training report   {report}")
    print(f"  captured traffic  {sum(1 for f in captured for _ in f.open())} records in {len(captured)} file(s) under {capture_dir}/")
    if ab.get("PlotPath"):
        print(f"  A/B evidence      {ab['PlotPath']}  ({ab['Decision']})")
    print(f"  endpoints         sagestep local endpoints --workspace {args.workspace}")
    return 0 if ab["Status"] == "SUCCEEDED" else 1


def _score_held_out_rows(runtime: Any, endpoint: str, run_dir: Path, dataset: str, rows: int = 200) -> int:
    """Send real held-out applications (never seen in training) through the endpoint, one request each."""
    import csv

    from sagestep.serving import smoke

    sample = run_dir / "evaluation" / "sample_payload.tar.gz"
    features = smoke.rows_from_sample_payload(sample.read_bytes(), str(sample))["FeatureNames"]
    test_file = next((run_dir / "preprocess" / "test").glob("*.csv"))
    with open(test_file, newline="") as handle:
        records = list(csv.DictReader(handle))[:rows]
    client = runtime.client("sagemaker-runtime")
    shown = 0
    for index, record in enumerate(records):
        line = smoke.csv_line([record[name] for name in features])
        response = client.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=line.encode(),
            InferenceId=f"demo-{index}",
        )
        prediction = json.loads(response["Body"].read())["predictions"][0]
        if prediction["decision"] == "decline" and shown < 3:
            shown += 1
            print(f"  {dataset} test application {index}: score {prediction['score']:.3f} -> decline; reason codes: "
                  f"{', '.join(prediction['reason_codes'])}")
    return len(records)
