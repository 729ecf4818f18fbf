"""Fixtures for the package's tests. tests/it/python.rs runs them in a fresh venv holding the built wheel,
with a fake Google and a fake IAP on 127.0.0.1 whose addresses arrive in IAP_TEST_* variables."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

import iap_token

IAP_URL = os.environ["IAP_TEST_IAP_URL"]
AUDIENCE = os.environ["IAP_TEST_AUDIENCE"]
KEY_FILE = os.environ["IAP_TEST_KEY_FILE"]
SA_EMAIL = os.environ["IAP_TEST_SA_EMAIL"]
TOKEN_URI = os.environ["IAP_TEST_TOKEN_URI"]
DESKTOP_CLIENT = os.environ["IAP_TEST_DESKTOP_CLIENT"]
DESKTOP_SECRET = os.environ["IAP_TEST_DESKTOP_SECRET"]
BROWSER = os.environ["IAP_TEST_BROWSER"]
REAL_BINARY = os.environ["IAP_TEST_REAL_BINARY"]


def claims(jwt: str) -> Dict[str, Any]:
    """The claims of a JWT, not verified (the fake IAP verifies)."""
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def key_options() -> Dict[str, Any]:
    return {"audience": AUDIENCE, "service_account_key": KEY_FILE}


@pytest.fixture(autouse=True)
def fresh_process_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with an empty in-process cache and its own binary cache and state dirs."""
    iap_token.clear_cache()
    monkeypatch.setenv("IAP_TOKEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("IAP_TOKEN_STATE_DIR", str(tmp_path / "state"))
    yield
    iap_token.clear_cache()


class Spawns:
    """The argv of every iap-token process the package started during a test."""

    def __init__(self) -> None:
        self.calls: List[List[str]] = []

    def __len__(self) -> int:
        return len(self.calls)

    def with_flag(self, flag: str) -> int:
        return sum(1 for argv in self.calls if flag in argv)


@pytest.fixture
def spawns(monkeypatch: pytest.MonkeyPatch) -> Spawns:
    import asyncio

    record = Spawns()
    real_run = subprocess.run
    real_exec = asyncio.create_subprocess_exec

    def run(argv: List[str], *args: Any, **kwargs: Any) -> Any:
        record.calls.append(list(argv))
        return real_run(argv, *args, **kwargs)

    async def create_subprocess_exec(*argv: str, **kwargs: Any) -> Any:
        record.calls.append(list(argv))
        return await real_exec(*argv, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", create_subprocess_exec)
    return record


@pytest.fixture
def fake_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Installs a shell script as IAP_TOKEN_BINARY; returns where the script may write what it saw."""

    def install(body: str) -> Path:
        script = tmp_path / "fake-iap-token"
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("IAP_TOKEN_BINARY", str(script))
        return tmp_path / "seen"

    return install


# A fake binary's valid answer, and one that records its argv and whether the secret came by env.
JSON_ANSWER = (
    'printf \'%s\\n\' \'{"token":"a.b.c","expires_at":"2099-01-01T00:00:00Z","audience":"aud",'
    '"principal":null,"source":"user"}\'\n'
)
RECORDER = (
    'for arg in "$@"; do printf \'%s\\n\' "$arg"; done > "$(dirname "$0")/seen"\n'
    'printf \'%s\\n\' "secret-in-env=${IAP_TOKEN_CLIENT_SECRET:-no}" >> "$(dirname "$0")/seen"\n' + JSON_ANSWER
)
