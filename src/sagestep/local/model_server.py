"""One production variant's container, locally: the SageMaker hosting contract over a script-mode program.

    python -m sagestep.local.model_server SPEC.json

Serves `GET /ping` and `POST /invocations` on 127.0.0.1 (the port is written to `spec["port_file"]`), calls the
program's `model_fn` once and `input_fn` → `predict_fn` → `output_fn` per request, and writes data capture
records in the SageMaker format and prefix layout (`{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl`)
for the sampled share of requests. A handler exception with a `status_code` attribute of 4xx is the client's
error (answered with that status and the message); any other exception is a 500. The process never dies on a
bad request.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
import os
import random
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class CaptureWriter:
    """Buffers capture records and writes one JSONL file per hour and flush, as SageMaker does (per variant)."""

    def __init__(self, root: Path, endpoint: str, variant: str, flush_seconds: float = 1.0) -> None:
        self.base = root / endpoint / variant
        self.flush_seconds = flush_seconds
        self._buffer: list[tuple[dt.datetime, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def add(self, when: dt.datetime, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self._buffer.append((when, line))

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            buffer, self._buffer = self._buffer, []
        by_hour: dict[str, list[str]] = {}
        for when, line in buffer:
            by_hour.setdefault(when.strftime("%Y/%m/%d/%H"), []).append(line)
        for hour, lines in by_hour.items():
            directory = self.base / hour
            directory.mkdir(parents=True, exist_ok=True)
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%M-%S-%f")
            path = directory / f"{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
            tmp = path.with_suffix(".tmp")
            tmp.write_text("\n".join(lines) + "\n")
            tmp.replace(path)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


def _encoding(content_type: str) -> str:
    return "CSV" if "csv" in content_type else "JSON" if "json" in content_type else "BASE64"


def _captured(content_type: str, mode: str, payload: bytes) -> dict[str, Any]:
    encoding = _encoding(content_type)
    data = base64.b64encode(payload).decode() if encoding == "BASE64" else payload.decode("utf-8", "replace")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


class Variant:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        code_dir = spec["code_dir"]
        sys.path.insert(0, code_dir)  # the variant's own sagestep package and program come first
        module_file = Path(code_dir) / spec["program"]
        loader = importlib.util.spec_from_file_location(Path(spec["program"]).stem, module_file)
        if loader is None or loader.loader is None:
            raise FileNotFoundError(f"{module_file}: SAGEMAKER_PROGRAM not found in the submit directory")
        self.program = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(self.program)
        self.model = self.program.model_fn(spec["model_dir"])
        capture = spec.get("capture") or {}
        self.sampling = float(capture.get("sampling_percentage", 0)) / 100.0
        self.capture_input = capture.get("capture_input", False)
        self.capture_output = capture.get("capture_output", False)
        self.writer = (
            CaptureWriter(Path(capture["destination_dir"]), spec["endpoint"], spec["variant"])
            if capture.get("enabled")
            else None
        )

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        data = self.program.input_fn(body, content_type)  # bytes, as the inference toolkit passes them
        prediction = self.program.predict_fn(data, self.model)
        result = self.program.output_fn(prediction, accept)
        payload, out_type = (result if isinstance(result, tuple) else (result, accept))
        return (payload.encode("utf-8") if isinstance(payload, str) else payload), out_type

    def capture(self, body: bytes, content_type: str, output: bytes, output_type: str, inference_id: str | None) -> None:
        if self.writer is None or random.random() >= self.sampling:
            return
        now = dt.datetime.now(dt.timezone.utc)
        capture_data: dict[str, Any] = {}
        if self.capture_input:
            capture_data["endpointInput"] = _captured(content_type, "INPUT", body)
        if self.capture_output:
            capture_data["endpointOutput"] = _captured(output_type, "OUTPUT", output)
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if inference_id:
            metadata["inferenceId"] = inference_id
        self.writer.add(now, {"captureData": capture_data, "eventMetadata": metadata, "eventVersion": "0"})


def make_handler(variant: Variant, latency: LatencyReservoir | None = None) -> type[BaseHTTPRequestHandler]:
    latency = latency or LatencyReservoir()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

        def _reply(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            if self.path == "/ping":
                self._reply(200, b"", "text/plain")
            elif self.path == "/sagestep/latency":
                self._reply(200, json.dumps(latency.take()).encode(), "application/json")
            else:
                self._reply(404, b'{"error":"not found"}', "application/json")

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != "/invocations":
                self._reply(404, b'{"error":"not found"}', "application/json")
                return
            content_type = self.headers.get("Content-Type", "application/json")
            accept = self.headers.get("Accept") or "application/json"
            if accept == "*/*":
                accept = "application/json"
            started = time.perf_counter()
            try:
                output, output_type = variant.invoke(body, content_type, accept)
            except Exception as exc:  # a bad request or a model error must never take the server down
                status = getattr(exc, "status_code", 500)
                status = status if isinstance(status, int) and 400 <= status < 600 else 500
                message = str(exc) if status < 500 else f"{type(exc).__name__}: {exc}"
                self._reply(status, json.dumps({"error": message}).encode(), "application/json")
                return
            model_ms = (time.perf_counter() - started) * 1000
            variant.capture(body, content_type, output, output_type, self.headers.get("X-Amzn-SageMaker-Inference-Id"))
            self._reply(200, output, output_type, {"X-Sagestep-Model-Latency-Ms": f"{model_ms:.3f}"})
            latency.add((time.perf_counter() - started) * 1000)

    return Handler


class ModelHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # socketserver's default of 5 drops connections under 50 concurrent clients

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client hanging up mid-request (load generators do) is not a server error


class LatencyReservoir:
    """Server-side time per invocation (request read to response written), for `GET /sagestep/latency`."""

    def __init__(self) -> None:
        self._values: list[float] = []
        self._lock = threading.Lock()

    def add(self, milliseconds: float) -> None:
        with self._lock:
            self._values.append(milliseconds)

    def take(self) -> dict[str, float]:
        with self._lock:
            values, self._values = sorted(self._values), []
        if not values:
            return {"count": 0}
        pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
        return {"count": len(values), "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": values[-1]}


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        variant = Variant(spec)
    except Exception as exc:
        Path(spec["port_file"]).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    server = ModelHTTPServer(("127.0.0.1", 0), make_handler(variant))
    parent = os.getppid()

    def watch_parent() -> None:  # a model server never outlives the runtime (or benchmark) that started it
        while os.getppid() == parent:
            time.sleep(1.0)
        server.shutdown()

    threading.Thread(target=watch_parent, daemon=True).start()
    Path(spec["port_file"]).write_text(json.dumps({"port": server.server_address[1]}))
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if variant.writer is not None:
            variant.writer.close()
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sys.exit(main(sys.argv[1]))
