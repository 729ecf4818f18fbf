"""``IAPAuth`` for requests: ``requests.get(url, auth=IAPAuth(audience=...))`` sends
``Authorization: Bearer <ID token>`` (or ``header="Proxy-Authorization"``) to the one origin it was given."""

from __future__ import annotations

from typing import Any, Optional

import requests

from ._origin import OriginPin
from ._token import get_token


class IAPAuth(requests.auth.AuthBase):
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

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if request.url and self._pin.allows(request.url):
            request.headers[self._header] = get_token(**self._options).header_value
        return request
