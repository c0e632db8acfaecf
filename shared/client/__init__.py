"""A typed client of the gateway's public HTTP API, blocking (`RecsysClient`) and asyncio
(`AsyncRecsysClient`), on httpx; payloads are the schema models of shared/. Every public route
has a method (`endpoints.ENDPOINTS`, checked against the gateway's OpenAPI schema)."""

from shared.client.aio import AsyncRecsysClient
from shared.client.errors import (
    ApiError,
    AuthError,
    ClientError,
    InvalidRequestError,
    NotFoundError,
    RecsysConnectionError,
    RecsysError,
    RetryableError,
    ServerError,
    UnexpectedResponseError,
)
from shared.client.results import Readiness, Recommendations
from shared.client.sync import RecsysClient

__all__ = [
    "ApiError",
    "AsyncRecsysClient",
    "AuthError",
    "ClientError",
    "InvalidRequestError",
    "NotFoundError",
    "Readiness",
    "Recommendations",
    "RecsysClient",
    "RecsysConnectionError",
    "RecsysError",
    "RetryableError",
    "ServerError",
    "UnexpectedResponseError",
]
