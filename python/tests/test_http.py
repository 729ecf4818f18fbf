"""The requests and httpx adapters against the fake IAP: the header reaches only the origin given, IAP
lets the request through to the echo app, and httpx refreshes and retries once on IAP's own 401 only."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import httpx
import pytest
import requests

import iap_token.httpx
import iap_token.requests
from conftest import AUDIENCE, IAP_URL, REAL_BINARY, SA_EMAIL, Spawns, key_options


@pytest.fixture
def other_origin() -> Iterator[tuple[str, List[Dict[str, str]]]]:
    """Another server on 127.0.0.1 that records the headers it receives."""
    seen: List[Dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def stats() -> Dict[str, int]:
    return requests.get(f"{IAP_URL}/_fake/stats").json()


def reject_next(n: int) -> None:
    requests.get(f"{IAP_URL}/_fake/reject-next?n={n}")


def test_iap_redirects_a_request_without_credentials_to_the_sign_in() -> None:
    answer = requests.get(f"{IAP_URL}/hello", allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["X-Goog-IAP-Generated-Response"] == "true"
    assert f"client_id={AUDIENCE}" in answer.headers["Location"]


def test_requests_auth_gets_through_iap(spawns: Spawns) -> None:
    auth = iap_token.requests.IAPAuth(origin=IAP_URL, **key_options())
    answer = requests.get(f"{IAP_URL}/hello", auth=auth)
    assert answer.status_code == 200, answer.text
    echo = answer.json()
    assert echo["headers"]["authorization"].startswith("Bearer ")
    assert echo["headers"]["x-goog-authenticated-user-email"] == f"accounts.google.com:{SA_EMAIL}"
    assert requests.post(f"{IAP_URL}/data", auth=auth, json={"a": 1}).json()["body"] == '{"a": 1}'
    assert len(spawns) == 1, "the second request used the kept token"


def test_requests_proxy_authorization_leaves_the_apps_authorization_alone() -> None:
    auth = iap_token.requests.IAPAuth(origin=IAP_URL, header="Proxy-Authorization", **key_options())
    answer = requests.get(f"{IAP_URL}/hello", auth=auth, headers={"Authorization": "Basic YXBwOmFwcA=="})
    assert answer.status_code == 200, answer.text
    echo = answer.json()
    assert echo["iap_credential_from"] == "proxy-authorization"
    assert echo["headers"]["authorization"] == "Basic YXBwOmFwcA=="
    assert "proxy-authorization" not in echo["headers"]


def test_the_header_goes_only_to_the_origin_given(other_origin: tuple[str, List[Dict[str, str]]], spawns: Spawns) -> None:
    url, seen = other_origin
    auth = iap_token.requests.IAPAuth(origin=IAP_URL, **key_options())
    assert requests.get(f"{url}/x", auth=auth).status_code == 200
    client = httpx.Client(auth=iap_token.httpx.IAPAuth(origin=IAP_URL, **key_options()))
    assert client.get(f"{url}/y").status_code == 200
    assert [h.get("authorization") for h in seen] == [None, None]
    assert len(spawns) == 0, "no token was even fetched for another origin"
    # Without origin= the first request's origin is the one.
    pinned = iap_token.requests.IAPAuth(**key_options())
    assert requests.get(f"{IAP_URL}/hello", auth=pinned).status_code == 200
    requests.get(f"{url}/z", auth=pinned)
    assert seen[-1].get("authorization") is None


def test_httpx_sync_gets_through_and_retries_once_on_iaps_401(spawns: Spawns) -> None:
    auth = iap_token.httpx.IAPAuth(origin=IAP_URL, **key_options())
    with httpx.Client(auth=auth) as client:
        assert client.get(f"{IAP_URL}/hello").status_code == 200
        before = stats()
        reject_next(1)
        answer = client.post(f"{IAP_URL}/data", content=b"payload")
        assert answer.status_code == 200, answer.text
        assert answer.json()["body"] == "payload", "the body was sent again"
        assert spawns.with_flag("--force-refresh") == 1
        assert stats()["checked"] - before["checked"] == 2

        reject_next(2)
        before = stats()
        answer = client.get(f"{IAP_URL}/hello")
        assert answer.status_code == 401 and answer.headers["x-goog-iap-generated-response"] == "true"
        assert stats()["checked"] - before["checked"] == 2, "one retry only"
        assert spawns.with_flag("--force-refresh") == 2


def test_httpx_passes_the_apps_own_401_and_unreplayable_bodies_through(spawns: Spawns) -> None:
    auth = iap_token.httpx.IAPAuth(origin=IAP_URL, **key_options())
    with httpx.Client(auth=auth) as client:
        answer = client.get(f"{IAP_URL}/app/401")
        assert answer.status_code == 401 and "x-goog-iap-generated-response" not in answer.headers
        reject_next(1)

        def stream() -> Iterator[bytes]:
            yield b"once"

        before = stats()
        answer = client.post(f"{IAP_URL}/data", content=stream())
        assert answer.status_code == 401, "a stream cannot be sent twice: IAP's answer is returned"
        assert stats()["checked"] - before["checked"] == 1
    assert spawns.with_flag("--force-refresh") == 0


def test_httpx_async_gets_through_retries_and_keeps_the_loop_running(
    fake_binary: Callable[[str], Path], spawns: Spawns
) -> None:
    fake_binary(f'sleep 0.3\nexec {REAL_BINARY} "$@"\n')
    auth = iap_token.httpx.IAPAuth(origin=IAP_URL, **key_options())

    async def main() -> int:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        async with httpx.AsyncClient(auth=auth) as client:
            first = await client.get(f"{IAP_URL}/hello")
            assert first.status_code == 200, first.text
            await client.get(f"{IAP_URL}/_fake/reject-next?n=1")
            retried = await client.post(f"{IAP_URL}/data", json={"k": "v"})
            assert retried.status_code == 200 and retried.json()["body"] == '{"k":"v"}'
        done.set()
        await task
        return ticks

    ticks = asyncio.run(main())
    assert ticks >= 30, f"the loop ran only {ticks} times during two 0.3 s binary runs"
    assert spawns.with_flag("--force-refresh") == 1


def test_url_alone_finds_the_audience_and_pins_the_origin(spawns: Spawns) -> None:
    # The binary discovers the audience from IAP's sign-in redirect (--url); the adapter's origin is the url's.
    token = iap_token.get_token(url=f"{IAP_URL}/", service_account_key=key_options()["service_account_key"])
    assert token.audience == AUDIENCE
    auth = iap_token.requests.IAPAuth(url=f"{IAP_URL}/", service_account_key=key_options()["service_account_key"])
    answer = requests.get(f"{IAP_URL}/hello", auth=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["headers"]["x-goog-authenticated-user-email"] == f"accounts.google.com:{SA_EMAIL}"
