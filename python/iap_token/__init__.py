"""Google OIDC ID tokens for services behind Identity-Aware Proxy, from the ``iap-token`` binary.

``get_token()`` runs ``iap-token token --format json`` (the binary keeps its own cache, so a warm call
costs one small file read) and keeps the result in this process until it expires. The adapters for
requests, httpx and grpc live in ``iap_token.requests``, ``iap_token.httpx`` and ``iap_token.grpc`` and load
those libraries only when imported. The names of flytekitplugins-identity-aware-proxy are here too:
``GCPIdentityAwareProxyAuthenticator`` (loaded on first use, a flytekit ``Authenticator`` when flytekit is
installed), ``get_service_account_id_token``, ``get_gcp_secret_manager_secret`` and
``WEBAPP_CLIENT_ID_HELP``.

Importing this package imports nothing outside the standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._binary import find_binary
from ._compat import WEBAPP_CLIENT_ID_HELP, get_gcp_secret_manager_secret, get_service_account_id_token
from ._token import IAPTokenError, SignInRequired, Token, async_get_token, clear_cache, get_token

if TYPE_CHECKING:
    from ._authenticator import GCPIdentityAwareProxyAuthenticator

__all__ = [
    "WEBAPP_CLIENT_ID_HELP",
    "GCPIdentityAwareProxyAuthenticator",
    "IAPTokenError",
    "SignInRequired",
    "Token",
    "async_get_token",
    "clear_cache",
    "find_binary",
    "get_gcp_secret_manager_secret",
    "get_service_account_id_token",
    "get_token",
]


def __getattr__(name: str) -> Any:
    # The authenticator subclasses flytekit's Authenticator when flytekit is installed: load it (and
    # flytekit) only when someone asks for it.
    if name == "GCPIdentityAwareProxyAuthenticator":
        from ._authenticator import GCPIdentityAwareProxyAuthenticator

        return GCPIdentityAwareProxyAuthenticator
    raise AttributeError(f"module 'iap_token' has no attribute {name!r}")
