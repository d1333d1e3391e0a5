"""One production variant's container, locally: the SageMaker hosting contract over a script-mode program.

    python -m sagestep.local.model_server SPEC.json

Serves `GET /ping` and `POST /invocations` on 127.0.0.1 (asyncio, HTTP/1.1 keep-alive) (the port is written to `spec["port_file"]`), calls the
program's `model_fn` once and `input_fn` → `predict_fn` → `output_fn` per request, and writes data capture
records in the SageMaker format and prefix layout (`{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl`)
for the sampled share of requests. A handler exception with a `status_code` attribute of 4xx is the client's
error (answered with that status and the message); any other exception is a 500. The process never dies on a
bad request.
"""

from __future__ import annotations

import asyncio
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
from pathlib import Path
from typing import Any


class CaptureWriter:
    """Buffers capture records and writes one JSONL file per hour and flush, as SageMaker does (per variant)."""

    def __init__(self, root: Path, endpoint: str, variant: str, tmp_dir: Path, flush_seconds: float = 1.0) -> None:
        self.base = root / endpoint / variant
        self.tmp_dir = tmp_dir
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
            # written beside the workspace's S3 files and renamed in: the local cloud never lists a partial file
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.tmp_dir / f"{uuid.uuid4().hex}.part"
            with open(tmp, "w") as handle:
                handle.write("\n".join(lines) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
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
            CaptureWriter(Path(capture["destination_dir"]), spec["endpoint"], spec["variant"], Path(capture["tmp_dir"]))
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


class Dispatcher:
    """HTTP routes of the container: /ping, /invocations, and /sagestep/latency (for benchmarks)."""

    def __init__(self, variant: Variant, latency: LatencyReservoir) -> None:
        self.variant = variant
        self.latency = latency

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str, dict[str, str]]:
        if method == "GET" and path == "/ping":
            return 200, b"", "text/plain", {}
        if method == "GET" and path == "/sagestep/latency":
            return 200, json.dumps(self.latency.take()).encode(), "application/json", {}
        if method != "POST" or path != "/invocations":
            return 404, b'{"error":"not found"}', "application/json", {}
        content_type = headers.get("content-type", "application/json")
        accept = headers.get("accept") or "application/json"
        if accept == "*/*":
            accept = "application/json"
        started = time.perf_counter()
        try:
            output, output_type = self.variant.invoke(body, content_type, accept)
        except Exception as exc:  # a bad request or a model error must never take the server down
            status = getattr(exc, "status_code", 500)
            status = status if isinstance(status, int) and 400 <= status < 600 else 500
            message = str(exc) if status < 500 else f"{type(exc).__name__}: {exc}"
            return status, json.dumps({"error": message}).encode(), "application/json", {}
        model_ms = (time.perf_counter() - started) * 1000
        self.variant.capture(body, content_type, output, output_type, headers.get("x-amzn-sagemaker-inference-id"))
        self.latency.add((time.perf_counter() - started) * 1000)
        return 200, output, output_type, {"X-Sagestep-Model-Latency-Ms": f"{model_ms:.3f}"}


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 406: "Not Acceptable", 415: "Unsupported Media Type"}


async def serve_connection(dispatcher: Dispatcher, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/1.1 with keep-alive, one request at a time per connection. Scoring runs inline on the event loop, one
    request at a time, so a request's server-side time is its own work and not a wait for the GIL."""
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                return
            method, path, _version = request_line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length") or 0))
            status, payload, content_type, extra = dispatcher.handle(method, path, headers, body)
            head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", f"Content-Type: {content_type}", f"Content-Length: {len(payload)}"]
            head += [f"{key}: {value}" for key, value in extra.items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        return  # a client hanging up mid-request (load generators do) is not a server error
    finally:
        writer.close()


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
    dispatcher = Dispatcher(variant, LatencyReservoir())

    async def run() -> None:
        server = await asyncio.start_server(lambda r, w: serve_connection(dispatcher, r, w), "127.0.0.1", 0, backlog=1024)
        Path(spec["port_file"]).write_text(json.dumps({"port": server.sockets[0].getsockname()[1]}))
        parent = os.getppid()
        while os.getppid() == parent:  # a model server never outlives the runtime (or benchmark) that started it
            await asyncio.sleep(1.0)
        server.close()

    try:
        asyncio.run(run())
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
