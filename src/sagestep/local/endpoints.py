"""SageMaker real-time endpoints, locally: one model-server process per production variant, a weighted router.

CreateEndpoint / UpdateEndpoint (patched into moto's SageMaker backend) start the variants' servers in the
background: the endpoint is `Creating` / `Updating` until every variant answers `/ping`, then `InService`. A
variant that cannot load (missing artifact, broken code) makes a new endpoint `Failed` with the server's error as
FailureReason; a failed update leaves the endpoint `InService` on its previous config with the FailureReason
set, as SageMaker's blue/green rollback does. InvokeEndpoint (boto3 `sagemaker-runtime`) is routed by
`TargetVariant`, else at random by the variants' current weights (UpdateEndpointWeightsAndCapacities changes
them). Servers live as long as the runtime session; an InService endpoint from an earlier session is started
again on its first invocation.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagestep.local.jobs import S3Store, parse_s3_uri

START_TIMEOUT_SECONDS = 60.0


class EndpointError(RuntimeError):
    pass


@dataclass
class VariantServer:
    variant: str
    model_name: str
    process: Any  # subprocess.Popen or forkserver.ForkedProcess
    port: int
    connections: threading.local = field(default_factory=threading.local, repr=False)

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        conn = getattr(self.connections, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.connections.conn = conn
        try:
            conn.request("POST", "/invocations", body=body, headers=headers)
            response = conn.getresponse()
        except (ConnectionError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.connections.conn = conn
            conn.request("POST", "/invocations", body=body, headers=headers)
            response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class EndpointManager:
    def __init__(self, workspace: Path, store: S3Store, backend_getter: Any, python: str | None = None,
                 on_change: Any = None) -> None:
        from sagestep.local import interpreters

        self.root = workspace / "endpoints"
        self.s3_root = workspace / "s3"
        self.tmp_dir = workspace / "tmp"
        self.on_change = on_change or (lambda endpoint_name, status: None)
        self.store = store
        self.backend = backend_getter
        self.python = python or interpreters.serve_python()  # the serving image's libraries (local/interpreters.py)
        self.servers: dict[str, dict[str, VariantServer]] = {}
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._metrics: list[tuple[str, str, str, float, str]] = []  # endpoint, variant, metric, value, unit

    # -- lifecycle driven by the SageMaker backend

    def schedule(self, endpoint_name: str, config_name: str, updating: bool) -> None:
        thread = threading.Thread(target=self._deploy, args=(endpoint_name, config_name, updating), daemon=True)
        self._threads.append(thread)
        thread.start()

    def busy(self) -> bool:
        """True while an endpoint's model servers are being started (real work a deployment waits for)."""
        return any(thread.is_alive() for thread in self._threads)

    def _deploy(self, endpoint_name: str, config_name: str, updating: bool) -> None:
        from sagestep.local.engine import HOOKS

        backend = self.backend()
        endpoint = backend.endpoints[endpoint_name]
        if HOOKS.take_fault("endpoint", "start") == "Stuck":
            return  # injected: the endpoint stays Creating/Updating, as when SageMaker cannot get capacity
        try:
            servers = self._start_config(endpoint_name, config_name)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the endpoint must leave Creating/Updating
            reason = str(exc) if isinstance(exc, EndpointError) else f"{type(exc).__name__}: {exc}"
            endpoint.failure_reason = reason[:1024]
            endpoint.endpoint_status = "InService" if updating else "Failed"
            self.on_change(endpoint_name, f"{endpoint.endpoint_status} ({'update failed, previous config kept' if updating else 'failed'}: {reason[:160]})")
            return
        if backend.endpoints.get(endpoint_name) is not endpoint:  # deleted while its servers were starting
            for server in servers.values():
                server.stop()
            return
        config = backend.endpoint_configs[config_name]
        with self._lock:  # servers and variant weights switch together: no request is routed to a stopped variant
            old = self.servers.get(endpoint_name, {})
            self.servers[endpoint_name] = servers
            endpoint.endpoint_config_name = config_name
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
            endpoint.data_capture_config = config.data_capture_config
            endpoint.failure_reason = None
            endpoint.endpoint_status = "InService"
        for server in old.values():
            server.stop()
        self.on_change(endpoint_name, f"InService ({config_name})")

    def wait_idle(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        for thread in list(self._threads):
            thread.join(timeout)

    def _start_config(self, endpoint_name: str, config_name: str) -> dict[str, VariantServer]:
        backend = self.backend()
        config = backend.endpoint_configs.get(config_name)
        if config is None:
            raise EndpointError(f"endpoint config {config_name} does not exist")
        capture = config.data_capture_config or {}
        started: dict[str, VariantServer] = {}
        try:
            for variant in list(config.production_variants) + shadow_variants(config):
                started[variant["VariantName"]] = self._start_variant(endpoint_name, config_name, variant, capture)
        except EndpointError:
            for server in started.values():
                server.stop()
            raise
        return started

    def _start_variant(self, endpoint_name: str, config_name: str, variant: dict[str, Any], capture: dict[str, Any]) -> VariantServer:
        backend = self.backend()
        model_name = variant["ModelName"]
        model = backend._models.get(model_name)
        if model is None:
            raise EndpointError(f"variant {variant['VariantName']}: model {model_name} does not exist")
        container = model.primary_container or (model.containers or [{}])[0]
        environment = dict(container.get("Environment") or {})
        program, submit = environment.get("SAGEMAKER_PROGRAM"), environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
        if not program or not submit:
            raise EndpointError(
                f"variant {variant['VariantName']}: model {model_name} needs SAGEMAKER_PROGRAM and "
                f"SAGEMAKER_SUBMIT_DIRECTORY in its container Environment to be served locally"
            )
        home = self.root / endpoint_name / config_name / variant["VariantName"]
        if home.exists():
            shutil.rmtree(home)
        model_dir, code_dir = home / "model", home / "code"
        model_dir.mkdir(parents=True)
        code_dir.mkdir(parents=True)
        try:
            self.store.download_extracted(container["ModelDataUrl"], model_dir)
            self.store.download_extracted(submit, code_dir)
        except Exception as exc:
            raise EndpointError(f"variant {variant['VariantName']}: cannot download the model or code: {exc}") from exc
        capture_spec: dict[str, Any] = {"enabled": bool(capture.get("EnableCapture", True)) and bool(capture)}
        if capture_spec["enabled"]:
            bucket, prefix = parse_s3_uri(capture["DestinationS3Uri"])
            modes = {option.get("CaptureMode") for option in capture.get("CaptureOptions", [])}
            capture_spec.update(
                sampling_percentage=capture.get("InitialSamplingPercentage", 100),
                destination_dir=str(self.s3_root / bucket / prefix.strip("/")),
                tmp_dir=str(self.tmp_dir),
                capture_input="Input" in modes,
                capture_output="Output" in modes,
            )
        port_file = home / "port.json"
        spec = {
            "endpoint": endpoint_name,
            "variant": variant["VariantName"],
            "program": program,
            "model_dir": str(model_dir),
            "code_dir": str(code_dir),
            "port_file": str(port_file),
            "capture": capture_spec,
        }
        (home / "spec.json").write_text(json.dumps(spec, indent=1))
        from sagestep.local import forkserver, interpreters, isolation

        server_env = {**_clean_env(), **{k: str(v) for k, v in environment.items()}}
        if getattr(model, "enable_network_isolation", False):  # the model's EnableNetworkIsolation (local/isolation.py)
            server_env = isolation.guard_environment(server_env)
        # Run as a file, not -m: the variant must import the sagestep of its own code bundle, not this one.
        argv = [str(Path(__file__).with_name("model_server.py")), str(home / "spec.json")]
        with open(home / "server.log", "wb") as log:
            process = forkserver.fork(self.python, interpreters.SERVE_PRELOAD, argv, env=server_env, cwd=os.getcwd(),
                                      stdout=log.fileno(), stderr=log.fileno())
            if process is None:
                process = subprocess.Popen([self.python, *argv], stdout=log, stderr=subprocess.STDOUT, env=server_env)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                answer = json.loads(port_file.read_text()) if port_file.exists() else None
            except ValueError:  # the server is still writing it
                answer = None
            if answer is not None:
                if "error" in answer:
                    process.wait(timeout=10)
                    raise EndpointError(f"variant {variant['VariantName']}: the model server failed to start: {answer['error']}")
                server = VariantServer(variant["VariantName"], model_name, process, int(answer["port"]))
                if _ping(server.port):
                    return server
            if process.poll() is not None:
                tail = (home / "server.log").read_text(errors="replace")[-800:]
                raise EndpointError(f"variant {variant['VariantName']}: the model server exited: {tail}")
            time.sleep(0.05)
        process.kill()
        raise EndpointError(f"variant {variant['VariantName']}: the model server did not answer /ping within {START_TIMEOUT_SECONDS:.0f}s")

    # -- invocations

    def invoke(
        self, endpoint_name: str, body: bytes, content_type: str, accept: str, target_variant: str | None, inference_id: str | None
    ) -> tuple[int, dict[str, str], bytes, str]:
        backend = self.backend()
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            raise EndpointError(f"Endpoint {endpoint_name} not found.")
        if endpoint.endpoint_status not in ("InService", "Updating"):
            raise EndpointError(f"Endpoint {endpoint_name} is not InService (status {endpoint.endpoint_status}).")
        with self._lock:
            servers = self.servers.get(endpoint_name)
            dead = {name: server.process.poll() for name, server in (servers or {}).items() if server.process.poll() is not None}
            if dead:  # as SageMaker replaces an instance that failed its health check: the endpoint stays InService
                self.on_change(endpoint_name, "InService (model server of " + ", ".join(
                    f"variant {name} exited with code {code}" for name, code in sorted(dead.items())) + "; replaced)")
                for server in servers.values():
                    server.stop()
                servers = None
            if servers is None:
                servers = self._start_config(endpoint_name, endpoint.endpoint_config_name)
                self.servers[endpoint_name] = servers
            variant = target_variant or _pick_variant(endpoint.production_variants)
        server = servers.get(variant)
        if server is None:
            raise EndpointError(f"Endpoint {endpoint_name} has no production variant {variant!r} (variants: {sorted(servers)})")
        headers = {"Content-Type": content_type, "Accept": accept}
        if inference_id:
            headers["X-Amzn-SageMaker-Inference-Id"] = inference_id
        status, response_headers, payload = self._post(endpoint_name, variant, server, body, headers)
        if target_variant is None:
            # Shadow variants get a copy of (a sampled share of) production traffic; their answers are only captured.
            config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
            for shadow in shadow_variants(config):
                share = float(shadow.get("InitialVariantWeight", 1.0) or 0.0)
                if shadow["VariantName"] in servers and (share >= 1.0 or random.random() < share):
                    self._post(endpoint_name, shadow["VariantName"], servers[shadow["VariantName"]], body, headers)
        return status, response_headers, payload, variant

    def _post(self, endpoint_name: str, variant: str, server: VariantServer, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        started = time.perf_counter()
        try:
            status, response_headers, payload = server.post(body, headers)
        except OSError as exc:  # the server died during this request: a 5xx of its variant, as the instance failing
            status, response_headers = 503, {"Content-Type": "text/plain"}
            payload = f"the model server of variant {variant} did not answer ({exc}); it is replaced".encode()
        overhead_us = (time.perf_counter() - started) * 1e6
        model_us = float(response_headers.get("X-Sagestep-Model-Latency-Ms", 0) or 0) * 1000
        observed = [("Invocations", 1.0, "None"), ("Invocation4XXErrors", float(400 <= status < 500), "None"),
                    ("Invocation5XXErrors", float(status >= 500), "None"), ("InvocationModelErrors", float(status >= 400), "None")]
        if status < 400:
            observed += [("ModelLatency", model_us, "Microseconds"), ("OverheadLatency", max(0.0, overhead_us - model_us), "Microseconds")]
        with self._lock:
            self._metrics.extend((endpoint_name, variant, name, value, unit) for name, value, unit in observed)
        return status, response_headers, payload

    def publish_metrics(self, cloudwatch: Any) -> int:
        """Put what the invocations observed into CloudWatch as SageMaker does (namespace AWS/SageMaker, dimensions
        EndpointName and VariantName), so alarms and the A/B guardrails read the same metrics locally."""
        with self._lock:
            pending, self._metrics = self._metrics, []
        grouped: dict[tuple[str, str, str, str], list[float]] = {}
        for endpoint_name, variant, name, value, unit in pending:
            grouped.setdefault((endpoint_name, variant, name, unit), []).append(value)
        data = []
        for (endpoint_name, variant, name, unit), values in grouped.items():
            counts: dict[float, float] = {}
            for value in values:
                key = round(value, 0) if unit == "Microseconds" else value
                counts[key] = counts.get(key, 0.0) + 1.0
            items = sorted(counts.items())
            for start in range(0, len(items), 150):  # PutMetricData takes at most 150 values per datum
                chunk = items[start:start + 150]
                data.append({
                    "MetricName": name,
                    "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": variant}],
                    "Values": [v for v, _ in chunk],
                    "Counts": [c for _, c in chunk],
                    "Unit": unit,
                })
        for start in range(0, len(data), 500):
            cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[start:start + 500])
        return len(pending)

    def variant_port(self, endpoint_name: str, variant: str) -> int:
        endpoint = self.backend().endpoints[endpoint_name]
        with self._lock:
            if endpoint_name not in self.servers:
                self.servers[endpoint_name] = self._start_config(endpoint_name, endpoint.endpoint_config_name)
            return self.servers[endpoint_name][variant].port

    def stop(self, endpoint_name: str) -> None:
        with self._lock:
            servers = self.servers.pop(endpoint_name, {})
        for server in servers.values():
            server.stop()

    def stop_all(self) -> None:
        self.wait_idle(timeout=START_TIMEOUT_SECONDS)
        with self._lock:
            for servers in self.servers.values():
                for server in servers.values():
                    server.stop()
            self.servers.clear()


def shadow_variants(config: Any) -> list[dict[str, Any]]:
    """ShadowProductionVariants of an endpoint config (moto drops them; sagemaker_backend keeps them here)."""
    return list(getattr(config, "shadow_production_variants", None) or [])


def _pick_variant(variants: list[dict[str, Any]]) -> str:
    weights = [float(v.get("CurrentWeight", v.get("DesiredWeight", 1.0)) or 0.0) for v in variants]
    if not any(weights):
        raise EndpointError("every production variant has weight 0")
    return random.choices([v["VariantName"] for v in variants], weights=weights)[0]


def _ping(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/ping")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _clean_env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL="http://127.0.0.1:9", PYTHONUNBUFFERED="1")
    return env
