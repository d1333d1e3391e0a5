"""Subprocess of a local Batch Transform job: the script-mode handler functions over every input file."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    sys.path.insert(0, spec["code_dir"])
    program = importlib.import_module(spec["program"].removesuffix(".py"))
    model = program.model_fn(spec["model_dir"])
    input_dir, output_dir = Path(spec["input_dir"]), Path(spec["output_dir"])
    for path in sorted(p for p in input_dir.rglob("*") if p.is_file()):
        body = path.read_text()
        records = [line for line in body.splitlines() if line.strip()] if spec["split_type"] == "Line" else [body]
        if spec["split_type"] == "Line" and spec["batch_strategy"] == "MultiRecord":
            outputs = _score(program, model, "\n".join(records), spec).splitlines() if records else []
        else:
            outputs = [_score(program, model, record, spec).strip() for record in records]
        if len(outputs) != len(records):
            raise SystemExit(f"{path.name}: {len(records)} records in, {len(outputs)} predictions out")
        if spec.get("capture"):
            _capture(spec, path.name, records, outputs)
        if spec["join_source"] == "Input":
            outputs = [f"{record},{output}" for record, output in zip(records, outputs)]
        destination = output_dir / f"{path.relative_to(input_dir)}.out"
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text("\n".join(outputs) + ("\n" if outputs else ""))
    return 0


def _capture(spec: dict[str, Any], source: str, records: list[str], outputs: list[str]) -> None:
    import datetime as dt
    import uuid

    now = dt.datetime.now(dt.timezone.utc)
    directory = Path(spec["capture"]["directory"]) / now.strftime("%Y/%m/%d/%H")
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, (record, output) in enumerate(zip(records, outputs)):
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if spec["capture"]["generate_inference_id"]:
            metadata["inferenceId"] = f"{source}:{index}"
        lines.append(json.dumps({
            "captureData": {
                "endpointInput": {"observedContentType": spec["content_type"], "mode": "INPUT", "data": record, "encoding": "CSV"},
                "endpointOutput": {"observedContentType": spec["accept"], "mode": "OUTPUT", "data": output, "encoding": "CSV"},
            },
            "eventMetadata": metadata,
            "eventVersion": "0",
        }, separators=(",", ":")))
    (directory / f"{Path(source).stem}-{uuid.uuid4().hex[:8]}.jsonl").write_text("\n".join(lines) + "\n")


def _score(program: Any, model: Any, payload: str, spec: dict[str, Any]) -> str:
    data = program.input_fn(payload, spec["content_type"])
    prediction = program.predict_fn(data, model)
    result = program.output_fn(prediction, spec["accept"])
    if isinstance(result, tuple):
        result = result[0]
    return result.decode() if isinstance(result, bytes) else str(result)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
