"""Security details: TLS (and mutual TLS) between services, API keys compared in constant time, secrets kept out
of the logs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.clients import ServiceClients
from gateway.config import GatewaySettings
from spoton.bootstrap.settings import key_matches
from spoton.launcher import Stack, free_port, wait_serving
from spoton.v1 import mapping_pb2, mapping_pb2_grpc
from tests.conftest import AUTH, SERVICE_KEY, gwapi


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("spoton-gateway")
    files = {
        "ca": d / "ca.pem",
        "cert": d / "server.pem",
        "key": d / "server.key",
        "client_cert": d / "client.pem",
        "client_key": d / "client.key",
    }
    ca.cert_pem.write_to_path(files["ca"])
    server.cert_chain_pems[0].write_to_path(files["cert"])
    server.private_key_pem.write_to_path(files["key"])
    client.cert_chain_pems[0].write_to_path(files["client_cert"])
    client.private_key_pem.write_to_path(files["client_key"])
    return files


def start_tls_mapping(stack: Stack, key: str, env: dict[str, str]) -> str:
    port = free_port()
    stack.start_service(
        "mapping", key, {"MAPPING_SVC_PORT": str(port), "MAPPING_SVC_METRICS_PORT": str(free_port()), **env}
    )
    return f"127.0.0.1:{port}"


# The demo set's cameras, seeded by every mapping process from its YAML (the stack's video sets directory).
DEMO_CAMERAS = {("demo", f"cam{i}") for i in range(1, 5)}


def calibrated(reply: mapping_pb2.ListCalibrationsResponse) -> set[tuple[str, str]]:
    return {(c.video_set, c.camera_id) for c in reply.calibrations}


def wait_serving_over(addr: str, creds: grpc.ChannelCredentials) -> None:
    """Block until the health service at ``addr`` says SERVING over a secure channel (before, the service answers
    from an empty in-memory store: its PostgreSQL store is attached during warm-up)."""
    stub = health_pb2_grpc.HealthStub(grpc.secure_channel(addr, creds))
    for _ in range(300):
        try:
            if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{addr} not SERVING over TLS")


def list_calibrations(channel: grpc.Channel) -> set[tuple[str, str]]:
    """(video set, camera) of every calibration the mapping service behind ``channel`` knows."""
    stub = mapping_pb2_grpc.MappingServiceStub(channel)
    key = (("x-api-key", SERVICE_KEY),)  # the gateway's service key, as the stages require
    return calibrated(stub.ListCalibrations(mapping_pb2.ListCalibrationsRequest(), metadata=key, timeout=5))


def test_tls_between_services(stack: Stack, pki: dict[str, Path]) -> None:
    addr = start_tls_mapping(stack, "mapping-tls", {"GRPC_TLS_CERT": str(pki["cert"]), "GRPC_TLS_KEY": str(pki["key"])})
    try:
        creds = grpc.ssl_channel_credentials(pki["ca"].read_bytes())
        wait_serving_over(addr, creds)
        direct = list_calibrations(grpc.secure_channel(addr, creds))
        assert direct >= DEMO_CAMERAS, direct  # measured: 8 calibrations (demo cam1-4, rules cam1-4)
        with pytest.raises(grpc.RpcError) as plain:
            list_calibrations(grpc.insecure_channel(addr))
        assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
        # The gateway's clients speak TLS when GRPC_TLS_CA is set.
        settings = GatewaySettings(mapping_svc_addr=addr, grpc_tls_ca=str(pki["ca"]), service_key=SERVICE_KEY)

        async def through_gateway_clients() -> set[tuple[str, str]]:
            clients = ServiceClients.connect(settings)
            try:
                return calibrated(
                    await clients.mapping.ListCalibrations(
                        mapping_pb2.ListCalibrationsRequest(), metadata=clients.metadata, timeout=5
                    )
                )
            finally:
                await clients.close()

        assert asyncio.run(through_gateway_clients()) == direct  # the same answer, over TLS
    finally:
        stack.procs.pop("mapping-tls").terminate()


def test_mutual_tls_refuses_clients_without_a_certificate(stack: Stack, pki: dict[str, Path]) -> None:
    env = {"GRPC_TLS_CERT": str(pki["cert"]), "GRPC_TLS_KEY": str(pki["key"]), "GRPC_TLS_CLIENT_CA": str(pki["ca"])}
    addr = start_tls_mapping(stack, "mapping-mtls", env)
    try:
        with_cert = grpc.ssl_channel_credentials(
            pki["ca"].read_bytes(), pki["client_key"].read_bytes(), pki["client_cert"].read_bytes()
        )
        wait_serving_over(addr, with_cert)
        assert list_calibrations(grpc.secure_channel(addr, with_cert)) >= DEMO_CAMERAS  # measured: 8 calibrations
        with pytest.raises(grpc.RpcError):
            list_calibrations(grpc.secure_channel(addr, grpc.ssl_channel_credentials(pki["ca"].read_bytes())))
    finally:
        stack.procs.pop("mapping-mtls").terminate()


def test_key_comparison() -> None:
    keys = frozenset({"alpha-key", "beta-key"})
    assert key_matches("beta-key", keys) and not key_matches("beta-ke", keys)
    assert not key_matches("", keys) and not key_matches(None, keys) and not key_matches("x", frozenset())


def test_secrets_never_reach_the_logs(stack: Stack) -> None:
    """The database URL's password and the API keys of every process never appear in any service log."""
    wait_serving(stack.addr("mapping"))
    secrets = [k.split(":")[0] for k in stack.env.get("API_KEYS", "").split(",") if k]
    secrets.append(stack.env["SERVICE_KEY"])
    url = stack.env["DATABASE_URL"]
    if "@" in url and ":" in url.split("@")[0].split("//")[-1]:
        secrets.append(url.split("@")[0].split(":")[-1])
    secrets.append("s3cret-canary-key")
    url = stack.start_gateway("gateway-secret", {"API_KEYS": "s3cret-canary-key"})
    try:
        assert gwapi.get(f"{url}/api/v1/sessions/", headers={"X-API-Key": "wrong"}, timeout=5).status_code == 401
    finally:
        stack.procs.pop("gateway-secret").terminate()
    for log in stack.log_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"{secret!r} found in {log.name}"


