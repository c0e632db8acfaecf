"""What a call to the gateway raises, by what the caller can do about it.

- `RecsysConnectionError`: no answer at all (refused, DNS, timeout): the gateway is away.
- `RetryableError`: 429 or 503, the gateway says "later" (`retry_after` when it says how long).
- `ClientError` (`NotFoundError`, `AuthError`, `InvalidRequestError`): the request was wrong;
  sending it again will not help. `detail` is the gateway's JSON `detail` as it came.
- `ServerError`: another 5xx; `UnexpectedResponseError`: a success whose body is not what the
  OpenAPI schema says (a gateway of another version, a proxy's HTML page).

All derive from `RecsysError`; every HTTP answer that is not usable derives from `ApiError`.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

# The gateway's `detail`: a sentence, or FastAPI's list of validation errors.
Detail = str | list[Any] | dict[str, Any] | None


class RecsysError(Exception):
    """Anything the client raises."""


class RecsysConnectionError(RecsysError):
    """The gateway could not be reached: connection refused, DNS failure, or a timeout."""

    def __init__(self, base_url: str, cause: str) -> None:
        super().__init__(f"gateway at {base_url} is not reachable: {cause}")
        self.base_url = base_url
        self.cause = cause


class ApiError(RecsysError):
    """The gateway answered, but not with what was asked for."""

    def __init__(self, status_code: int, detail: Detail, method: str, url: str) -> None:
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.url = url
        super().__init__(f"HTTP {status_code}: {self.message}")

    @property
    def message(self) -> str:
        """`detail` as one readable line (validation errors: their messages, joined)."""
        detail = self.detail
        if isinstance(detail, list):
            parts = [str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in detail]
            return "; ".join(parts)
        return "" if detail is None else str(detail)


class ClientError(ApiError):
    """4xx (but 429): the request itself is wrong; sending it again will not help."""


class NotFoundError(ClientError):
    """404: no such product, job or model version."""


class AuthError(ClientError):
    """401/403: an admin route without the right `X-API-Key`."""


class InvalidRequestError(ClientError):
    """422: a parameter or body field the gateway refuses; `detail` says which and why."""


class RetryableError(ApiError):
    """429 or 503: overloaded, a backing service down, or no model yet; try again later."""

    def __init__(
        self, status_code: int, detail: Detail, method: str, url: str, retry_after: float | None
    ) -> None:
        super().__init__(status_code, detail, method, url)
        self.retry_after = retry_after  # seconds, when the gateway said (Retry-After)


class ServerError(ApiError):
    """A 5xx other than 503: a bug or a proxy in between; not known to pass by waiting."""


class UnexpectedResponseError(ApiError):
    """A success status whose body does not match the schema (another version, a proxy)."""


_CLIENT_ERRORS: dict[int, type[ClientError]] = {
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    422: InvalidRequestError,
}


def error_for(response: httpx.Response) -> ApiError:
    """The exception that says why `response` (not a success) is no answer."""
    status, detail = response.status_code, _detail(response)
    method, url = response.request.method, str(response.request.url)
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RetryableError(status, detail, method, url, retry_after)
    if 400 <= status < 500:
        return _CLIENT_ERRORS.get(status, ClientError)(status, detail, method, url)
    if status >= 500:
        return ServerError(status, detail, method, url)
    return ApiError(status, detail, method, url)  # a 1xx/3xx the client did not ask for


def parse_retry_after(raw: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date; None if absent
    or unreadable (a wrong header must not hide the error it came with)."""
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT; a date without a zone is not one, but close
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _detail(response: httpx.Response) -> Detail:
    """The JSON body's `detail`; else the start of the body as text (a proxy's page)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail: Detail = body["detail"]
        return detail
    return response.text.strip()[:500] or response.reason_phrase
