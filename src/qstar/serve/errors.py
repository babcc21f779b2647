"""OpenAI-style error objects, and the request-size guard.

Every failure a client can cause is answered with a 4xx status and the body OpenAI's API uses,
``{"error": {"message", "type", "param", "code"}}``, so stock clients raise their usual
exceptions (``openai.BadRequestError``, ``AuthenticationError``, ...).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qstar.errors import QstarError

__all__ = ["error_body", "error_response", "install_error_handlers", "BodyLimitMiddleware", "APIError"]

_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


class APIError(Exception):
    """Raise inside a route to answer with ``status`` and an OpenAI-style error object."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param=param, code=code), status_code=status)


def _validation_message(err: RequestValidationError) -> tuple[str, str | None]:
    first = err.errors()[0] if err.errors() else {"msg": "invalid request", "loc": ()}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON", None
    msg = first.get("msg", "invalid value")
    return (f"{param}: {msg}" if param else msg), param


def install_error_handlers(app: Any) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(err)
        return error_response(400, message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = "request_too_large" if err.status_code == 413 else None
        return error_response(err.status_code, str(err.detail), code=code)

    @app.exception_handler(APIError)
    async def _api(request: Request, err: APIError) -> JSONResponse:
        return error_response(err.status, err.message, param=err.param, code=err.code)

    @app.exception_handler(QstarError)
    async def _qstar(request: Request, err: QstarError) -> JSONResponse:
        return error_response(400, str(err))

    @app.exception_handler(NotImplementedError)
    async def _not_implemented(request: Request, err: NotImplementedError) -> JSONResponse:
        return error_response(400, str(err) or "not supported by this model")

    @app.exception_handler(Exception)
    async def _internal(request: Request, err: Exception) -> JSONResponse:
        return error_response(500, f"internal error: {type(err).__name__}: {err}")


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive`` mid-body; an HTTPException so FastAPI's body reader re-raises it."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body is larger than this server's limit of {max_bytes} bytes")


class BodyLimitMiddleware:
    """Answer 413 to a request body over ``max_bytes``: by its Content-Length up front, or while
    it streams in (chunked uploads), before the body is ever parsed."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Any) -> None:
        body = json.dumps(
            error_body(
                413,
                f"request body is larger than this server's limit of {self.max_bytes} bytes",
                code="request_too_large",
            )
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._reject(send)
            return
        received, started = 0, False

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._reject(send)
