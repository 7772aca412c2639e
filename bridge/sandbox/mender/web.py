"""HTTP conventions shared by the stand-in's services: error bodies, request ids, request-size
and Content-Type checks, paging parameters and `Link` headers (Mender's PKG/ middlewares).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from bridge.sandbox.mender import canonical

REQUEST_SIZE_LIMIT = 1024 * 1024  # request_size_limit default of deviceauth and useradm
PER_PAGE_DEFAULT, PER_PAGE_MAX = 20, 500
_INT64_MAX = 2**63 - 1


class ApiError(Exception):
    """An answer other than success: status, message, and whether the body is empty."""

    def __init__(self, status: int, message: str, *, empty: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.empty = status, message, empty
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error=message, request_id=getattr(g, "request_id", ""))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def empty_response(status: int) -> Response:
    """An answer without a body, and so without a Content-Type (werkzeug adds text/html)."""
    response = Response(status=status)
    del response.headers["Content-Type"]
    return response


def install_conventions(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = REQUEST_SIZE_LIMIT

    @app.before_request
    def _request_id() -> Response | None:
        g.request_id = request.headers.get("X-MEN-RequestID") or str(uuid.uuid4())
        if (request.content_length or 0) > REQUEST_SIZE_LIMIT:
            return error_response(413, "request body too large")
        return None

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers["X-MEN-RequestID"] = getattr(g, "request_id", "")
        return response

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        if exc.empty:
            response = empty_response(exc.status)
            response.headers.update(exc.headers)
            return response
        return error_response(exc.status, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 413:
            return error_response(413, "request body too large")
        return error_response(status, (exc.description or exc.name).strip().rstrip("."))

    @app.errorhandler(Exception)
    def _internal(exc: Exception) -> Response:
        app.logger.exception("sandbox internal error")
        return error_response(500, "internal error")


def raw_body() -> bytes:
    return request.get_data(cache=True)


def json_body(prefix: str, default: Any = None) -> Any:
    """The request body decoded as Go would (`default` if empty and given), else 400."""
    body = raw_body()
    if default is not None and not body.strip():
        return default
    try:
        return canonical.loads(body)
    except canonical.JsonError as exc:
        raise ApiError(400, f"{prefix}: {exc}") from None


def json_object(prefix: str) -> dict[str, Any]:
    """A JSON object body ({} if empty), else 400 with `prefix`."""
    data = json_body(prefix, default={})
    if not isinstance(data, dict):
        raise ApiError(400, f"{prefix}: expected a JSON object")
    return data


def require_json(allow_form: bool = False) -> None:
    """contenttype.CheckJSON: a non-empty body must be application/json → else 415."""
    if not raw_body():
        return
    mimetype = request.mimetype
    if mimetype == "application/json":
        return
    if allow_form and mimetype == "application/x-www-form-urlencoded":
        return
    raise ApiError(415, "Bad Content-Type, expected 'application/json'")


def paging(args: Any = None) -> tuple[int, int]:
    """`page` (≥1, default 1) and `per_page` (1..500, default 20) as PKG/rest.utils parses."""
    args = request.args if args is None else args
    page_text, per_page_text = args.get("page"), args.get("per_page")
    page, per_page = 1, PER_PAGE_DEFAULT
    if page_text is not None:
        try:
            page = int(page_text)
        except ValueError:
            raise ApiError(400, f'invalid page query: "{page_text}"') from None
        if page > _INT64_MAX:  # strconv.ParseInt range error
            raise ApiError(400, f'invalid page query: "{page_text}"')
        if page < 1:
            raise ApiError(400, "invalid page query: value must be a non-zero positive integer")
    if per_page_text is not None:
        try:
            per_page = int(per_page_text)
        except ValueError:
            raise ApiError(400, f'invalid per_page query: "{per_page_text}"') from None
        if per_page < 1:
            raise ApiError(400,
                           "invalid per_page query: value must be a non-zero positive integer")
        if per_page > PER_PAGE_MAX:
            raise ApiError(400, f'parameter "per_page" above limit (max: {PER_PAGE_MAX})')
    return page, per_page


def offset(page: int, per_page: int) -> int:
    """Rows to skip, kept within SQLite's 64-bit integers (past the end anyway)."""
    return min((page - 1) * per_page, _INT64_MAX)


def link_header(page: int, per_page: int, has_next: bool) -> str:
    """`Link` with first, prev (page > 1) and next (another page exists), keeping the query."""
    base = [(k, v) for k, v in request.args.items(multi=True) if k not in ("page", "per_page")]

    def link(target: int, rel: str) -> str:
        query = urlencode([*base, ("page", str(target)), ("per_page", str(per_page))])
        return f'<{request.path}?{query}>; rel="{rel}"'

    links = [link(1, "first")]
    if page > 1:
        links.append(link(page - 1, "prev"))
    if has_next:
        links.append(link(page + 1, "next"))
    return ", ".join(links)
