"""The gateway's error model: ``{"error": {"code", "message"}}`` bodies, and the gRPC → HTTP status table."""

from __future__ import annotations

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from spoton.bootstrap.errors import NotFoundError


class ApiError(Exception):
    """An HTTP error with a machine-readable ``code`` (e.g. 404, ``not_found``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


GRPC_TO_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_argument"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "failed_precondition"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "deadline_exceeded"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "unimplemented"),
}


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_body(exc.status, exc.code, exc.message)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return error_body(exc.status_code, "http_error", str(exc.detail))


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return error_body(422, "validation_error", f"{where}: {first.get('msg', 'invalid request')}")


async def rpc_error(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
    status, code = GRPC_TO_HTTP.get(exc.code(), (502, "upstream_error"))
    return error_body(status, code, exc.details() or exc.code().name)


async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
    return error_body(404, "not_found", str(exc))


async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
    return error_body(400, "invalid_argument", str(exc))


def add_exception_handlers(app: FastAPI) -> None:
    """Every error the routes raise, as the JSON error body with its HTTP status."""
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(grpc.aio.AioRpcError, rpc_error)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ValueError, bad_value)
