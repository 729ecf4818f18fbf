"""``get_token()``: runs ``iap-token token --format json`` and turns its answer into a ``Token``, its
exit code into an exception. Keyword options become long flags (``client_id=`` -> ``--client-id``);
secrets travel in the child's environment, never on its command line; a token is kept in this process
until its ``expires_at`` (which already includes the binary's refresh margin)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ._binary import find_binary

EXIT_SIGN_IN_REQUIRED = 3

# Options that are secrets: the variable the binary reads each one from.
_SECRET_ENV = {"client_secret": "IAP_TOKEN_CLIENT_SECRET"}
# The variables that decide which binary runs and whose token it gives: part of the in-process cache key
# (looked up one by one: scanning os.environ would cost more than the rest of a warm call).
_KEY_ENV = (
    "IAP_TOKEN_BINARY",
    "IAP_TOKEN_CACHE_DIR",
    "IAP_TOKEN_AUDIENCE",
    "IAP_TOKEN_SOURCE",
    "IAP_TOKEN_CLIENT_ID",
    "IAP_TOKEN_ACCOUNT",
    "IAP_TOKEN_SERVICE_ACCOUNT_KEY",
    "IAP_TOKEN_IMPERSONATE_SERVICE_ACCOUNT",
    "IAP_TOKEN_PROFILE",
    "IAP_TOKEN_URL",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "KUBERNETES_EXEC_INFO",
)


class IAPTokenError(Exception):
    """iap-token failed; the message is the tool's one error line. ``exit_code`` is its exit code (2: a
    usage error), or None when it did not run or did not exit normally."""

    def __init__(self, message: str, exit_code: Optional[int] = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SignInRequired(IAPTokenError):
    """A browser sign-in is needed but may not run here (exit 3). ``command`` is what to run, a str."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message, EXIT_SIGN_IN_REQUIRED)
        self.command = command


@dataclass(frozen=True)
class Token:
    """An ID token and what iap-token knows about it. The token never appears in repr()."""

    token: str = field(repr=False)
    expires_at: datetime
    audience: str
    principal: Optional[str]
    source: str
    token_type: str = "id-token"

    @property
    def header_value(self) -> str:
        """``Bearer <token>``, for an Authorization or Proxy-Authorization header."""
        return f"Bearer {self.token}"


