"""Bad input everywhere: generated protobuf messages sent to every RPC of every service (hypothesis), and
generated requests sent to every gateway operation (schemathesis), against a stack of its own on a throwaway
database. Servers never crash, never answer UNKNOWN/INTERNAL or HTTP 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import numpy as np
import pgserver
import pytest
import schemathesis
from google.protobuf import descriptor as _descriptor
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from spoton.launcher import SERVICES, Stack, start_stack
from spoton.v1 import analytics_pb2, detection_pb2, mapping_pb2, reid_pb2, tracking_pb2
from tests.conftest import AUTH, AUTH_ENV, service_channel

FD = _descriptor.FieldDescriptor
MODULES = {
    "detection": detection_pb2,
    "tracking": tracking_pb2,
    "reid": reid_pb2,
    "mapping": mapping_pb2,
    "analytics": analytics_pb2,
}
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
}
# Real ids and a real image now and then, so generated messages reach past the first validation.
NAMES = st.sampled_from(["demo", "cam1", "cam3", "", "x" * 300, "../etc", "\x00", "ünï"])
JPEG = cv2.imencode(".jpg", np.full((48, 64, 3), 120, np.uint8))[1].tobytes()


def _scalar(field: FD) -> st.SearchStrategy:
    t = field.type
    if t in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if t == FD.TYPE_FLOAT else 64)
    if t in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return st.one_of(st.integers(-3, 1000), st.integers(-(2**63), 2**63 - 1))
    if t in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return st.one_of(st.integers(0, 1000), st.integers(0, 2**64 - 1))
    if t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32, FD.TYPE_ENUM):
        return st.one_of(st.integers(-3, 100), st.integers(-(2**31), 2**31 - 1))
    if t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return st.one_of(st.integers(0, 100), st.integers(0, 2**32 - 1))
    if t == FD.TYPE_BOOL:
        return st.booleans()
    if t == FD.TYPE_STRING:
        return st.one_of(NAMES, st.text(max_size=24))
    return st.one_of(st.just(JPEG), st.binary(max_size=256))


def message(desc: _descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy:
    """Any message of this type: every field optional, repeated fields short, nesting cut at depth 3."""
    cls = GetMessageClass(desc)
    if desc.full_name.startswith("google.protobuf.") or depth > 3:
        return st.builds(cls)
    parts = {}
    for f in desc.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            continue
        one = message(f.message_type, depth + 1) if f.type == FD.TYPE_MESSAGE else _scalar(f)
        parts[f.name] = st.lists(one, max_size=3) if f.is_repeated else one

    def build(values: dict) -> object:
        msg = cls()
        for name, value in values.items():
            field = desc.fields_by_name[name]
            if field.is_repeated:
                getattr(msg, name).extend(value)
            elif field.type == FD.TYPE_MESSAGE:
                getattr(msg, name).CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return st.fixed_dictionaries({}, optional=parts).map(build)


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Iterator[Stack]:
    db = pgserver.get_server(tmp_path_factory.mktemp("fuzz-db"), cleanup_mode="stop")
    stack = start_stack(tmp_path_factory.mktemp("fuzz-logs"), db.get_uri(), demo_dir, extra_env=AUTH_ENV)
    yield stack
    stack.stop()
    db.cleanup()


def methods() -> list[tuple[str, _descriptor.MethodDescriptor]]:
    out = []
    for service, module in MODULES.items():
        for svc in module.DESCRIPTOR.services_by_name.values():
            out.extend((service, m) for m in svc.methods)
    return out


@pytest.mark.parametrize(("service", "method"), methods(), ids=lambda v: getattr(v, "name", v))
def test_generated_messages_never_break_a_service(fuzz_stack: Stack, service: str, method) -> None:  # type: ignore[no-untyped-def]
    path = f"/{method.containing_service.full_name}/{method.name}"
    req_cls, resp_cls = GetMessageClass(method.input_type), GetMessageClass(method.output_type)
    channel = service_channel(fuzz_stack.addr(service))  # past the service-key check, into the handlers
    ser, des = req_cls.SerializeToString, resp_cls.FromString
    if method.client_streaming and method.server_streaming:
        call = channel.stream_stream(path, ser, des)
    elif method.client_streaming:
        call = channel.stream_unary(path, ser, des)
    elif method.server_streaming:
        call = channel.unary_stream(path, ser, des)
    else:
        call = channel.unary_unary(path, ser, des)
    seen: set[grpc.StatusCode] = set()

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.lists(message(method.input_type), min_size=1, max_size=3))
    def send(requests: list) -> None:
        try:
            result = call(iter(requests) if method.client_streaming else requests[0], timeout=20)
            if method.server_streaming:
                list(result)
            seen.add(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            code = exc.code()
            seen.add(code)
            assert code in ALLOWED, f"{path}: {code.name} {exc.details()}"

    try:
        send()
        fuzz_stack._check_alive(service)
        health = grpc.insecure_channel(fuzz_stack.addr(service))
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        reply = health_pb2_grpc.HealthStub(health).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        channel.close()


def test_gateway_never_answers_5xx(fuzz_stack: Stack) -> None:
    """Every operation of the gateway's OpenAPI, with schemathesis' generated requests (valid and not)."""
    schema = schemathesis.openapi.from_url(fuzz_stack.gateway_url + "/openapi.json", headers=dict(AUTH))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def call(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(base_url=fuzz_stack.gateway_url, headers=dict(AUTH), timeout=30)
            case.validate_response(response, checks=[not_a_server_error])

        call()
    for name in (*SERVICES, "gateway"):
        fuzz_stack._check_alive(name)
