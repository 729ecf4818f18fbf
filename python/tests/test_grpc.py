"""The grpc plugin on a real grpcio channel to a real grpcio server on 127.0.0.1, which checks the
`proxy-authorization` metadata (and the fake IAP confirms the token it carried is valid)."""

from __future__ import annotations

from concurrent import futures
from typing import Iterator, List, Tuple

import grpc
import pytest
import requests

import iap_token.grpc
from conftest import AUDIENCE, IAP_URL, claims, key_options

METHOD = "/echo.Echo/Call"


@pytest.fixture
def server() -> Iterator[Tuple[int, List[Tuple[Tuple[str, str], ...]]]]:
    seen: List[Tuple[Tuple[str, str], ...]] = []

    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = tuple((k, v) for k, v in context.invocation_metadata())
        seen.append(metadata)
        values = [v for k, v in metadata if k == "proxy-authorization"]
        if len(values) != 1 or not values[0].startswith("Bearer "):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "no proxy-authorization")
        return values[0].encode()

    handler = grpc.method_handlers_generic_handler("echo.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)})
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    grpc_server.add_generic_rpc_handlers((handler,))
    port = grpc_server.add_secure_port("127.0.0.1:0", grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP))
    grpc_server.start()
    yield port, seen
    grpc_server.stop(None)


def channel(port: int, **options: object) -> grpc.Channel:
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
        grpc.metadata_call_credentials(iap_token.grpc.IAPAuthMetadataPlugin(**options)),
    )
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials)


def test_the_plugin_sends_proxy_authorization(server: Tuple[int, list]) -> None:
    port, seen = server
    with channel(port, **key_options()) as ch:
        answer = ch.unary_unary(METHOD)(b"hi", timeout=30).decode()
    assert answer.startswith("Bearer ")
    assert claims(answer[len("Bearer "):])["aud"] == AUDIENCE
    assert not any(k == "authorization" for k, _ in seen[0]), "authorization stays the app's"
    through_iap = requests.get(f"{IAP_URL}/hello", headers={"Proxy-Authorization": answer})
    assert through_iap.status_code == 200, "IAP accepts the token the channel sent"


def test_a_failure_becomes_unauthenticated_with_the_tools_line(server: Tuple[int, list]) -> None:
    port, _ = server
    with channel(port, audience=AUDIENCE, service_account_key="/nonexistent/key.json") as ch:
        with pytest.raises(grpc.RpcError) as raised:
            ch.unary_unary(METHOD)(b"hi", timeout=30)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE or raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "could not read the credential file /nonexistent/key.json" in raised.value.details()