def test_limits_on_cameras_sessions_and_websocket_clients(stack: Stack) -> None:
    import websockets

    env = {"MAX_CONCURRENT_SESSIONS": "1", "MAX_CAMERAS_PER_SESSION": "2", "MAX_WS_CLIENTS_PER_SESSION": "1"}
    url = stack.start_gateway("gateway-limits", env)
    port = int(url.rsplit(":", 1)[1])
    try:
        api = url + "/api/v1/sessions/"
        three = gwapi.post(api, json={"video_set": "demo", "cameras": ["cam1", "cam2", "cam3"]}, timeout=10)
        assert three.status_code == 400 and "at most 2 cameras" in three.json()["error"]["message"]
        body = {"video_set": "demo", "cameras": ["cam1"], "options": {"loop": True}}
        sid = gwapi.post(api, json=body, timeout=10).json()["session_id"]
        second = gwapi.post(api, json=body, timeout=10)
        assert second.status_code == 429 and second.json()["error"]["code"] == "too_many_sessions"

        async def two_clients() -> int:
            ws_url = f"ws://127.0.0.1:{port}/ws/tracking/{sid}"
            async with websockets.connect(ws_url, additional_headers=AUTH) as first:
                await first.recv()
                async with websockets.connect(ws_url, additional_headers=AUTH) as extra:
                    try:
                        await extra.recv()
                    except websockets.exceptions.ConnectionClosed as exc:
                        return exc.rcvd.code if exc.rcvd else 0
            return 0

        assert asyncio.run(two_clients()) == 4429
        assert gwapi.delete(api + sid, timeout=30).json()["status"] == "stopped"
    finally:
        stack.procs.pop("gateway-limits").terminate()


def test_probe_command_speaks_mutual_tls(stack: Stack, pki: dict[str, Path]) -> None:
    """The chart's TLS probe (``python -m spoton.bootstrap.probe localhost:PORT`` with the pod's GRPC_TLS_* client
    settings) reports a mutual-TLS service healthy; without them the handshake fails and so does the probe."""
    import os
    import subprocess
    import sys

    env = {"GRPC_TLS_CERT": str(pki["cert"]), "GRPC_TLS_KEY": str(pki["key"]), "GRPC_TLS_CLIENT_CA": str(pki["ca"])}
    addr = start_tls_mapping(stack, "mapping-probe", env)
    port = addr.rsplit(":", 1)[1]
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_TLS_")}
    client = {
        "GRPC_TLS_CA": str(pki["ca"]),
        "GRPC_TLS_CLIENT_CERT": str(pki["client_cert"]),
        "GRPC_TLS_CLIENT_KEY": str(pki["client_key"]),
    }

    def probe(extra: dict[str, str]) -> int:
        cmd = [sys.executable, "-m", "spoton.bootstrap.probe", f"localhost:{port}"]
        return subprocess.run(cmd, env=base | extra, capture_output=True, timeout=30).returncode

    try:
        for _ in range(150):
            if probe(client) == 0:
                break
            asyncio.run(asyncio.sleep(0.3))
        assert probe(client) == 0
        assert probe({}) == 1  # plaintext against TLS
        assert probe({"GRPC_TLS_CA": str(pki["ca"])}) == 1  # TLS without the client certificate
    finally:
        stack.procs.pop("mapping-probe").terminate()
