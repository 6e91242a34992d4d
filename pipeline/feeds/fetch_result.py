"""The pieces every kind of fetch shares: the internal error and filling in a FetchResult.

Both the HTTP fetch (pipeline.feeds.fetch) and local-file sources
(pipeline.feeds.local_files) build their results here, so neither imports the other.
"""

from __future__ import annotations

import hashlib

import httpx

from pipeline.records import FetchResult, FetchState

# Response headers the scheduler reads (pipeline.schedule).
SCHEDULING_HEADERS = ("cache-control", "expires", "age", "retry-after", "date")


class FetchError(Exception):
    """Internal: carries an error class to the single place that builds the result."""

    def __init__(self, error_class: str, message: str, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.response = response


def fail(result: FetchResult, error_class: str, message: str, response: httpx.Response | None = None) -> None:
    result.status = "error"
    result.error_class = error_class
    result.error = message
    result.body = None
    if response is not None:
        result.http_status = response.status_code
        result.headers = scheduling_headers(response)


def scheduling_headers(response: httpx.Response) -> dict[str, str]:
    return {k: response.headers[k] for k in SCHEDULING_HEADERS if k in response.headers}


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def set_body(result: FetchResult, body: bytes, state: FetchState) -> None:
    result.body_hash = body_hash(body)
    result.bytes_read = len(body)
    if state.body_hash and result.body_hash == state.body_hash:
        result.status = "unchanged"
        result.body = None
    else:
        result.status = "ok"
        result.body = body
