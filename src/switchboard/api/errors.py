"""API errors (API §1): every failure is ``{"result_code": 500, "error": {"id", "description"}}``,
rendered in one place. HTTP status is 200 (Basix clients read ``result_code``), except a
body that is not JSON at all (400), a wrong method (405), a source refused for
too many failed authentications (429, with ``Retry-After``) and a call refused while the
server is overloaded (503, with ``Retry-After``)."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(
        self,
        error_id: str,
        description: str,
        http_status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.headers = headers
        self.error_id = error_id
        self.description = description
        self.http_status = http_status


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        {"result_code": 500, "error": {"id": error.error_id, "description": error.description}},
        status_code=error.http_status,
        headers=error.headers,
    )
