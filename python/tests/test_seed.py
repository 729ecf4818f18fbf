"""The names of flytekitplugins-identity-aware-proxy with real flytekit: the authenticator class is a
flytekit Authenticator with the seed's signature, gives flytekit Credentials, signs in only when asked
to refresh; and flytekit's own proxy command runs the installed `iap-token`."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
from flytekit.clients.auth.authenticator import Authenticator, CommandAuthenticator
from flytekit.clients.auth.keyring import Credentials
from flytekit.clients.auth_helper import get_proxy_authenticator
from flytekit.configuration import PlatformConfig

import iap_token
from conftest import AUDIENCE, BROWSER, DESKTOP_CLIENT, DESKTOP_SECRET, KEY_FILE, TOKEN_URI, claims


def test_the_seed_signature_and_base_class() -> None:
    cls = iap_token.GCPIdentityAwareProxyAuthenticator
    assert issubclass(cls, Authenticator)
    parameters = inspect.signature(cls).parameters
    assert list(parameters) == ["audience", "client_id", "client_secret", "verify"]
    assert parameters["verify"].default is None
    for method in ("get_credentials", "refresh_credentials", "fetch_grpc_call_auth_metadata"):
        assert callable(getattr(cls, method))


def test_sign_in_on_refresh_only_then_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = tmp_path / "browser-opened"
    monkeypatch.setenv("IAP_TOKEN_TOKEN_URI", TOKEN_URI)
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\ntouch {opened}\nexec {BROWSER} "$1"\n')
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(browser))

    auth = iap_token.GCPIdentityAwareProxyAuthenticator(AUDIENCE, DESKTOP_CLIENT, DESKTOP_SECRET)
    assert auth.fetch_grpc_call_auth_metadata() is None
    assert auth.get_credentials() is None
    assert not opened.exists(), "get_credentials never signs in"

    auth.refresh_credentials()
    assert opened.exists(), "refresh_credentials signed in"
    key, value = auth.fetch_grpc_call_auth_metadata()
    assert key == "proxy-authorization" and value.startswith("Bearer ")
    jwt = value[len("Bearer "):]
    assert claims(jwt)["aud"] == AUDIENCE
    creds = auth.get_credentials()
    assert isinstance(creds, Credentials)
    assert creds.id_token == jwt and creds.access_token == jwt and creds.for_endpoint == AUDIENCE
    assert creds.expires_in is not None and creds.expires_in > 0

    opened.unlink()
    iap_token.clear_cache()
    again = iap_token.GCPIdentityAwareProxyAuthenticator(AUDIENCE, DESKTOP_CLIENT, DESKTOP_SECRET)
    assert again.get_credentials() is not None, "a new instance finds the stored sign-in"
    assert not opened.exists()


def test_flytekit_proxy_command_runs_the_installed_binary() -> None:
    command = ["iap-token", "token", "--audience", AUDIENCE, "--service-account-key", KEY_FILE]
    config = PlatformConfig(endpoint="dns:///flyte.example.com", proxy_command=command)
    auth = get_proxy_authenticator(config)
    assert isinstance(auth, CommandAuthenticator)
    auth.refresh_credentials()
    key, value = auth.fetch_grpc_call_auth_metadata()
    assert key == "proxy-authorization" and claims(value[len("Bearer "):])["aud"] == AUDIENCE
    assert os.path.basename(iap_token.find_binary()) == "iap-token"
