"""``IAPAuthMetadataPlugin`` for grpcio: ``grpc.metadata_call_credentials(IAPAuthMetadataPlugin(...))``
adds ``proxy-authorization: Bearer <ID token>`` to every call (IAP reads it; the ``authorization``
metadata stays the application's)."""

from __future__ import annotations

from typing import Any

import grpc

from ._token import get_token


class IAPAuthMetadataPlugin(grpc.AuthMetadataPlugin):
    """Takes ``get_token()``'s keywords, plus ``header=`` (default ``proxy-authorization``)."""

    def __init__(self, *, header: str = "proxy-authorization", **options: Any) -> None:
        self._header = header.lower()
        self._options = options

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            token = get_token(**self._options)
        except Exception as error:  # grpc turns it into UNAUTHENTICATED with this message
            callback((), error)
            return
        callback(((self._header, token.header_value),), None)


def call_credentials(**options: Any) -> grpc.CallCredentials:
    """``grpc.metadata_call_credentials`` of an ``IAPAuthMetadataPlugin`` with these keywords."""
    return grpc.metadata_call_credentials(IAPAuthMetadataPlugin(**options), name="iap-token")
