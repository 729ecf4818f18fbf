"""``IAPAuth`` for httpx, sync and async: ``httpx.Client(auth=IAPAuth(audience=...))``. The async flow
runs the binary as an asyncio subprocess, so the event loop is never blocked. When IAP itself rejects
the token (401 with ``X-Goog-IAP-Generated-Response: true``) and the request body can be sent again, it
refreshes once and retries once; the application's own 401s pass through untouched."""

from __future__ import annotations

from typing import Any, AsyncGenerator, Generator, Optional

import httpx

from ._origin import OriginPin
from ._token import async_get_token, get_token


def _iap_rejected(response: httpx.Response) -> bool:
    generated = response.headers.get("x-goog-iap-generated-response", "")
    return response.status_code == 401 and generated.lower() == "true"


def _replayable(request: httpx.Request) -> bool:
    # Bytes, text, JSON and form bodies are held in memory; streams and iterators are read once.
    return isinstance(request.stream, httpx.ByteStream)


class IAPAuth(httpx.Auth):
    """Takes ``get_token()``'s keywords, plus ``origin=`` (default: the origin of ``url=``, else of the
    first request) and ``header=`` (default ``Authorization``)."""

    def __init__(
        self,
        *,
        origin: Optional[str] = None,
        header: str = "Authorization",
        url: Optional[str] = None,
        **options: Any,
    ) -> None:
        self._pin = OriginPin(origin, url)
        self._header = header
        self._options = {**options, "url": url}

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._pin.allows(str(request.url)):
            yield request
            return
        request.headers[self._header] = get_token(**self._options).header_value
        response = yield request
        if _iap_rejected(response) and _replayable(request):
            fresh = {**self._options, "force_refresh": True}
            request.headers[self._header] = get_token(**fresh).header_value
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._pin.allows(str(request.url)):
            yield request
            return
        request.headers[self._header] = (await async_get_token(**self._options)).header_value
        response = yield request
        if _iap_rejected(response) and _replayable(request):
            fresh = {**self._options, "force_refresh": True}
            request.headers[self._header] = (await async_get_token(**fresh)).header_value
            yield request
