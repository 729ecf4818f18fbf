"""get_token() and the binary's contract: each exit code as a value or an exception, the in-process
cache, keyword -> flag mapping, secrets kept off argv, and the import that loads nothing third-party."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

import iap_token
from conftest import (
    AUDIENCE,
    DESKTOP_CLIENT,
    DESKTOP_SECRET,
    KEY_FILE,
    RECORDER,
    REAL_BINARY,
    SA_EMAIL,
    Spawns,
    claims,
    key_options,
)


def test_import_loads_no_third_party_module() -> None:
    code = (
        "import json, sys; before = set(sys.modules); import iap_token; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    outside = [m for m in loaded if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "iap_token"]
    assert outside == []
    assert "iap_token" in loaded


def test_find_binary_is_the_installed_native_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IAP_TOKEN_BINARY", raising=False)
    found = iap_token.find_binary()
    assert os.path.samefile(found, REAL_BINARY)
    assert Path(found).read_bytes()[:4] == b"\x7fELF"
    monkeypatch.setenv("IAP_TOKEN_BINARY", "/opt/elsewhere/iap-token")
    assert iap_token.find_binary() == "/opt/elsewhere/iap-token"


def test_python_m_iap_token_runs_the_binary() -> None:
    done = subprocess.run([sys.executable, "-m", "iap_token", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.startswith("iap-token ")
    usage = subprocess.run([sys.executable, "-m", "iap_token"], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage: iap-token" in usage.stderr


def test_get_token_with_a_service_account_key() -> None:
    token = iap_token.get_token(**key_options())
    assert token.audience == AUDIENCE
    assert token.principal == SA_EMAIL
    assert token.source == "service-account-key"
    assert token.token_type == "id-token"
    assert token.expires_at.tzinfo is not None and token.expires_at.utcoffset() == timedelta(0)
    assert datetime.now(timezone.utc) < token.expires_at < datetime.now(timezone.utc) + timedelta(hours=1)
    assert claims(token.token)["aud"] == AUDIENCE and claims(token.token)["email"] == SA_EMAIL
    assert token.token not in repr(token), "repr never shows the token"


def test_a_signed_jwt_for_a_url() -> None:
    token = iap_token.get_token(
        url="https://flyte.example.com/", token_type="signed-jwt", service_account_key=KEY_FILE
    )
    assert token.token_type == "signed-jwt"
    assert token.audience == "https://flyte.example.com/*"
    assert token.principal == SA_EMAIL
    signed = claims(token.token)
    assert signed["aud"] == "https://flyte.example.com/*"
    assert signed["iss"] == signed["sub"] == SA_EMAIL
    assert signed["exp"] - signed["iat"] == 3600


def test_the_in_process_cache_serves_without_a_subprocess(spawns: Spawns) -> None:
    first = iap_token.get_token(**key_options())
    assert len(spawns) == 1
    assert iap_token.get_token(**key_options()) is first
    assert len(spawns) == 1, "the second call started no process"
    refreshed = iap_token.get_token(force_refresh=True, **key_options())
    assert spawns.with_flag("--force-refresh") == 1 and len(spawns) == 2
    assert iap_token.get_token(**key_options()) is refreshed, "force_refresh replaced the kept token"
    # An entry past its expires_at is not served.
    key = next(iter(iap_token._token._cache))
    iap_token._token._cache[key] = (time.time() - 1, refreshed)
    iap_token.get_token(**key_options())
    assert len(spawns) == 3


def test_exit_1_is_iap_token_error_with_the_tools_line() -> None:
    with pytest.raises(iap_token.IAPTokenError) as raised:
        iap_token.get_token(audience=AUDIENCE, service_account_key="/nonexistent/key.json")
    assert raised.value.exit_code == 1
    assert type(raised.value) is iap_token.IAPTokenError
    message = str(raised.value)
    assert message.startswith("iap-token: error: could not read the credential file /nonexistent/key.json")
    assert "\n" not in message


def test_exit_2_usage_is_iap_token_error() -> None:
    with pytest.raises(iap_token.IAPTokenError) as raised:
        iap_token.get_token(service_account_key=KEY_FILE)
    assert raised.value.exit_code == 2
    assert "--audience is required" in str(raised.value)


def test_exit_3_is_sign_in_required_with_the_command() -> None:
    with pytest.raises(iap_token.SignInRequired) as raised:
        iap_token.get_token(
            audience=AUDIENCE, client_id=DESKTOP_CLIENT, client_secret=DESKTOP_SECRET, non_interactive=True
        )
    error = raised.value
    assert isinstance(error, iap_token.IAPTokenError) and error.exit_code == 3
    assert isinstance(error.command, str) and error.command.startswith("iap-token login")
    assert f"--client-id {DESKTOP_CLIENT}" in error.command
    assert DESKTOP_SECRET not in str(error) and DESKTOP_SECRET not in error.command


def test_other_exit_codes_signals_and_a_missing_binary(fake_binary: Callable[[str], Path]) -> None:
    fake_binary("echo 'iap-token: error: something odd; try again' >&2\nexit 7\n")
    with pytest.raises(iap_token.IAPTokenError) as raised:
        iap_token.get_token(audience="x")
    assert (raised.value.exit_code, str(raised.value)) == (7, "iap-token: error: something odd; try again")

    fake_binary("kill -9 $$\n")
    with pytest.raises(iap_token.IAPTokenError) as raised:
        iap_token.get_token(audience="x")
    assert raised.value.exit_code is None and "signal 9" in str(raised.value)

    fake_binary("echo 'not json but maybe a secret'\n")
    with pytest.raises(iap_token.IAPTokenError) as raised:
        iap_token.get_token(audience="x")
    assert "not its JSON token" in str(raised.value) and "secret" not in str(raised.value)

    os.environ["IAP_TOKEN_BINARY"] = "/nonexistent/iap-token"
    with pytest.raises(iap_token.IAPTokenError, match="could not run /nonexistent/iap-token"):
        iap_token.get_token(audience="x")


def test_keywords_become_long_flags_and_secrets_stay_off_argv(fake_binary: Callable[[str], Path]) -> None:
    seen = fake_binary(RECORDER)
    token = iap_token.get_token(
        url="https://app.example.com/",
        profile="prod",
        min_ttl=600,
        client_id="desk",
        client_secret="very-s3cret",
        non_interactive=True,
        no_browser=False,
        verify="/etc/ssl/private-ca.pem",
    )
    assert token.token == "a.b.c" and token.principal is None
    *argv, secret_line = seen.read_text().splitlines()
    assert argv[:3] == ["token", "--format", "json"]
    joined = " ".join(argv)
    for expected in ["--url https://app.example.com/", "--profile prod", "--min-ttl 600", "--client-id desk",
                     "--non-interactive", "--ca-file /etc/ssl/private-ca.pem"]:
        assert expected in joined
    assert "--no-browser" not in argv and "--force-refresh" not in argv
    assert not any("very-s3cret" in arg for arg in argv), "the secret is never on the command line"
    assert secret_line == "secret-in-env=very-s3cret"


def test_verify_false_is_refused() -> None:
    with pytest.raises(ValueError, match="verify=False is refused"):
        iap_token.get_token(verify=False, **key_options())
    with pytest.raises(ValueError, match="verify=False is refused"):
        iap_token.GCPIdentityAwareProxyAuthenticator(AUDIENCE, DESKTOP_CLIENT, DESKTOP_SECRET, verify=False)


def test_async_get_token_does_not_block_the_event_loop(
    fake_binary: Callable[[str], Path], spawns: Spawns
) -> None:
    fake_binary(f'sleep 0.5\nexec {REAL_BINARY} "$@"\n')

    async def main() -> tuple[iap_token.Token, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        token = await iap_token.async_get_token(**key_options())
        done.set()
        await task
        return token, ticks

    started = time.monotonic()
    token, ticks = asyncio.run(main())
    assert time.monotonic() - started >= 0.5
    assert ticks >= 20, f"the loop ran only {ticks} times while the binary ran"
    assert token.principal == SA_EMAIL
    assert iap_token.get_token(**key_options()) is token, "sync and async share the in-process cache"
    assert len(spawns) == 1


def test_async_get_token_uses_a_thread_where_the_loop_has_no_subprocesses(
    fake_binary: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_binary(f'sleep 0.3\nexec {REAL_BINARY} "$@"\n')

    async def unsupported(*args: object, **kwargs: object) -> None:
        raise NotImplementedError

    monkeypatch.setattr(asyncio, "create_subprocess_exec", unsupported)

    async def main() -> tuple[iap_token.Token, int]:
        ticks = 0
        fetch = asyncio.ensure_future(iap_token.async_get_token(**key_options()))
        while not fetch.done():
            ticks += 1
            await asyncio.sleep(0.01)
        return fetch.result(), ticks

    token, ticks = asyncio.run(main())
    assert token.principal == SA_EMAIL
    assert ticks >= 10, f"the loop ran only {ticks} times"


def test_get_service_account_id_token_uses_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", KEY_FILE)
    jwt = iap_token.get_service_account_id_token(AUDIENCE, SA_EMAIL)
    assert claims(jwt)["aud"] == AUDIENCE and claims(jwt)["email"] == SA_EMAIL


def test_get_gcp_secret_manager_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", KEY_FILE)
    assert iap_token.get_gcp_secret_manager_secret("test-project", "py-secret") == "py-s3cret"
    assert iap_token.get_gcp_secret_manager_secret("test-project", "py-secret", "2") == "second"
    with pytest.raises(iap_token.IAPTokenError, match="not found or has no versions"):
        iap_token.get_gcp_secret_manager_secret("test-project", "missing")


def test_webapp_client_id_help_is_text() -> None:
    assert isinstance(iap_token.WEBAPP_CLIENT_ID_HELP, str) and "apps.googleusercontent.com" in iap_token.WEBAPP_CLIENT_ID_HELP
