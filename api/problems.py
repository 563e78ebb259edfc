"""RFC 9457 problem details for every error the API returns, validation errors included.

Routes raise an ``ApiProblem`` subclass; the class carries the status, a stable ``code`` and
the public title, so no route builds an error response by hand. Unexpected exceptions become a
500 problem that tells the client nothing internal (the log has the traceback).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from processor.core.errors import PipelineError, TransientError

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:imgpipe:problem:"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where the bad value is, e.g. ['query', 'limit']")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document (media type application/problem+json)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:imgpipe:problem:not_found",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "no image with id 'mfrggzdfmztwq2lknnwg23tpoa'",
                    "instance": "/images/mfrggzdfmztwq2lknnwg23tpoa",
                    "code": "not_found",
                }
            ]
        }
    )

    type: str = Field("about:blank", description="URI naming the kind of problem")
    title: str = Field(description="short summary, the same for every problem of this type")
    status: int = Field(ge=100, le=599)
    detail: str | None = Field(None, description="what went wrong this time")
    instance: str | None = Field(None, description="the request path")
    code: str = Field(description="stable machine-readable code, e.g. invalid_cursor")
    errors: list[FieldError] | None = Field(None, description="validation errors, one per field")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json for these status codes."""
    return {
        s: {
            "model": Problem,
            "description": HTTPStatus(s).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }


class ApiProblem(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.headers = headers


class BadRequest(ApiProblem):
    status, code = 400, "bad_request"


class InvalidCursorProblem(ApiProblem):
    status, code = 400, "invalid_cursor"


class Unauthorized(ApiProblem):
    status, code = 401, "unauthorized"


class Forbidden(ApiProblem):
    status, code = 403, "forbidden"


class NotFound(ApiProblem):
    status, code = 404, "not_found"


class Conflict(ApiProblem):
    status, code = 409, "conflict"


class UploadTooLarge(ApiProblem):
    status, code = 413, "upload_too_large"


class UnsupportedMediaType(ApiProblem):
    status, code = 415, "unsupported_content_type"


class ServiceUnavailable(ApiProblem):
    status, code = 503, "service_unavailable"


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    errors: list[FieldError] | None = None,
) -> JSONResponse:
    body = Problem(
        type=TYPE_PREFIX + code,
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        code=code,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "content_too_large",
    415: "unsupported_media_type",
}


async def _on_api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(request, exc.status, exc.code, exc.detail, headers=exc.headers)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's own 404 (no route) and 405 (wrong method, with its Allow header).
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        # Starlette lists the methods of the first route on this path only; reads and writes
        # of one path live in different routers, so collect them all (RFC 9110 Allow).
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(request, exc.status_code, code, detail, headers=headers or None)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    # Probe each method through the public Route.matches: routers nest, so listing the
    # routes themselves would depend on FastAPI internals.
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The offending input is left out on purpose: echoing it back could reflect secrets or
    # megabytes of garbage.
    errors = [
        FieldError(loc=list(e.get("loc", ())), msg=str(e.get("msg", "")), type=str(e.get("type")))
        for e in exc.errors()
    ]
    return problem_response(
        request, 422, "validation_error", "the request is not valid", errors=errors
    )


async def _on_pipeline_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PipelineError)
    if isinstance(exc, TransientError):
        logger.warning("transient backend error on %s: %s", request.url.path, exc.message)
        return problem_response(
            request,
            503,
            exc.code,
            "the backend is busy; retry shortly",
            headers={"Retry-After": "1"},
        )
    logger.error("pipeline error on %s: %s", request.url.path, exc.message)
    return problem_response(request, 500, exc.code, "internal error")


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem_response(request, 500, "internal_error", "internal error")


def _problem_json_only(app: FastAPI) -> None:
    """FastAPI lists a response `model` under application/json too; errors are only ever
    application/problem+json, so the schema says exactly that (clients and schemathesis
    check the media type)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    for response in operation.get("responses", {}).values():
                        content = response.get("content", {})
                        if PROBLEM_JSON in content:
                            content.pop("application/json", None)
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override hook


def install(app: FastAPI) -> None:
    _problem_json_only(app)
    app.add_exception_handler(ApiProblem, _on_api_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(PipelineError, _on_pipeline_error)
    app.add_exception_handler(Exception, _on_unexpected)