_Key = Tuple[Any, ...]
# key -> (expires_at as Unix seconds, token)
_cache: Dict[_Key, Tuple[float, Token]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forgets the tokens kept in this process (the binary's own cache is untouched)."""
    with _cache_lock:
        _cache.clear()


def _text(value: Any) -> str:
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _flags(name: str, value: Any) -> List[str]:
    """``client_id="x"`` -> ``["--client-id", "x"]``; True is a bare flag, None and False are left out."""
    flag = "--" + name.replace("_", "-")
    if value is None or value is False:
        return []
    if value is True:
        return [flag]
    values = value if isinstance(value, (list, tuple)) else [value]
    return [part for item in values for part in (flag, _text(item))]


INSECURE_REFUSED = (
    "verify=False is refused: iap-token never switches TLS certificate checks off; "
    "pass verify='/path/to/ca-bundle.pem' to trust a private CA"
)


def _verify_to_ca_file(options: Dict[str, Any]) -> None:
    """The seed's ``verify``: a CA bundle path becomes ``--ca-file``; False is refused."""
    if "verify" not in options:
        return
    verify = options.pop("verify")
    if verify is False:
        raise ValueError(INSECURE_REFUSED)
    if verify is not None and verify is not True:
        options["ca_file"] = verify


def _command(subcommand: List[str], options: Dict[str, Any]) -> Tuple[List[str], Optional[Dict[str, str]]]:
    """The argv and the environment (None: inherit) of one run of the binary."""
    options = dict(options)
    _verify_to_ca_file(options)
    argv = [find_binary(), *subcommand]
    secrets: Dict[str, str] = {}
    for name in sorted(options):
        value = options[name]
        if name in _SECRET_ENV:
            if value is not None:
                secrets[_SECRET_ENV[name]] = str(value)
            continue
        argv.extend(_flags(name, value))
    if not secrets:
        return argv, None
    return argv, {**os.environ, **secrets}


def _run(argv: List[str], env: Optional[Dict[str, str]]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env)
    except OSError as error:
        raise _not_started(argv[0], error) from None


def _not_started(binary: str, error: OSError) -> IAPTokenError:
    return IAPTokenError(f"could not run {binary}: {error.strerror or error}")


def _error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("iap-token: error: ")]
    return (ours or lines or [""])[-1]


def _relay_notices(stderr: str) -> None:
    """What the binary said on success (notices, never a token) goes on to our stderr."""
    if stderr:
        sys.stderr.write(stderr)


def _failure(code: Optional[int], stderr: str) -> IAPTokenError:
    line = _error_line(stderr)
    if code == EXIT_SIGN_IN_REQUIRED:
        _, sep, command = line.rpartition("; run: ")
        return SignInRequired(line, command.strip() if sep else "iap-token login")
    if code is None or code < 0:
        return IAPTokenError(line or f"iap-token was ended by signal {-(code or 0)}", None)
    return IAPTokenError(line or f"iap-token exited with code {code}", code)


def _parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _parse(code: Optional[int], stdout: bytes, stderr: bytes) -> Token:
    err = stderr.decode("utf-8", "replace")
    if code != 0:
        raise _failure(code, err)
    _relay_notices(err)
    try:
        value = json.loads(stdout)
        return Token(
            token=value["token"],
            expires_at=_parse_timestamp(value["expires_at"]),
            audience=value["audience"],
            principal=value.get("principal"),
            source=value["source"],
            token_type=value.get("token_type", "id-token"),
        )
    except (ValueError, KeyError, TypeError) as error:
        # Never quote stdout: it holds the token.
        raise IAPTokenError(f"iap-token printed an answer that is not its JSON token ({type(error).__name__})") from None


def _token_options(
    url: Optional[str], audience: Optional[str], profile: Optional[str], min_ttl: Optional[int], options: Dict[str, Any]
) -> Dict[str, Any]:
    if "format" in options:
        raise ValueError("get_token() reads iap-token's JSON: format= cannot be set")
    if options.get("verify") is False:
        raise ValueError(INSECURE_REFUSED)
    return {**options, "url": url, "audience": audience, "profile": profile, "min_ttl": min_ttl}


def _cache_key(options: Dict[str, Any]) -> _Key:
    """What the token depends on: the options (``force_refresh`` aside) and a few variables."""
    environ = os.environ
    named = tuple(sorted((k, repr(v)) for k, v in options.items() if k != "force_refresh"))
    return named, tuple(environ.get(name) for name in _KEY_ENV)


def _cached(key: _Key) -> Optional[Token]:
    with _cache_lock:
        entry = _cache.get(key)
    if entry is not None and time.time() < entry[0]:
        return entry[1]
    return None


def _keep(key: _Key, token: Token) -> Token:
    with _cache_lock:
        _cache[key] = (token.expires_at.timestamp(), token)
    return token


def _token_argv(options: Dict[str, Any], force_refresh: bool) -> Tuple[List[str], Optional[Dict[str, str]]]:
    return _command(["token", "--format", "json"], {**options, "force_refresh": force_refresh})


def get_token(
    *,
    url: Optional[str] = None,
    audience: Optional[str] = None,
    profile: Optional[str] = None,
    min_ttl: Optional[int] = None,
    force_refresh: bool = False,
    **options: Any,
) -> Token:
    """An ID token from ``iap-token token``. Other keywords are its long options (``client_id=``,
    ``service_account_key=``, ``non_interactive=True``, ...); ``client_secret=`` goes through the
    environment. Raises ``SignInRequired`` (exit 3) or ``IAPTokenError``."""
    named = _token_options(url, audience, profile, min_ttl, options)
    key = _cache_key(named)
    if not force_refresh:
        hit = _cached(key)
        if hit is not None:
            return hit
    done = _run(*_token_argv(named, force_refresh))
    return _keep(key, _parse(done.returncode, done.stdout, done.stderr))


async def async_get_token(
    *,
    url: Optional[str] = None,
    audience: Optional[str] = None,
    profile: Optional[str] = None,
    min_ttl: Optional[int] = None,
    force_refresh: bool = False,
    **options: Any,
) -> Token:
    """``get_token()`` for asyncio: the binary runs as an asyncio subprocess (or, where the loop has none,
    in a thread), so the loop keeps running."""
    import asyncio

    named = _token_options(url, audience, profile, min_ttl, options)
    key = _cache_key(named)
    if not force_refresh:
        hit = _cached(key)
        if hit is not None:
            return hit
    argv, env = _token_argv(named, force_refresh)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
    except NotImplementedError:  # a loop without subprocesses (Windows' selector loop): a thread then
        done = await asyncio.get_running_loop().run_in_executor(None, _run, argv, env)
        return _keep(key, _parse(done.returncode, done.stdout, done.stderr))
    except OSError as error:
        raise _not_started(argv[0], error) from None
    stdout, stderr = await process.communicate()
    return _keep(key, _parse(process.returncode, stdout, stderr))


def run_plumbing(subcommand: List[str], options: Mapping[str, Any]) -> str:
    """Runs another iap-token command and returns its stdout less one trailing newline."""
    done = _run(*_command(subcommand, dict(options)))
    err = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise _failure(done.returncode, err)
    _relay_notices(err)
    out = done.stdout.decode("utf-8")
    return out[:-1] if out.endswith("\n") else out
