"""The one rule the HTTP adapters share: the token goes only to the origin they were given (``origin=``,
else the origin of ``url=``, else the origin of the first request they see)."""

from __future__ import annotations

from typing import Optional, Tuple
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> Tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


class OriginPin:
    """Decides, per request URL, whether the credential may be attached."""

    def __init__(self, origin: Optional[str], url: Optional[str]) -> None:
        given = origin or url
        self._origin = origin_of(given) if given else None

    def allows(self, url: str) -> bool:
        target = origin_of(url)
        if self._origin is None:
            self._origin = target
        return target == self._origin

