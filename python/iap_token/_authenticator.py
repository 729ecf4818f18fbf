"""``GCPIdentityAwareProxyAuthenticator``, the class of flytekitplugins-identity-aware-proxy with the same
signature and methods, backed by the binary (whose refresh token in the OS keyring replaces the seed's
keyring entries). When flytekit is installed it is a flytekit ``Authenticator`` and its credentials are
flytekit ``Credentials``; this module is the only one of the package that imports flytekit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional, Tuple, Union

from ._token import INSECURE_REFUSED, SignInRequired, Token, get_token

try:
    from flytekit.clients.auth.authenticator import Authenticator as _Base
    from flytekit.clients.auth.keyring import Credentials
except ImportError:  # flytekit is optional: the same fields without it
    _Base = object

    @dataclass
    class Credentials:  # type: ignore[no-redef]
        """The fields of flytekit's Credentials."""

        access_token: str
        refresh_token: Optional[str] = None
        for_endpoint: str = "flyte-default"
        expires_in: Optional[int] = None
        id_token: Optional[str] = None


HEADER_KEY = "proxy-authorization"


class GCPIdentityAwareProxyAuthenticator(_Base):
    """Sign in to IAP with a desktop OAuth client once (the browser opens when needed), then refresh.

    ``audience`` is IAP's web client id, ``client_id`` / ``client_secret`` the desktop client's;
    ``verify`` may be a CA bundle path. ``verify=False`` is refused: TLS checks are never switched off.
    """

    def __init__(
        self,
        audience: str,
        client_id: str,
        client_secret: str,
        verify: Union[bool, str, None] = None,
    ) -> None:
        if verify is False:
            raise ValueError(INSECURE_REFUSED)
        if _Base is not object:
            super().__init__(endpoint=audience, header_key=HEADER_KEY, credentials=None, verify=verify)
        else:
            self._creds: Optional[Credentials] = None
            self._header_key = HEADER_KEY
        self._audience = audience
        self._options: dict[str, Any] = {"audience": audience, "client_id": client_id, "client_secret": client_secret}
        if verify is not None and verify is not True:
            self._options["ca_file"] = verify

    def get_credentials(self) -> Optional[Credentials]:
        """The credential at hand (from this object, the process or the binary's cache, refreshed with the
        stored refresh token if need be), or None when only a sign-in would give one: never a sign-in."""
        if self._creds is not None and not self._expired():
            return self._creds
        try:
            self._keep(get_token(non_interactive=True, **self._options))
        except SignInRequired:
            return None
        return self._creds

    def refresh_credentials(self) -> None:
        """A new ID token: refreshed with the stored refresh token, or after a browser sign-in."""
        self._keep(get_token(force_refresh=True, **self._options))

    def fetch_grpc_call_auth_metadata(self) -> Optional[Tuple[str, str]]:
        """``("proxy-authorization", "Bearer <ID token>")``, or None before any credential."""
        if self._creds is None:
            return None
        return self._header_key, f"Bearer {self._creds.id_token}"

    def _keep(self, token: Token) -> None:
        self._expires_at = token.expires_at
        expires_in = max(0, int(token.expires_at.timestamp() - time.time()))
        self._creds = Credentials(
            access_token=token.token,  # IAP wants the ID token, wherever flytekit puts it
            id_token=token.token,
            for_endpoint=self._audience,
            expires_in=expires_in,
        )

    def _expired(self) -> bool:
        return datetime.now(timezone.utc) >= self._expires_at
